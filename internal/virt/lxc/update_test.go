//go:build linux && cgo

package lxc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// busyboxTemplate makes a stopped busybox container for clones, removed
// when the test ends (after its clones: cleanups run last first).
func busyboxTemplate(t *testing.T, c *Client, unprivileged bool) string {
	t.Helper()
	name := testenv.Name(t, "lxc-tmpl")
	create(t, c, virt.ContainerSpec{Name: name, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}, Unprivileged: unprivileged})
	quietRCS(t, c, name)
	return name
}

// cgroupFile reads a file of the cgroup the kernel puts the process in for
// controller, on the hierarchy that holds it: the value the kernel
// enforces, found through /proc/PID/cgroup and this host's mounts, not
// through LXC.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := parseCgroupMounts(mi)
	_ = mi.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var dir string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if mp, ok := mounts.v1[controller]; ok && slices.Contains(strings.Split(parts[1], ","), controller) {
			dir = filepath.Join(mp, parts[2])
			break
		}
		if _, onV1 := mounts.v1[controller]; !onV1 && parts[0] == "0" && mounts.v2 != "" {
			dir = filepath.Join(mounts.v2, parts[2])
		}
	}
	if dir == "" {
		t.Fatalf("no %s cgroup for pid %d", controller, pid)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// limitFiles says, for this host's layout, which cgroup files hold the
// spec's limits and what they should read.
func limitFiles(c *Client, s virt.ContainerSpec) map[[2]string]string {
	out := map[[2]string]string{}
	const v1NoLimit = "9223372036854771712" // what the kernel reads back for -1
	switch c.cgroups.version("memory") {
	case 1:
		out[[2]string{"memory", "memory.limit_in_bytes"}] = v1NoLimit
		if s.MemoryMiB != 0 {
			out[[2]string{"memory", "memory.limit_in_bytes"}] = bytesOf(s.MemoryMiB)
		}
		if c.cgroups.memsw {
			out[[2]string{"memory", "memory.memsw.limit_in_bytes"}] = v1NoLimit
			if s.MemoryMiB != 0 && s.SwapMiB != 0 {
				out[[2]string{"memory", "memory.memsw.limit_in_bytes"}] = bytesOf(s.MemoryMiB + s.SwapMiB)
			}
		}
	case 2:
		out[[2]string{"memory", "memory.max"}] = v2Limit(s.MemoryMiB)
		out[[2]string{"memory", "memory.swap.max"}] = v2Limit(s.SwapMiB)
	}
	cpus := s.CPUs
	if cpus == "" {
		cpus = c.hostCPUList
	}
	if c.cgroups.version("cpuset") == 1 {
		out[[2]string{"cpuset", "cpuset.cpus"}] = cpus
	} else {
		out[[2]string{"cpuset", "cpuset.cpus.effective"}] = cpus
	}
	switch c.cgroups.version("cpu") {
	case 1:
		shares := uint64(1024)
		if s.CPUWeight != 0 {
			shares = weightToShares(s.CPUWeight)
		}
		out[[2]string{"cpu", "cpu.shares"}] = strconv.FormatUint(shares, 10)
	case 2:
		w := uint64(100)
		if s.CPUWeight != 0 {
			w = s.CPUWeight
		}
		out[[2]string{"cpu", "cpu.weight"}] = strconv.FormatUint(w, 10)
	}
	return out
}

func checkLimits(t *testing.T, c *Client, pid int, s virt.ContainerSpec) {
	t.Helper()
	for f, want := range limitFiles(c, s) {
		if got := cgroupFile(t, pid, f[0], f[1]); got != want {
			t.Errorf("cgroup %s = %s, want %s (memory %d, swap %d, cpus %q, cpu_weight %d)", f[1], got, want, s.MemoryMiB, s.SwapMiB, s.CPUs, s.CPUWeight)
		}
	}
}

// Limits change in the running container's cgroup, where the kernel
// enforces them, and in the saved config, without a restart.
func TestUpdateLimitsLive(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	tmpl := busyboxTemplate(t, c, true)
	name := testenv.Name(t, "lxc-upd")
	spec := virt.ContainerSpec{
		Name: name, Template: tmpl, Unprivileged: true,
		MemoryMiB: 64, SwapMiB: 32, CPUs: "0", CPUWeight: 50,
		Interfaces: []virt.ContainerInterfaceSpec{{IPv4Address: freeTestIP(t) + "/24"}},
	}
	created := create(t, c, spec)
	spec.Interfaces = created.Interfaces // the generated MAC
	start(t, c, name)
	pid := readBack(t, c, name).PID
	checkLimits(t, c, pid, spec)

	for _, step := range []struct {
		name      string
		mem, swap uint64
		cpus      string
		weight    uint64
	}{
		{"raise", 128, 64, c.hostCPUList, 200},
		{"lower, swap unlimited", 32, 0, "0", 0},
		{"memory limited again with swap", 48, 16, "0", 10000},
		{"no limits", 0, 0, "", 0},
		{"limits again", 64, 32, "0", 50},
	} {
		t.Run(step.name, func(t *testing.T) {
			spec.MemoryMiB, spec.SwapMiB, spec.CPUs, spec.CPUWeight = step.mem, step.swap, step.cpus, step.weight
			t0 := time.Now()
			got, err := c.UpdateContainer(ctx, name, spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("updated in %s", time.Since(t0).Round(time.Microsecond))
			if got.PID != pid || got.State != virt.ContainerRunning {
				t.Fatalf("the container restarted or stopped: pid %d → %d, state %s", pid, got.PID, got.State)
			}
			if got.MemoryMiB != step.mem || got.SwapMiB != step.swap || got.CPUs != step.cpus || got.CPUWeight != step.weight {
				t.Errorf("read back memory %d swap %d cpus %q weight %d", got.MemoryMiB, got.SwapMiB, got.CPUs, got.CPUWeight)
			}
			if len(got.PendingRestart) != 0 {
				t.Errorf("limits change live, yet pending restart: %q", got.PendingRestart)
			}
			if again := readBack(t, c, name); !reflect.DeepEqual(again, got) {
				t.Errorf("Container() reads\n %+v\nUpdateContainer returned\n %+v", again, got)
			}
			checkLimits(t, c, pid, spec)
		})
	}

	// The saved limits are what the next start applies.
	stop(t, c, name, 0)
	start(t, c, name)
	checkLimits(t, c, readBack(t, c, name).PID, spec)

	t.Run("stopped", func(t *testing.T) {
		stop(t, c, name, 0)
		spec.MemoryMiB = 96
		got, err := c.UpdateContainer(ctx, name, spec)
		if err != nil {
			t.Fatal(err)
		}
		if got.MemoryMiB != 96 || got.State != virt.ContainerStopped || got.PendingRestart != nil {
			t.Errorf("stopped update read back memory %d, state %s, pending %q", got.MemoryMiB, got.State, got.PendingRestart)
		}
		start(t, c, name)
		checkLimits(t, c, readBack(t, c, name).PID, spec)
	})
}

// An update that fails leaves the container as it was: live limits and the
// saved config.
func TestUpdateFailureLeavesContainer(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	tmpl := busyboxTemplate(t, c, true)
	name := testenv.Name(t, "lxc-updf")
	spec := virt.ContainerSpec{Name: name, Template: tmpl, Unprivileged: true, MemoryMiB: 64, CPUWeight: 50}
	create(t, c, spec)
	start(t, c, name)
	pid := readBack(t, c, name).PID
	before, err := os.ReadFile(filepath.Join(c.dir(name), ManagedConfigName))
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		checkLimits(t, c, pid, spec)
		after, err := os.ReadFile(filepath.Join(c.dir(name), ManagedConfigName))
		if err != nil || string(after) != string(before) {
			t.Errorf("saved config changed by a failed update (%v):\n%s", err, after)
		}
		if s := readBack(t, c, name); s.MemoryMiB != spec.MemoryMiB || s.CPUWeight != spec.CPUWeight {
			t.Errorf("read back memory %d, cpu_weight %d after a failed update", s.MemoryMiB, s.CPUWeight)
		}
	}

	t.Run("save fails after the live writes", func(t *testing.T) {
		// An immutable directory refuses the config's temporary file, even
		// to root; the cleanup registered here runs before the destroy.
		dir := c.dir(name)
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i %s: %v: %s", dir, err, out)
		}
		mutable := func() { _ = exec.Command("chattr", "-i", dir).Run() }
		t.Cleanup(mutable)
		want := spec
		want.MemoryMiB, want.CPUWeight = 128, 300
		_, err := c.UpdateContainer(ctx, name, want)
		mutable()
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "save its config") {
			t.Fatalf("UpdateContainer with an unwritable config: %v; want an error naming %s and the save", err, name)
		}
		t.Logf("error: %v", err)
		unchanged(t)
	})

	t.Run("memory below what the container uses", func(t *testing.T) {
		if c.cgroups.version("memory") != 1 {
			// cgroup v2 reclaims and OOM-kills instead of refusing.
			t.Skip("needs the memory controller on cgroup v1, which refuses a limit it cannot reclaim down to")
		}
		// tmpfs pages are memory the kernel cannot reclaim without swap.
		run(t, c, name, "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=40")
		want := spec
		want.MemoryMiB, want.CPUWeight = 16, 300
		_, err := c.UpdateContainer(ctx, name, want)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "memory.limit_in_bytes") ||
			!strings.Contains(err.Error(), "the container uses") {
			t.Fatalf("UpdateContainer below usage: %v; want an error naming %s, the limit and the usage", err, name)
		}
		t.Logf("error: %v", err)
		unchanged(t)
		run(t, c, name, "rm", "/dev/shm/fill")
	})

	t.Run("identity", func(t *testing.T) {
		for _, tc := range []struct {
			field string
			edit  func(*virt.ContainerSpec)
		}{
			{"unprivileged", func(s *virt.ContainerSpec) { s.Unprivileged = false }},
			{"idmap", func(s *virt.ContainerSpec) {
				s.IDMap = []virt.IDMapEntry{{Kind: "u", HostID: 200000, Count: 65536}, {Kind: "g", HostID: 200000, Count: 65536}}
			}},
			{"interfaces[0].bridge", func(s *virt.ContainerSpec) { s.Interfaces = []virt.ContainerInterfaceSpec{{Bridge: "vt-nobr0"}} }},
			{"memory", func(s *virt.ContainerSpec) { s.MemoryMiB = 1 }},
		} {
			want := spec
			tc.edit(&want)
			_, err := c.UpdateContainer(ctx, name, want)
			var es virt.SpecErrors
			if !errors.As(err, &es) || es[0].Field != tc.field || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: %v; want a spec error on %s naming the container", tc.field, err, tc.field)
			}
		}
		unchanged(t)
	})

	if _, err := c.UpdateContainer(ctx, testenv.Name(t, "lxc-none"), spec); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("update of a missing container: %v, want ErrNotFound", err)
	}
}

// sharedTempDir is a temporary directory an unprivileged container's root
// (a high host uid) can reach, which t.TempDir (0700) is not.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	for d := tmp; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tmp
}

// What only a restart applies is listed as pending while the container
// runs, compared with what it really runs with, and clears on restart.
func TestPendingRestart(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	tmpl := busyboxTemplate(t, c, true)
	name := testenv.Name(t, "lxc-pend")
	ip1, ip2 := "10.0.3.247/24", "10.0.3.248/24"
	spec := virt.ContainerSpec{
		Name: name, Template: tmpl, Unprivileged: true,
		Interfaces: []virt.ContainerInterfaceSpec{{IPv4Address: ip1}},
		Config:     map[string]string{"lxc.environment": "VT_PENDING=1"},
	}
	created := create(t, c, spec)
	spec.Interfaces = created.Interfaces
	if created.PendingRestart != nil {
		t.Errorf("a stopped container has pending %q", created.PendingRestart)
	}
	start(t, c, name)
	if s := readBack(t, c, name); s.PendingRestart != nil {
		t.Fatalf("just started, pending %q", s.PendingRestart)
	}
	if out := run(t, c, name, "cat", "/proc/1/environ"); !strings.Contains(out, "VT_PENDING=1") {
		t.Fatalf("lxc.environment did not reach init: %q", out)
	}

	update := func(t *testing.T, want []string) *virt.ContainerSpec {
		t.Helper()
		got, err := c.UpdateContainer(ctx, name, spec)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.PendingRestart, want) {
			t.Errorf("UpdateContainer: pending %q, want %q", got.PendingRestart, want)
		}
		if s := readBack(t, c, name); !slices.Equal(s.PendingRestart, want) {
			t.Errorf("Container(): pending %q, want %q", s.PendingRestart, want)
		}
		return got
	}

	t.Run("live and boot-time fields are never pending", func(t *testing.T) {
		spec.MemoryMiB, spec.CPUWeight, spec.StartOnBoot = 64, 300, true
		update(t, nil)
	})
	t.Run("interface", func(t *testing.T) {
		spec.Interfaces[0].IPv4Address = ip2
		got := update(t, []string{"interfaces"})
		if got.Interfaces[0].IPv4Address != ip2 || got.Interfaces[0].HWAddr != created.Interfaces[0].HWAddr {
			t.Errorf("saved interface %+v; want the new address and the old MAC", got.Interfaces[0])
		}
		if out := run(t, c, name, "ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, ip1) {
			t.Errorf("the running container changed its address before a restart:\n%s", out)
		}
	})
	t.Run("back to what runs", func(t *testing.T) {
		spec.Interfaces[0].IPv4Address = ip1
		update(t, nil)
		spec.Interfaces[0].IPv4Address = ip2
		update(t, []string{"interfaces"})
	})
	mountDir := sharedTempDir(t)
	if err := os.WriteFile(filepath.Join(mountDir, "f"), []byte("mounted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("every restart field", func(t *testing.T) {
		spec.Hostname = "vt-pending-host"
		spec.Mounts = []virt.MountSpec{{Source: mountDir, Target: "/mnt/vt", CreateDir: true}}
		spec.Nesting = true
		spec.Config = nil // a removed key is still in the running config
		update(t, []string{"hostname", "interfaces", "mounts", "nesting", "config"})
	})

	// A restart applies them all.
	stop(t, c, name, 0)
	if s := readBack(t, c, name); s.PendingRestart != nil {
		t.Errorf("stopped, pending %q", s.PendingRestart)
	}
	start(t, c, name)
	if s := readBack(t, c, name); s.PendingRestart != nil {
		t.Errorf("after the restart, pending %q", s.PendingRestart)
	}
	if out := run(t, c, name, "ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, ip2) {
		t.Errorf("after the restart no %s:\n%s", ip2, out)
	}
	if out := run(t, c, name, "hostname"); out != "vt-pending-host\n" {
		t.Errorf("hostname %q after the restart", out)
	}
	if out := run(t, c, name, "cat", "/mnt/vt/f"); out != "mounted\n" {
		t.Errorf("mount after the restart reads %q", out)
	}
	if out := run(t, c, name, "cat", "/proc/1/environ"); strings.Contains(out, "VT_PENDING") {
		t.Errorf("the removed environment key still reaches init: %q", out)
	}
}

// Stopped containers are listed with the clones that lie on them and the
// metadata a template build left; running ones are not.
func TestContainerTemplates(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	tmpl := busyboxTemplate(t, c, true)
	md := virt.NewContainerMetadata("busybox", "1.35", "amd64", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	if err := virt.WriteContainerMetadata(c.dir(tmpl), md); err != nil {
		t.Fatal(err)
	}
	var clones []string
	for _, suffix := range []string{"b", "a", "run"} {
		n := testenv.Name(t, "lxc-tcl") + "-" + suffix
		create(t, c, virt.ContainerSpec{Name: n, Template: tmpl, Unprivileged: true})
		clones = append(clones, n)
	}
	running := clones[2]
	start(t, c, running)
	slices.Sort(clones)

	t0 := time.Now()
	list, err := c.ContainerTemplates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d templates listed in %s", len(list), time.Since(t0).Round(time.Microsecond))
	byName := map[string]virt.ContainerTemplate{}
	for _, ct := range list {
		byName[ct.Name] = ct
	}
	if !slices.IsSortedFunc(list, func(a, b virt.ContainerTemplate) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("templates are not sorted by name")
	}
	got, ok := byName[tmpl]
	if !ok {
		t.Fatalf("template %s not listed", tmpl)
	}
	want := virt.ContainerTemplate{Name: tmpl, Clones: clones, Metadata: md}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("template read back\n %+v\nwant\n %+v", got, want)
	}
	for _, n := range clones {
		ct, listed := byName[n]
		switch {
		case n == running && listed:
			t.Errorf("running container %s listed as a template", n)
		case n != running && !listed:
			t.Errorf("stopped clone %s not listed", n)
		case n != running && (ct.Clones != nil || ct.Metadata != nil):
			t.Errorf("clone %s listed with clones %q and metadata %v", n, ct.Clones, ct.Metadata)
		}
	}
}

// Each host check names its field and says what is wrong.
func TestCheckHost(t *testing.T) {
	c := newTestClient(t)
	tmpl := busyboxTemplate(t, c, true)
	privTmpl := busyboxTemplate(t, c, false)
	runningCt := testenv.Name(t, "lxc-run")
	create(t, c, virt.ContainerSpec{Name: runningCt, Template: tmpl, Unprivileged: true})
	start(t, c, runningCt)

	dir := t.TempDir()
	script := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	emptySubIDs := filepath.Join(dir, "subid")
	if err := os.WriteFile(emptySubIDs, []byte("someone:100000:65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noSubIDs := *c
	noSubIDs.subUIDFile, noSubIDs.subGIDFile = emptySubIDs, emptySubIDs
	noControllers := *c
	noControllers.cgroups = cgroupLayout{}
	noSwapAccounting := *c
	noSwapAccounting.cgroups = cgroupLayout{controllers: map[string]int{"memory": 1, "cpu": 1, "cpuset": 1}}

	clone := func(s virt.ContainerSpec) virt.ContainerSpec {
		s.Name, s.Template, s.Unprivileged = "vt-lxc-check", tmpl, true
		return s
	}
	busybox := func(s virt.ContainerSpec) virt.ContainerSpec {
		s.Name, s.LXCTemplate, s.Unprivileged = "vt-lxc-check", &virt.LXCTemplate{Name: "busybox"}, true
		return s
	}
	for _, tc := range []struct {
		name   string
		client *Client
		spec   virt.ContainerSpec
		field  string
		reason string
	}{
		{"missing bridge", c, clone(virt.ContainerSpec{Interfaces: []virt.ContainerInterfaceSpec{{Bridge: "vt-nobr0"}}}),
			"interfaces[0].bridge", `there is no bridge "vt-nobr0" on this host`},
		{"not a bridge", c, clone(virt.ContainerSpec{Interfaces: []virt.ContainerInterfaceSpec{{}, {Bridge: "lo"}}}),
			"interfaces[1].bridge", `"lo" is a network interface on this host, but not a bridge`},
		{"missing mount source", c, clone(virt.ContainerSpec{Mounts: []virt.MountSpec{{Source: "/nonexistent/vt", Target: "/x"}}}),
			"mounts[0].source", `cannot use "/nonexistent/vt" on this host: no such file or directory`},
		{"missing template", c, virt.ContainerSpec{Name: "vt-lxc-check", Template: "vt-lxc-no-such", Unprivileged: true},
			"template", `no container "vt-lxc-no-such" to clone: not found under ` + c.lxcPath},
		{"running template", c, virt.ContainerSpec{Name: "vt-lxc-check", Template: runningCt, Unprivileged: true},
			"template", fmt.Sprintf("container %q is running: a snapshot clone needs it stopped", runningCt)},
		{"privileged clone of an unprivileged template", c, virt.ContainerSpec{Name: "vt-lxc-check", Template: tmpl},
			"unprivileged", fmt.Sprintf("template container %q is unprivileged: a snapshot clone shares its files, so it must be unprivileged too", tmpl)},
		{"unprivileged clone of a privileged template", c, virt.ContainerSpec{Name: "vt-lxc-check", Template: privTmpl, Unprivileged: true},
			"unprivileged", "is privileged"},
		{"id map of another range", c, clone(virt.ContainerSpec{IDMap: []virt.IDMapEntry{{Kind: "u", HostID: 300000, Count: 65536}, {Kind: "g", HostID: 300000, Count: 65536}}}),
			"idmap", fmt.Sprintf("differs from the id map of template container %q", tmpl)},
		{"missing archive", c, virt.ContainerSpec{Name: "vt-lxc-check", Archive: "/nonexistent/rootfs.tar.gz"},
			"archive", `cannot use "/nonexistent/rootfs.tar.gz": no such file or directory`},
		{"archive is a directory", c, virt.ContainerSpec{Name: "vt-lxc-check", Archive: dir},
			"archive", fmt.Sprintf("%q is not a regular file", dir)},
		{"relative archive", c, virt.ContainerSpec{Name: "vt-lxc-check", Archive: "rootfs.tar"},
			"archive", `"rootfs.tar" is not an absolute path`},
		{"missing template script", c, virt.ContainerSpec{Name: "vt-lxc-check", LXCTemplate: &virt.LXCTemplate{Name: "vt-none"}},
			"lxc_template.name", `there is no LXC template script "vt-none" on this host`},
		{"template script not executable", c, virt.ContainerSpec{Name: "vt-lxc-check", LXCTemplate: &virt.LXCTemplate{Name: script}},
			"lxc_template.name", fmt.Sprintf("%q is not an executable file", script)},
		{"no subordinate ids", &noSubIDs, busybox(virt.ContainerSpec{}),
			"unprivileged", "add one with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 root`"},
		{"memory without a controller", &noControllers, clone(virt.ContainerSpec{MemoryMiB: 64}),
			"memory", "memory cgroup controller is on neither cgroup hierarchy"},
		{"cpus without a controller", &noControllers, clone(virt.ContainerSpec{CPUs: "0"}),
			"cpus", "cpuset cgroup controller is on neither cgroup hierarchy"},
		{"cpu weight without a controller", &noControllers, clone(virt.ContainerSpec{CPUWeight: 10}),
			"cpu_weight", "cpu cgroup controller is on neither cgroup hierarchy"},
		{"swap without accounting", &noSwapAccounting, clone(virt.ContainerSpec{MemoryMiB: 64, SwapMiB: 64}),
			"swap", "does not account swap"},
		{"CPU the host lacks", c, clone(virt.ContainerSpec{CPUs: "0,4095"}),
			"cpus", "CPU 4095 is not on this host, whose CPUs are " + c.hostCPUList},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.client.CheckHost(tc.spec)
			var es virt.SpecErrors
			if !errors.As(err, &es) {
				t.Fatalf("CheckHost = %v; want SpecErrors", err)
			}
			if len(es) != 1 || es[0].Field != tc.field || !strings.Contains(es[0].Reason, tc.reason) {
				t.Fatalf("CheckHost = %v; want one error on %s saying %q", err, tc.field, tc.reason)
			}
		})
	}

	t.Run("all well", func(t *testing.T) {
		for _, s := range []virt.ContainerSpec{
			clone(virt.ContainerSpec{MemoryMiB: 64, SwapMiB: 32, CPUs: "0", CPUWeight: 10, Interfaces: []virt.ContainerInterfaceSpec{{}}}),
			busybox(virt.ContainerSpec{}),
			{Name: "vt-lxc-check", Template: privTmpl},
		} {
			if err := c.CheckHost(s); err != nil {
				t.Errorf("CheckHost(%+v) = %v", s, err)
			}
		}
	})
	t.Run("several at once", func(t *testing.T) {
		err := noControllers.CheckHost(virt.ContainerSpec{
			Name: "vt-lxc-check", Template: "vt-lxc-no-such", MemoryMiB: 64,
			Interfaces: []virt.ContainerInterfaceSpec{{Bridge: "vt-nobr0"}},
		})
		var es virt.SpecErrors
		if !errors.As(err, &es) || len(es) != 3 {
			t.Fatalf("CheckHost = %v; want three errors", err)
		}
	})
}
