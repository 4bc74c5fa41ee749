//go:build linux && cgo

package lxc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// What these tests need from the host (scripts/testenv sets it up): LXC 5
// with the busybox template, running as root; a bridge lxcbr0 with
// 10.0.3.1/24 (no DHCP server needed: the tests use static addresses and
// take udhcpc out of busybox's rcS); root's subordinate ids in /etc/subuid
// and /etc/subgid (root:100000:65536).

const testBridge = "lxcbr0"

// newTestClient returns a client logging to the test, after checking the
// host has what the tests need; a missing piece fails, it does not skip.
func newTestClient(t *testing.T) *Client {
	t.Helper()
	testenv.Integration(t)
	if _, err := os.Stat(filepath.Join("/sys/class/net", testBridge, "bridge")); err != nil {
		t.Fatalf("test environment incomplete: no bridge %s (run `make testenv`, or: ip link add %[1]s type bridge; ip addr add 10.0.3.1/24 dev %[1]s; ip link set %[1]s up)", testBridge)
	}
	if _, err := virt.HostIDMap(idMapOwner); err != nil {
		t.Fatalf("test environment incomplete: %v", err)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "lxc", Level: hclog.Debug, Output: testWriter{t}})
	c, err := New("", log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// create makes a container and removes it when the test ends, however it
// ends; clones made later are removed before their templates.
func create(t *testing.T, c *Client, spec virt.ContainerSpec) *virt.ContainerSpec {
	t.Helper()
	t.Cleanup(func() { destroyForCleanup(t, c, spec.Name) })
	start := time.Now()
	got, err := c.CreateContainer(context.Background(), spec)
	if err != nil {
		t.Fatalf("CreateContainer(%s): %v", spec.Name, err)
	}
	t.Logf("created %s (%s) in %s", spec.Name, sourceOf(spec), time.Since(start).Round(time.Millisecond))
	return got
}

func destroyForCleanup(t *testing.T, c *Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.DestroyContainer(ctx, name)
	if err != nil && !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("cleanup: %v", err)
	}
}

// freeTestIP picks an address on the test bridge; tests running at the
// same time on one host make a clash unlikely, and a clash would show as a
// failed ping, not as a wrong pass.
func freeTestIP(t testing.TB) string {
	var b [1]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	// The top of the /24: lxc-net's DHCP range is the whole of it, but
	// its dnsmasq hands out the low addresses first.
	return fmt.Sprintf("10.0.3.%d", 200+int(b[0])%50)
}

// quietRCS takes udhcpc out of the busybox template's rcS: it runs in the
// foreground, so without a DHCP server init never finishes booting and a
// clean stop waits its whole timeout; and with one, it flushes a static
// address. The file keeps its owner (the container's mapped root).
func quietRCS(t *testing.T, c *Client, name string) {
	t.Helper()
	p := filepath.Join(c.dir(name), "rootfs", "etc", "init.d", "rcS")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.ReplaceAll(string(b), "/bin/udhcpc\n", "")
	if err := os.WriteFile(p, []byte(out), st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if err := os.Chown(p, int(sys.Uid), int(sys.Gid)); err != nil {
		t.Fatal(err)
	}
}

// run executes a command in the container and returns its stdout, failing
// the test unless it exits 0.
func run(t *testing.T, c *Client, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := c.Exec(ctx, name, virt.ExecSpec{Args: args, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("Exec %q: %v", args, err)
	}
	if code != 0 {
		t.Fatalf("Exec %q exited %d; stderr: %s", args, code, stderr.String())
	}
	return stdout.String()
}

func start(t *testing.T, c *Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := c.StartContainer(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("started %s in %s", name, time.Since(t0).Round(time.Millisecond))
}

func stop(t *testing.T, c *Client, name string, grace time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := c.StopContainer(ctx, name, grace); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped %s in %s", name, time.Since(t0).Round(time.Millisecond))
}

func readBack(t *testing.T, c *Client, name string) *virt.ContainerSpec {
	t.Helper()
	s, err := c.Container(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVersion(t *testing.T) {
	c := newTestClient(t)
	if v := c.Version(); !strings.HasPrefix(v, "5.") {
		t.Fatalf("Version() = %q, want liblxc 5.x", v)
	}
}

// The whole life of an unprivileged busybox container with the spec's
// features: create, read back, start, exec, limits, network, mounts, stop,
// destroy.
func TestContainerLifecycle(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	name := testenv.Name(t, "lxc-life")

	// The container's root is an unprivileged host uid: the source must be
	// reachable by anyone, which t.TempDir (0700) is not.
	tmp := t.TempDir()
	hostDir := filepath.Join(tmp, "host data")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := tmp; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(hostDir, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ip := freeTestIP(t)
	spec := virt.ContainerSpec{
		Name:         name,
		LXCTemplate:  &virt.LXCTemplate{Name: "busybox"},
		Unprivileged: true,
		MemoryMiB:    64,
		SwapMiB:      32,
		CPUs:         "0",
		CPUWeight:    50,
		Interfaces:   []virt.ContainerInterfaceSpec{{IPv4Address: ip + "/24", IPv4Gateway: "10.0.3.1"}},
		Mounts:       []virt.MountSpec{{Source: hostDir, Target: "/mnt/host data", ReadOnly: true, CreateDir: true}},
		StartOnBoot:  true,
		Config:       map[string]string{"lxc.signal.halt": "SIGUSR1"},
	}
	got := create(t, c, spec)

	// What comes back is what was asked for, plus what the host filled in.
	want := spec.WithDefaults()
	hostMap, err := virt.HostIDMap(idMapOwner)
	if err != nil {
		t.Fatal(err)
	}
	want.IDMap = hostMap
	want.State = virt.ContainerStopped
	if len(got.Interfaces) == 1 {
		if !containerMAC(got.Interfaces[0].HWAddr) {
			t.Errorf("generated MAC %q is not in LXC's 00:16:3e range", got.Interfaces[0].HWAddr)
		}
		want.Interfaces[0].HWAddr = got.Interfaces[0].HWAddr
	}
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("CreateContainer returned\n %+v\nwant\n %+v", got, &want)
	}
	if again := readBack(t, c, name); !reflect.DeepEqual(again, &virt.ContainerSpec{
		Name: want.Name, Hostname: want.Hostname, Unprivileged: true, IDMap: want.IDMap,
		MemoryMiB: want.MemoryMiB, SwapMiB: want.SwapMiB, CPUs: want.CPUs, CPUWeight: want.CPUWeight,
		Interfaces: want.Interfaces, Mounts: want.Mounts, StartOnBoot: true, Config: want.Config,
		State: virt.ContainerStopped,
	}) {
		t.Errorf("Container() read back %+v", again)
	}
	for _, f := range []string{"config", ManagedConfigName} {
		st, err := os.Stat(filepath.Join(c.dir(name), f))
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm&0o027 != 0 {
			t.Errorf("%s has mode %v; want no group write and nothing for others", f, perm)
		}
	}
	if names, err := c.ListContainers(ctx); err != nil || !slices.Contains(names, name) {
		t.Fatalf("ListContainers = %q, %v; want it to hold %s", names, err, name)
	}

	quietRCS(t, c, name)
	start(t, c, name)
	if err := c.StartContainer(ctx, name); err != nil {
		t.Fatalf("starting a running container: %v", err)
	}
	running := readBack(t, c, name)
	if running.State != virt.ContainerRunning || running.PID <= 0 {
		t.Fatalf("after start: state %s pid %d", running.State, running.PID)
	}
	if !slices.Contains(running.IPv4Addresses, ip) {
		t.Errorf("read-back addresses %q lack %s", running.IPv4Addresses, ip)
	}

	t.Run("root inside is not root outside", func(t *testing.T) {
		if out := run(t, c, name, "id", "-u"); out != "0\n" {
			t.Fatalf("id -u inside printed %q, want 0", out)
		}
		uid := procStatusID(t, running.PID, "Uid:")
		if uid < int(hostMap[0].HostID) || uid >= int(hostMap[0].HostID+hostMap[0].Count) {
			t.Fatalf("container init (pid %d) runs as host uid %d, outside the subordinate range %+v", running.PID, uid, hostMap[0])
		}
		t.Logf("init pid %d: uid 0 inside, %d on the host", running.PID, uid)
	})

	t.Run("static address", func(t *testing.T) {
		out := run(t, c, name, "ip", "-4", "addr", "show", "eth0")
		if !strings.Contains(out, "inet "+ip+"/24") {
			t.Fatalf("ip addr inside shows no %s/24:\n%s", ip, out)
		}
		if out := run(t, c, name, "ip", "route"); !strings.Contains(out, "default via 10.0.3.1") {
			t.Errorf("no default route via the gateway:\n%s", out)
		}
		// The bridge's address answers only if the veth really is on it.
		var pingOut bytes.Buffer
		code, err := c.Exec(ctx, name, virt.ExecSpec{Args: []string{"ping", "-c", "1", "-W", "2", "10.0.3.1"}, Stdout: &pingOut, Stderr: &pingOut})
		if err != nil || code != 0 {
			t.Errorf("the container cannot ping the bridge at 10.0.3.1: exit %d, %v\n%s", code, err, pingOut.String())
		}
	})

	t.Run("limits", func(t *testing.T) {
		ct, err := c.open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer c.release(ct)
		// Where LXC really put the container must be where the limits
		// were written: the running container's cgroups say.
		hier := procCgroupHierarchy(t, running.PID, "memory")
		if want := c.cgroups.version("memory"); hier != want {
			t.Fatalf("the container's memory cgroup is on v%d, but the detected layout says v%d", hier, want)
		}
		var memKey, swapKey, wantSwap string
		if hier == 1 {
			memKey, swapKey, wantSwap = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", strconv.Itoa(96<<20)
		} else {
			memKey, swapKey, wantSwap = "memory.max", "memory.swap.max", strconv.Itoa(32<<20)
		}
		if v := ct.CgroupItem(memKey); len(v) != 1 || v[0] != strconv.Itoa(64<<20) {
			t.Errorf("cgroup %s = %q, want %d", memKey, v, 64<<20)
		}
		if v := ct.CgroupItem(swapKey); len(v) != 1 || v[0] != wantSwap {
			t.Errorf("cgroup %s = %q, want %s", swapKey, v, wantSwap)
		}
		if v := ct.CgroupItem("cpuset.cpus"); len(v) != 1 || v[0] != "0" {
			t.Errorf("cgroup cpuset.cpus = %q, want 0", v)
		}
		t.Logf("memory cgroup on v%d; %s = %q", hier, memKey, ct.CgroupItem(memKey))
	})

	t.Run("read-only bind mount", func(t *testing.T) {
		if out := run(t, c, name, "cat", "/mnt/host data/hello"); out != "from the host\n" {
			t.Fatalf("mounted file reads %q", out)
		}
		code, err := c.Exec(ctx, name, virt.ExecSpec{Args: []string{"touch", "/mnt/host data/new"}})
		if err != nil || code == 0 {
			t.Fatalf("writing to the read-only mount: exit %d, %v; want a failure", code, err)
		}
	})

	t.Run("exec wiring", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code, err := c.Exec(ctx, name, virt.ExecSpec{
			Args:   []string{"sh", "-c", `cat; echo "$GREETING" >&2; echo "$PATH" >&2; exit 3`},
			Env:    []string{"GREETING=hi"},
			Stdin:  strings.NewReader("piped in\n"),
			Stdout: &stdout,
			Stderr: &stderr,
		})
		if err != nil || code != 3 {
			t.Fatalf("exit %d, %v; want 3", code, err)
		}
		if stdout.String() != "piped in\n" {
			t.Errorf("stdout %q", stdout.String())
		}
		if !strings.HasPrefix(stderr.String(), "hi\n/usr/local/sbin:") {
			t.Errorf("stderr %q: want the given env and the default PATH", stderr.String())
		}

		var both bytes.Buffer
		if _, err := c.Exec(ctx, name, virt.ExecSpec{Args: []string{"sh", "-c", "echo out; echo err >&2"}, Stdout: &both, Stderr: &both}); err != nil {
			t.Fatal(err)
		}
		if lines := strings.Fields(both.String()); !slices.Equal(lines, []string{"out", "err"}) {
			t.Errorf("combined output %q", both.String())
		}

		code, err = c.Exec(ctx, name, virt.ExecSpec{Args: []string{"/no/such/program"}})
		if err != nil || code != 127 {
			t.Errorf("a missing program: exit %d, %v; want 127 as from a shell", code, err)
		}

		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		t0 := time.Now()
		_, err = c.Exec(short, name, virt.ExecSpec{Args: []string{"sleep", "60"}})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 10*time.Second {
			t.Errorf("exec past its deadline: %v after %s; want DeadlineExceeded soon after 1s", err, time.Since(t0))
		}
		if out := run(t, c, name, "ps"); strings.Contains(out, "sleep 60") {
			t.Errorf("the killed command is still running:\n%s", out)
		}
	})

	stop(t, c, name, 20*time.Second)
	if s := readBack(t, c, name); s.State != virt.ContainerStopped || s.PID != 0 || len(s.IPv4Addresses) != 0 {
		t.Fatalf("after stop: %s pid %d addresses %q", s.State, s.PID, s.IPv4Addresses)
	}
	if err := c.StopContainer(ctx, name, time.Second); err != nil {
		t.Fatalf("stopping a stopped container: %v", err)
	}
	if code, err := c.Exec(ctx, name, virt.ExecSpec{Args: []string{"true"}}); err == nil {
		t.Fatalf("exec in a stopped container returned %d, nil", code)
	}

	// Destroy kills a running container first.
	start(t, c, name)
	if err := c.DestroyContainer(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Container(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("Container after destroy: %v, want ErrNotFound", err)
	}
	if _, err := os.Lstat(c.dir(name)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("container directory left behind: %v", err)
	}
}

func containerMAC(mac string) bool {
	return strings.HasPrefix(mac, "00:16:3e:") && len(mac) == 17
}

// procStatusID reads the real id from a /proc/PID/status line (Uid:, Gid:).
func procStatusID(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			id, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
	}
	t.Fatalf("/proc/%d/status has no %s line", pid, field)
	return -1
}

// procCgroupHierarchy says on which hierarchy (1 or 2) the process's cgroup
// for controller is, from /proc/PID/cgroup: v1 lines name their
// controllers, the v2 line is "0::path".
func procCgroupHierarchy(t *testing.T, pid int, controller string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	onV2 := false
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			onV2 = true
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), controller) {
			if !strings.Contains(parts[2], "lxc.payload") {
				t.Fatalf("the container's %s cgroup %q is not LXC's", controller, parts[2])
			}
			return 1
		}
	}
	if onV2 {
		return 2
	}
	t.Fatalf("/proc/%d/cgroup shows no %s cgroup", pid, controller)
	return 0
}

// A rootfs archive of a busybox container, made in the test, becomes an
// unprivileged container whose files belong to the mapped ids.
func TestCreateFromArchive(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()

	// The source is privileged, so its files carry the ids the archive
	// should hold (0, and 1000 for a user's home), plus a device node the
	// unprivileged unpack must leave out.
	src := testenv.Name(t, "lxc-src")
	create(t, c, virt.ContainerSpec{Name: src, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}})
	quietRCS(t, c, src)
	rootfs := filepath.Join(c.dir(src), "rootfs")
	home := filepath.Join(rootfs, "home", "user")
	if err := os.Mkdir(home, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(filepath.Join(rootfs, "dev", "vt-null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	if out, err := exec.Command("tar", "--numeric-owner", "-C", rootfs, "-czf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	// The archive should be readable only by root, as it will be in real
	// use; the unpack in the user namespace must not depend on reading it.
	if err := os.Chmod(archive, 0o600); err != nil {
		t.Fatal(err)
	}

	name := testenv.Name(t, "lxc-arch")
	ip := freeTestIP(t)
	got := create(t, c, virt.ContainerSpec{
		Name:         name,
		Archive:      archive,
		Unprivileged: true,
		Interfaces:   []virt.ContainerInterfaceSpec{{IPv4Address: ip + "/24"}},
		// busybox's init halts on SIGUSR1, not on LXC's default SIGPWR.
		Config: map[string]string{"lxc.signal.halt": "SIGUSR1"},
	})
	if got.Archive != archive || !got.Unprivileged {
		t.Errorf("returned spec: archive %q unprivileged %v", got.Archive, got.Unprivileged)
	}
	base := got.IDMap[0].HostID
	newRoot := filepath.Join(c.dir(name), "rootfs")
	for path, wantUID := range map[string]uint32{".": base, "bin/busybox": base, "home/user": base + 1000} {
		st, err := os.Lstat(filepath.Join(newRoot, path))
		if err != nil {
			t.Fatal(err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != wantUID {
			t.Errorf("%s is owned by host uid %d, want %d", path, uid, wantUID)
		}
	}
	if st, err := os.Stat(filepath.Join(newRoot, "bin", "busybox")); err != nil || st.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("bin/busybox lost its setuid bit in the unpack: %v %v", st.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(newRoot, "dev", "vt-null")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("device node unpacked into an unprivileged rootfs: %v", err)
	}

	start(t, c, name)
	if out := run(t, c, name, "id", "-u"); out != "0\n" {
		t.Fatalf("id -u inside printed %q", out)
	}
	if out := run(t, c, name, "stat", "-c", "%u:%g", "/home/user"); out != "1000:1000\n" {
		t.Errorf("/home/user inside is owned by %q, want 1000:1000", out)
	}
	if out := run(t, c, name, "ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, ip+"/24") {
		t.Errorf("no %s inside:\n%s", ip, out)
	}
	stop(t, c, name, 20*time.Second)

	t.Run("privileged", func(t *testing.T) {
		name := testenv.Name(t, "lxc-archp")
		create(t, c, virt.ContainerSpec{Name: name, Archive: archive, Config: map[string]string{"lxc.signal.halt": "SIGUSR1"}})
		st, err := os.Lstat(filepath.Join(c.dir(name), "rootfs", "dev", "vt-null"))
		if err != nil || st.Mode()&fs.ModeCharDevice == 0 {
			t.Errorf("privileged unpack lost the device node: %v %v", st, err)
		}
		start(t, c, name)
		if out := run(t, c, name, "id", "-u"); out != "0\n" {
			t.Fatalf("id -u inside printed %q", out)
		}
		if err := c.DestroyContainer(ctx, name); err != nil {
			t.Fatal(err)
		}
	})
}

// A snapshot clone of a stopped template lies on an overlay; the template
// cannot go while the clone exists.
func TestSnapshotClone(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()

	tmpl := testenv.Name(t, "lxc-tmpl")
	create(t, c, virt.ContainerSpec{Name: tmpl, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}, Unprivileged: true})
	quietRCS(t, c, tmpl)

	name := testenv.Name(t, "lxc-clone")
	got := create(t, c, virt.ContainerSpec{
		Name:         name,
		Template:     tmpl,
		Unprivileged: true,
		Interfaces:   []virt.ContainerInterfaceSpec{{IPv4Address: freeTestIP(t) + "/24"}},
		MemoryMiB:    32,
		Nesting:      true,
	})
	if got.Template != tmpl || got.Hostname != name || got.MemoryMiB != 32 || len(got.IDMap) != 2 || !got.Nesting {
		t.Errorf("clone read back as %+v", got)
	}
	conf, err := os.ReadFile(filepath.Join(c.dir(name), "config"))
	if err != nil {
		t.Fatal(err)
	}
	wantRootfs := "lxc.rootfs.path = overlay:" + filepath.Join(c.dir(tmpl), "rootfs") + ":"
	if !strings.Contains(string(conf), wantRootfs) {
		t.Fatalf("clone's config has no %q:\n%s", wantRootfs, conf)
	}

	start(t, c, name)
	if out := run(t, c, name, "cat", "/proc/mounts"); !strings.Contains(out, " / overlay ") {
		t.Errorf("clone's / is not an overlay:\n%s", out)
	}
	run(t, c, name, "sh", "-c", "echo clone > /root/only-in-clone")
	// Nesting's uncovered proc, which a nested container's setup needs.
	run(t, c, name, "test", "-e", "/dev/.lxc/proc/self")
	if _, err := os.Stat(filepath.Join(c.dir(tmpl), "rootfs", "root", "only-in-clone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a write in the clone reached the template: %v", err)
	}

	t.Run("template with clones", func(t *testing.T) {
		err := c.DestroyContainer(ctx, tmpl)
		var hc *virt.HasClonesError
		if !errors.As(err, &hc) || !slices.Contains(hc.Clones, name) {
			t.Fatalf("destroying the template: %v; want a HasClonesError naming %s", err, name)
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name the clone", err)
		}
		if _, err := c.Container(ctx, tmpl); err != nil {
			t.Fatalf("the template is gone after the refused destroy: %v", err)
		}
	})

	t.Run("mismatched privilege", func(t *testing.T) {
		_, err := c.CreateContainer(ctx, virt.ContainerSpec{Name: testenv.Name(t, "lxc-clonep"), Template: tmpl})
		var es virt.SpecErrors
		if !errors.As(err, &es) || es[0].Field != "unprivileged" {
			t.Fatalf("privileged clone of an unprivileged template: %v; want a spec error on unprivileged", err)
		}
	})

	t.Run("running template", func(t *testing.T) {
		other := testenv.Name(t, "lxc-tmpl2")
		create(t, c, virt.ContainerSpec{Name: other, Template: tmpl, Unprivileged: true})
		start(t, c, other)
		clone := testenv.Name(t, "lxc-clone2")
		_, err := c.CreateContainer(ctx, virt.ContainerSpec{Name: clone, Template: other, Unprivileged: true})
		if err == nil || !strings.Contains(err.Error(), "needs it stopped") {
			t.Fatalf("clone of a running template: %v", err)
		}
		if _, err := c.Container(ctx, clone); !errors.Is(err, virt.ErrNotFound) {
			t.Fatalf("refused clone left something: %v", err)
		}
		if err := c.DestroyContainer(ctx, other); err != nil {
			t.Fatal(err)
		}
	})

	if err := c.DestroyContainer(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.DestroyContainer(ctx, tmpl); err != nil {
		t.Fatalf("destroying the template once its clone is gone: %v", err)
	}
}

// A create that fails removes what it made.
func TestFailedCreateLeavesNothing(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()

	garbage := filepath.Join(t.TempDir(), "broken.tar.gz")
	// gzip's magic, then nothing tar can read: the unpack starts and fails.
	if err := os.WriteFile(garbage, append([]byte{0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte("x"), 4096)...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec virt.ContainerSpec
		want string
	}{
		{"unknown lxc template", virt.ContainerSpec{LXCTemplate: &virt.LXCTemplate{Name: "vt-no-such-template"}, Unprivileged: true}, `no LXC template script "vt-no-such-template"`},
		{"failing lxc template", virt.ContainerSpec{LXCTemplate: &virt.LXCTemplate{Name: "busybox", Args: []string{"--busybox-path", "/nonexistent/busybox"}}, Unprivileged: true}, "Failed to find busybox binary"},
		{"broken archive", virt.ContainerSpec{Archive: garbage, Unprivileged: true}, "tar"},
		{"missing archive", virt.ContainerSpec{Archive: "/nonexistent/rootfs.tar"}, "archive"},
		{"missing template container", virt.ContainerSpec{Template: "vt-lxc-no-such-container"}, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name = testenv.Name(t, "lxc-fail")
			t.Cleanup(func() { destroyForCleanup(t, c, tc.spec.Name) })
			_, err := c.CreateContainer(ctx, tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CreateContainer: %v; want an error mentioning %q", err, tc.want)
			}
			t.Logf("error: %v", err)
			names, lerr := c.ListContainers(ctx)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if slices.Contains(names, tc.spec.Name) {
				t.Errorf("ListContainers still has %s", tc.spec.Name)
			}
			if _, err := os.Lstat(c.dir(tc.spec.Name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left behind: %v", c.dir(tc.spec.Name), err)
			}
		})
	}
}

// A create that ctx cuts short kills the template (and its children) and
// removes the half-made container.
func TestCreateCancelled(t *testing.T) {
	c := newTestClient(t)
	tmp := t.TempDir()
	script, marker := filepath.Join(tmp, "lxc-vt-slow"), filepath.Join(tmp, "ran")
	// LXC has made the container's directory and config by the time the
	// template runs; the marker proves it got that far.
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch "+marker+"\nsleep 300\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	name := testenv.Name(t, "lxc-slow")
	t.Cleanup(func() { destroyForCleanup(t, c, name) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t0 := time.Now()
	_, err := c.CreateContainer(ctx, virt.ContainerSpec{Name: name, LXCTemplate: &virt.LXCTemplate{Name: script}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CreateContainer past its deadline: %v; want DeadlineExceeded", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the template never ran: %v", err)
	}
	if d := time.Since(t0); d > 15*time.Second {
		t.Errorf("the cancelled create took %s", d)
	}
	if _, err := os.Lstat(c.dir(name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left behind: %v", c.dir(name), err)
	}
	if out, _ := exec.Command("pgrep", "-f", script).Output(); len(out) > 0 {
		t.Errorf("the template script still runs: pids %s", out)
	}
}

func TestCreateExisting(t *testing.T) {
	c := newTestClient(t)
	name := testenv.Name(t, "lxc-dup")
	spec := virt.ContainerSpec{Name: name, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}, Unprivileged: true}
	create(t, c, spec)
	_, err := c.CreateContainer(context.Background(), spec)
	if !errors.Is(err, virt.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if _, err := c.Container(context.Background(), name); err != nil {
		t.Fatalf("the failed second create harmed the first container: %v", err)
	}
}

func TestNotFound(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	name := testenv.Name(t, "lxc-missing")
	checks := map[string]error{}
	_, checks["Container"] = c.Container(ctx, name)
	checks["StartContainer"] = c.StartContainer(ctx, name)
	checks["StopContainer"] = c.StopContainer(ctx, name, time.Second)
	checks["DestroyContainer"] = c.DestroyContainer(ctx, name)
	_, checks["Exec"] = c.Exec(ctx, name, virt.ExecSpec{Args: []string{"true"}})
	for op, err := range checks {
		if !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("%s on a missing container: %v, want ErrNotFound", op, err)
		}
	}

	// A name that cannot be a container's is a bad request, not "gone".
	_, err := c.Container(ctx, "../etc")
	var es virt.SpecErrors
	if errors.Is(err, virt.ErrNotFound) || !errors.As(err, &es) {
		t.Fatalf("Container(\"../etc\"): %v; want a spec error", err)
	}
}

// A start that fails says why, in liblxc's words, and leaves the container
// stopped.
func TestStartFailureSaysWhy(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	tmpl := busyboxTemplate(t, c, true)
	name := testenv.Name(t, "lxc-sfail")
	create(t, c, virt.ContainerSpec{Name: name, Template: tmpl, Unprivileged: true, Interfaces: []virt.ContainerInterfaceSpec{{}}})
	// The bridge goes away behind the layer's back.
	managed := filepath.Join(c.dir(name), ManagedConfigName)
	b, err := os.ReadFile(managed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(managed, []byte(strings.Replace(string(b), "link = "+testBridge, "link = vt-nobr0", 1)), 0o640); err != nil {
		t.Fatal(err)
	}
	err = c.StartContainer(ctx, name)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "vt-nobr0") {
		t.Fatalf("StartContainer with a missing bridge: %v; want an error naming the container and the bridge", err)
	}
	t.Logf("error: %v", err)
	if s := readBack(t, c, name); s.State != virt.ContainerStopped {
		t.Errorf("after the failed start: %s", s.State)
	}
}
