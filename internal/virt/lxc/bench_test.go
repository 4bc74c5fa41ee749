//go:build linux && cgo

package lxc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// The two benchmarks below time the same cycle, one through this layer and
// one with the LXC tools, so that scripts/bench can report what the layer
// costs (or saves) over them: a snapshot clone (overlayfs) of a stopped
// unprivileged busybox template with a static address on the test bridge,
// started, killed and destroyed. That is the work of one virt_container with
// `template` and `stop_timeout = 0` from create to destroy, and of
// `lxc-copy -s -B overlayfs`, `lxc-start`, `lxc-stop -k`, `lxc-destroy`.
// Run with -benchtime=Nx: a cycle takes tens of milliseconds, and each is
// timed on its own for the median.

type benchTemplate struct {
	c    *Client
	name string
	ip   string
}

// newBenchTemplate makes the template the clones are made from, once per
// benchmark, outside the timed cycles.
func newBenchTemplate(b *testing.B) *benchTemplate {
	b.Helper()
	testenv.Integration(b)
	c, err := New("", nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", testBridge, "bridge")); err != nil {
		b.Fatalf("test environment incomplete: no bridge %s (run `make testenv`)", testBridge)
	}
	name := testenv.Name(b, "lxc-btmpl")
	b.Cleanup(func() { destroyForBench(b, c, name) })
	if _, err := c.CreateContainer(b.Context(), virt.ContainerSpec{
		Name: name, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}, Unprivileged: true,
	}); err != nil {
		b.Fatal(err)
	}
	return &benchTemplate{c: c, name: name, ip: freeTestIP(b) + "/24"}
}

func destroyForBench(b *testing.B, c *Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.DestroyContainer(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		b.Errorf("cleanup: %v", err)
	}
}

func BenchmarkContainerCloneStartStopDestroy(b *testing.B) {
	bt := newBenchTemplate(b)
	c, ctx := bt.c, b.Context()
	name := testenv.Name(b, "lxc-bench")
	b.Cleanup(func() { destroyForBench(b, c, name) })
	spec := virt.ContainerSpec{
		Name: name, Template: bt.name, Unprivileged: true,
		Interfaces: []virt.ContainerInterfaceSpec{{IPv4Address: bt.ip}},
	}
	var ph phases
	for b.Loop() {
		ph.begin()
		ph.step(b, "clone", func() error { _, err := c.CreateContainer(ctx, spec); return err })
		ph.step(b, "start", func() error { return c.StartContainer(ctx, name) })
		// The provider reads a container back after its start; the tools
		// have nothing like it, so it is timed on its own, outside the
		// cycle.
		ph.aside(b, "read", func() error { _, err := c.Container(ctx, name); return err })
		ph.step(b, "stop", func() error { return c.StopContainer(ctx, name, 0) })
		ph.step(b, "destroy", func() error { return c.DestroyContainer(ctx, name) })
		ph.end()
	}
	ph.report(b)
}

func BenchmarkLXCContainerCloneStartStopDestroy(b *testing.B) {
	bt := newBenchTemplate(b)
	name := testenv.Name(b, "lxc-bench")
	b.Cleanup(func() { destroyForBench(b, bt.c, name) })
	for _, tool := range []string{"lxc-copy", "lxc-start", "lxc-stop", "lxc-destroy"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s: %v", tool, err)
		}
	}
	// What a script appends to the clone's config for the same interface
	// the layer writes (the template has none: the layer's templates keep
	// interfaces in their managed file, which a clone does not inherit).
	netConf := fmt.Sprintf("lxc.net.0.type = veth\nlxc.net.0.link = %s\nlxc.net.0.flags = up\nlxc.net.0.ipv4.address = %s\n",
		testBridge, bt.ip)
	var ph phases
	run := func(phase string, args ...string) {
		b.Helper()
		ph.step(b, phase, func() error {
			out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
			}
			return nil
		})
	}
	for b.Loop() {
		ph.begin()
		run("clone", "lxc-copy", "-s", "-B", "overlayfs", "-n", bt.name, "-N", name)
		ph.step(b, "clone", func() error {
			f, err := os.OpenFile(filepath.Join(bt.c.dir(name), "config"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteString(netConf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		})
		run("start", "lxc-start", "-n", name)
		run("stop", "lxc-stop", "-k", "-n", name)
		run("destroy", "lxc-destroy", "-n", name)
		ph.end()
	}
	ph.report(b)
}

// phases times the steps of a cycle, so that a change in the total can be
// traced to one of them; they are reported as extra per-op metrics, and the
// median of the whole cycles as median-ms, which scripts/bench compares.
type phases struct {
	names  []string
	total  map[string]time.Duration
	cycles []time.Duration
	start  time.Time
	asides time.Duration // this cycle's steps outside the cycle's time
	n      int
}

func (p *phases) begin() { p.start, p.asides = time.Now(), 0 }
func (p *phases) end()   { p.cycles = append(p.cycles, time.Since(p.start)-p.asides); p.n++ }

// aside is a step that is reported but not counted in the cycle's time.
func (p *phases) aside(b *testing.B, name string, fn func() error) {
	b.Helper()
	start := time.Now()
	p.step(b, name, fn)
	p.asides += time.Since(start)
}

func (p *phases) step(b *testing.B, name string, fn func() error) {
	b.Helper()
	start := time.Now()
	err := fn()
	if p.total == nil {
		p.total = map[string]time.Duration{}
	}
	if _, seen := p.total[name]; !seen {
		p.names = append(p.names, name)
	}
	p.total[name] += time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
}

func (p *phases) report(b *testing.B) {
	if len(p.cycles) == 0 {
		return
	}
	sorted := slices.Clone(p.cycles)
	slices.Sort(sorted)
	b.ReportMetric(float64(sorted[len(sorted)/2].Microseconds())/1000, "median-ms")
	for _, name := range p.names {
		b.ReportMetric(float64(p.total[name].Microseconds())/1000/float64(p.n), name+"-ms/op")
	}
}
