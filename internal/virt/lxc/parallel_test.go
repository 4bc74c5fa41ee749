//go:build linux && cgo

package lxc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// Terraform runs ten creates (and destroys) at once in one provider
// process, so ten goroutines of one process drive the whole life of
// snapshot clones of one template at the same time, several rounds each.
//
// What makes this worth proving: liblxc forks from this multi-threaded Go
// process. The destroy of an unprivileged container forks a child that
// removes its files inside its user namespace; an exec forks the attached
// command. Forking from a Go process is safe as long as the child runs no
// Go code (true here: the children run liblxc's C and exit or exec, and
// glibc's fork leaves malloc usable in them) and keeps nothing it
// inherited. Clones and starts go through lxc-copy and lxc-start (see
// createClone and StartContainer), so the container's monitor, which lives
// as long as the container, is a fork of lxc-start and not of this
// process: the test checks that, and that the monitor holds none of this
// process's descriptors (a pipe it keeps open). Each goroutine uses its own
// go-lxc handles, and liblxc guards what they share on disk (the
// template's list of clones) with its own file locks; so the layer
// serializes nothing.
func TestParallelContainers(t *testing.T) {
	const workers, rounds = 10, 3
	c := newTestClient(t)
	tmpl := busyboxTemplate(t, c, true)
	prefix := testenv.Name(t, "lxc-par")
	for i := range workers {
		for r := range rounds {
			name := fmt.Sprintf("%s-%d-%d", prefix, i, r)
			t.Cleanup(func() { destroyForCleanup(t, c, name) })
		}
	}

	// Held open by this process while the monitors are forked from it.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pr.Close(); _ = pw.Close() }()
	pipeLink, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", pw.Fd()))
	if err != nil {
		t.Fatal(err)
	}

	type timing struct{ create, start, stop, destroy time.Duration }
	var (
		mu      sync.Mutex
		timings []timing
		errs    []error
		wg      sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := fmt.Sprintf("10.0.3.%d", 200+i)
			for r := range rounds {
				name := fmt.Sprintf("%s-%d-%d", prefix, i, r)
				var tm timing
				step := func(d *time.Duration, fn func() error) error {
					s := time.Now()
					err := fn()
					*d = time.Since(s)
					return err
				}
				if err := step(&tm.create, func() error {
					_, err := c.CreateContainer(ctx, virt.ContainerSpec{
						Name: name, Template: tmpl, Unprivileged: true,
						Interfaces: []virt.ContainerInterfaceSpec{{IPv4Address: ip + "/24"}},
					})
					return err
				}); err != nil {
					fail(err)
					return
				}
				if err := step(&tm.start, func() error { return c.StartContainer(ctx, name) }); err != nil {
					fail(err)
					return
				}
				if err := checkRunning(ctx, c, name, ip, pipeLink); err != nil {
					fail(err)
					return
				}
				if err := step(&tm.stop, func() error { return c.StopContainer(ctx, name, 0) }); err != nil {
					fail(err)
					return
				}
				if err := step(&tm.destroy, func() error { return c.DestroyContainer(ctx, name) }); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				timings = append(timings, tm)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}

	med := func(get func(timing) time.Duration) time.Duration {
		d := make([]time.Duration, len(timings))
		for i, tm := range timings {
			d[i] = get(tm)
		}
		slices.Sort(d)
		return d[len(d)/2].Round(100 * time.Microsecond)
	}
	t.Logf("%d cycles, %d at a time, in %s; medians: create %s, start %s, stop %s, destroy %s",
		len(timings), workers, elapsed.Round(time.Millisecond),
		med(func(tm timing) time.Duration { return tm.create }), med(func(tm timing) time.Duration { return tm.start }),
		med(func(tm timing) time.Duration { return tm.stop }), med(func(tm timing) time.Duration { return tm.destroy }))

	// Nothing is left: no container, and no clone on the template's list.
	names, err := c.ListContainers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			t.Errorf("container %s left behind", n)
		}
	}
	if clones, err := c.snapshotClones(tmpl); err != nil || len(clones) > 0 {
		t.Errorf("the template still lists clones %q (%v)", clones, err)
	}
	if err := c.DestroyContainer(context.Background(), tmpl); err != nil {
		t.Errorf("the template cannot go after its clones: %v", err)
	}
}

// checkRunning reads the running container back as the provider does and
// looks at its monitor: it must hold none of this process's descriptors,
// pipeLink (a pipe this process holds) in particular.
func checkRunning(ctx context.Context, c *Client, name, ip, pipeLink string) error {
	s, err := c.Container(ctx, name)
	if err != nil {
		return err
	}
	if s.State != virt.ContainerRunning || !slices.Contains(s.IPv4Addresses, ip) || s.PendingRestart != nil {
		return fmt.Errorf("%s read back as %s, addresses %q, pending %q", name, s.State, s.IPv4Addresses, s.PendingRestart)
	}
	monitor, err := parentPID(s.PID)
	if err != nil {
		return err
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", monitor))
	if !strings.Contains(string(comm), "[lxc monitor]") {
		return fmt.Errorf("%s: init's parent %d is %q, not an LXC monitor", name, monitor, comm)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", monitor))
	if err != nil {
		return fmt.Errorf("%s: monitor %d: %w", name, monitor, err)
	}
	if filepath.Base(exe) != "lxc-start" {
		return fmt.Errorf("%s: monitor %d runs %q, not lxc-start", name, monitor, exe)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", monitor))
	if err != nil {
		return err
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", monitor), fd.Name()))
		if err == nil && link == pipeLink {
			return fmt.Errorf("%s: monitor %d inherited this process's %s as fd %s", name, monitor, pipeLink, fd.Name())
		}
	}
	if code, err := c.Exec(ctx, name, virt.ExecSpec{Args: []string{"true"}}); err != nil || code != 0 {
		return errors.Join(fmt.Errorf("%s: exec true: exit %d", name, code), err)
	}
	return nil
}

func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no PPid", pid)
}
