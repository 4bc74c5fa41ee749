package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// The two benchmarks below time the same cycle, one through this layer and
// one with the virsh CLI, so that scripts/bench can report what the layer
// costs (or saves) over the raw tool: clone the test disk (qcow2 overlay in
// a pool), define a TCG guest on it, start it, destroy it, undefine it and
// delete the clone. Run with -benchtime=10x: one cycle takes seconds.

const benchCloneName = "clone.qcow2"

type benchCycle struct {
	c       *Client
	pool    *domainTestPool
	baseKey string
	baseCap uint64
	spec    virt.MachineSpec
}

// newBenchCycle makes a pool holding a copy of the test disk, which the
// clones are made from: virsh clones only from a volume, not a bare file.
func newBenchCycle(b *testing.B) *benchCycle {
	b.Helper()
	testenv.Integration(b)
	c, err := New(b.Context(), Options{URI: testenv.URI()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	pool := newDomainTestPool(b, c)
	base := filepath.Join(pool.dir, "base.qcow2")
	if out, err := exec.Command("cp", "--sparse=always", testenv.GuestDisk(b), base).CombinedOutput(); err != nil {
		b.Fatalf("copy test disk: %v: %s", err, out)
	}
	if err := c.call(b.Context(), func(lv *golibvirt.Libvirt) error { return lv.StoragePoolRefresh(pool.pool, 0) }); err != nil {
		b.Fatalf("refresh pool: %v", err)
	}
	vol, err := c.VolumeByKey(b.Context(), base)
	if err != nil {
		b.Fatalf("base volume: %v", err)
	}
	name := testenv.Name(b, "lv-bench")
	cleanupCtx := context.WithoutCancel(b.Context())
	b.Cleanup(func() {
		if err := c.UndefineMachine(cleanupCtx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			b.Errorf("cleanup: %v", err)
		}
	})
	return &benchCycle{
		c: c, pool: pool, baseKey: vol.Key, baseCap: vol.CapacityBytes,
		spec: virt.MachineSpec{
			Name:      name,
			Type:      virt.DomainQEMU,
			MemoryMiB: 256,
			Boot: &virt.DirectBoot{
				Kernel: testenv.GuestKernel(b), Initrd: testenv.GuestInitrd(b), Cmdline: "console=ttyS0",
			},
			Interfaces: []virt.InterfaceSpec{{Type: virt.InterfaceUser}},
		},
	}
}

func BenchmarkCloneDefineStartDestroy(b *testing.B) {
	bc := newBenchCycle(b)
	c, ctx := bc.c, b.Context()
	var ph phases
	for b.Loop() {
		ph.begin()
		var clone *virt.VolumeSpec
		spec := bc.spec
		ph.step(b, "clone", func() (err error) {
			clone, err = c.CreateVolume(ctx, virt.VolumeSpec{Pool: bc.pool.name, Name: benchCloneName, BackingVolumeKey: bc.baseKey})
			return err
		})
		spec.Disks = []virt.DiskSpec{{VolumeKey: clone.Key}}
		ph.step(b, "define", func() error { _, err := c.DefineMachine(ctx, spec); return err })
		ph.step(b, "start", func() error { return c.StartMachine(ctx, spec.Name) })
		ph.step(b, "destroy", func() error { return c.DestroyMachine(ctx, spec.Name) })
		ph.step(b, "undefine", func() error { return c.UndefineMachine(ctx, spec.Name) })
		ph.step(b, "delete", func() error { return c.DeleteVolume(ctx, clone.Key) })
		ph.end()
	}
	ph.report(b)
}

// phases times the steps of the cycle, so that a change in the total can be
// traced to one of them; they are reported as extra per-op metrics.
type phases struct {
	names []string
	total map[string]time.Duration
	// cycles holds each whole cycle's time, for the median: one slow
	// destroy should not move the figure that is compared.
	cycles []time.Duration
	start  time.Time
}

func (p *phases) begin() { p.start = time.Now() }
func (p *phases) end()   { p.cycles = append(p.cycles, time.Since(p.start)) }

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
	if len(p.cycles) > 0 {
		sorted := slices.Clone(p.cycles)
		slices.Sort(sorted)
		b.ReportMetric(float64(sorted[len(sorted)/2].Microseconds())/1000, "median-ms")
	}
	for _, name := range p.names {
		b.ReportMetric(float64(p.total[name].Microseconds())/1000/float64(b.N), name+"-ms/op")
	}
}

func BenchmarkVirshCloneDefineStartDestroy(b *testing.B) {
	bc := newBenchCycle(b)
	if _, err := exec.LookPath("virsh"); err != nil {
		b.Fatalf("virsh: %v", err)
	}
	// The same domain the layer defines, rendered once to a file.
	spec := bc.spec
	clonePath := filepath.Join(bc.pool.dir, benchCloneName)
	spec.Disks = []virt.DiskSpec{{Path: clonePath, Format: virt.FormatQCOW2}}
	spec = spec.WithDefaults()
	doc, err := domainFromSpec(spec, []diskSource{{Path: clonePath, Format: virt.FormatQCOW2}}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	xmlFile := filepath.Join(bc.pool.dir, "domain.xml")
	if err := os.WriteFile(xmlFile, []byte(doc), 0o644); err != nil {
		b.Fatal(err)
	}
	var ph phases
	virsh := func(phase string, args ...string) {
		b.Helper()
		ph.step(b, phase, func() error {
			out, err := exec.Command("virsh", append([]string{"-q", "-c", testenv.URI()}, args...)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("virsh %s: %w\n%s", strings.Join(args, " "), err, out)
			}
			return nil
		})
	}
	capacity := strconv.FormatUint(bc.baseCap, 10)
	for b.Loop() {
		ph.begin()
		virsh("clone", "vol-create-as", bc.pool.name, benchCloneName, capacity, "--format", "qcow2",
			"--backing-vol", bc.baseKey, "--backing-vol-format", "qcow2")
		virsh("define", "define", xmlFile)
		virsh("start", "start", spec.Name)
		virsh("destroy", "destroy", spec.Name)
		virsh("undefine", "undefine", spec.Name)
		virsh("delete", "vol-delete", "--pool", bc.pool.name, benchCloneName)
		ph.end()
	}
	ph.report(b)
}
