package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/lxc"
)

func init() {
	resource.AddTestSweepers("virt_container", &resource.Sweeper{
		Name: "virt_container",
		F:    func(string) error { return sweepContainersNamed(testenv.Prefix) },
	})
}

// sweepContainersNamed destroys every container whose name starts with
// prefix, running or not. Clones go before their templates: LXC refuses to
// destroy a container that clones lie on, so whatever is refused for that
// reason is tried again once the others are gone.
func sweepContainersNamed(prefix string) error {
	ctx := context.Background()
	lx, err := lxc.New(DefaultLXCPath, nil)
	if err != nil {
		return err
	}
	names, err := lx.ListContainers(ctx)
	if err != nil {
		return err
	}
	var pending []string
	for _, name := range names {
		if strings.HasPrefix(name, prefix) {
			pending = append(pending, name)
		}
	}
	var errs []error
	for len(pending) > 0 {
		var again []string
		for _, name := range pending {
			err := lx.DestroyContainer(ctx, name)
			var hc *virt.HasClonesError
			switch {
			case err == nil, errors.Is(err, virt.ErrNotFound):
			case errors.As(err, &hc):
				again = append(again, name)
			default:
				errs = append(errs, err)
			}
		}
		if len(again) == len(pending) {
			return errors.Join(append(errs, fmt.Errorf("containers %s keep clones that are not being swept", strings.Join(again, ", ")))...)
		}
		pending = again
	}
	return errors.Join(errs...)
}

// The static addresses of the container tests: each test has its own, so
// that tests running in parallel never share one. lxcbr0's DHCP server
// hands out .2-.199 only (scripts/testenv); the LXC layer's integration tests
// take random ones from .200-.229, these tests .230 and above.
const (
	containerTestIPClone   = "10.0.3.231"
	containerTestIPArchive = "10.0.3.232"
	containerTestIPExample = "10.0.3.233"
)

// containerTestClient returns an LXC client for the provider's default LXC
// path, after checking that the host has what container tests need; a
// missing piece fails, it does not skip.
func containerTestClient(t *testing.T) *lxc.Client {
	t.Helper()
	if _, err := os.Stat("/sys/class/net/" + virt.DefaultContainerBridge + "/bridge"); err != nil {
		t.Fatalf("test environment incomplete: no bridge %s (run `make testenv`)", virt.DefaultContainerBridge)
	}
	if _, err := virt.HostIDMap("root"); err != nil {
		t.Fatalf("test environment incomplete: %v (run `make testenv`)", err)
	}
	lx, err := lxc.New(DefaultLXCPath, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return lx
}

// containerTestTemplate makes a stopped busybox container to clone from,
// and removes it when the test ends (after Terraform has destroyed the
// clones).
func containerTestTemplate(t *testing.T, lx *lxc.Client, unprivileged bool) string {
	t.Helper()
	name := testenv.Name(t, "tf-ctt")
	containerTestCreate(t, lx, virt.ContainerSpec{Name: name, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}, Unprivileged: unprivileged})
	containerTestQuietRCS(t, lx, name)
	return name
}

// containerTestCreate makes a container outside Terraform and removes it
// when the test ends.
func containerTestCreate(t *testing.T, lx *lxc.Client, spec virt.ContainerSpec) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := lx.DestroyContainer(ctx, spec.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
	if _, err := lx.CreateContainer(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
}

// containerTestQuietRCS takes udhcpc out of the busybox template's rcS:
// started in the foreground, it would flush the static address the tests
// give eth0 and replace it with a DHCP lease. The file keeps its owner (an
// unprivileged container's mapped root).
func containerTestQuietRCS(t *testing.T, lx *lxc.Client, name string) {
	t.Helper()
	p := filepath.Join(lx.LXCPath(), name, "rootfs", "etc", "init.d", "rcS")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/bin/udhcpc\n", "")), st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if err := os.Chown(p, int(sys.Uid), int(sys.Gid)); err != nil {
		t.Fatal(err)
	}
}

// containerTestExec runs a command in the container through LXC (as
// lxc-attach does) and returns its output; a non-zero exit is an error.
func containerTestExec(lx *lxc.Client, name string, args ...string) (string, error) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := lx.Exec(ctx, name, virt.ExecSpec{Args: args, Stdout: &out, Stderr: &out})
	if err != nil {
		return "", fmt.Errorf("exec %q in %s: %w", args, name, err)
	}
	if code != 0 {
		return out.String(), fmt.Errorf("exec %q in %s: exit %d: %s", args, name, code, out.String())
	}
	return out.String(), nil
}

// containerTestDir makes a directory for a bind mount that an unprivileged
// container's root (an ordinary host uid) can reach: t.TempDir and its
// parent are 0700.
func containerTestDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// containerTestAttrs returns the resource's attributes in state.
func containerTestAttrs(s *terraform.State, addr string) (map[string]string, error) {
	rs, ok := s.RootModule().Resources[addr]
	if !ok {
		return nil, fmt.Errorf("%s not in state", addr)
	}
	return rs.Primary.Attributes, nil
}

// containerTestHostUID reads the host uid a process runs as.
func containerTestHostUID(pid string) (int, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("/proc/%s/status has no Uid line", pid)
}

// containerTestMemoryLimit reads the memory limit of the cgroup a
// container's process is in, from the hierarchy that holds the memory
// controller on this host: v1's memory.limit_in_bytes or v2's memory.max.
// (Inside, the busybox containers have no cgroup file system to read.)
func containerTestMemoryLimit(pid string) (string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return "", err
	}
	var v2 string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), "memory") {
			out, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
			return strings.TrimSpace(string(out)), err
		}
		if parts[0] == "0" {
			v2 = parts[2]
		}
	}
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if out, err := os.ReadFile(filepath.Join(root, v2, "memory.max")); err == nil {
			return strings.TrimSpace(string(out)), nil
		}
	}
	return "", fmt.Errorf("process %s has no memory cgroup with a limit file", pid)
}

// containerTestMemoryEnforced proves the limit from inside: a process that
// touches more memory than the limit is killed, one that stays under it is
// not. With swap on the host the big one could swap instead of dying, so
// then only the small one is run.
func containerTestMemoryEnforced(lx *lxc.Client, name string, limitMiB int) error {
	if _, err := containerTestExec(lx, name, "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1"); err != nil {
		return fmt.Errorf("a process well under the limit: %w", err)
	}
	// /proc/swaps is a header line, then one line per swap area.
	if swaps, _ := os.ReadFile("/proc/swaps"); strings.Count(strings.TrimSpace(string(swaps)), "\n") > 0 {
		return nil
	}
	bs := fmt.Sprintf("bs=%dM", limitMiB+32)
	if out, err := containerTestExec(lx, name, "dd", "if=/dev/zero", "of=/dev/null", bs, "count=1"); err == nil {
		return fmt.Errorf("dd %s inside a container limited to %d MiB was not killed:\n%s", bs, limitMiB, out)
	}
	return nil
}

// testAccCheckContainerDestroyed asks LXC, not the provider, whether the
// containers are gone, directories included.
func testAccCheckContainerDestroyed(lx *lxc.Client, names ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, name := range names {
			if _, err := lx.Container(context.Background(), name); err == nil {
				return fmt.Errorf("container %s still exists", name)
			} else if !errors.Is(err, virt.ErrNotFound) {
				return fmt.Errorf("container %s: %w", name, err)
			}
			switch _, err := os.Lstat(filepath.Join(lx.LXCPath(), name)); {
			case err == nil:
				return fmt.Errorf("directory of container %s left behind", name)
			case !errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("directory of container %s: %w", name, err)
			}
		}
		return nil
	}
}

// The whole life of a snapshot clone of a template container: create and
// start with a static address, a memory limit and a bind mount (proved from
// inside), unprivileged for real; an empty re-plan; import; a live limit
// change; a change that waits for a restart, then restart_on_update; drift
// (stopped, then destroyed outside Terraform); stopped by configuration;
// and a destroy that leaves the template.
func TestAccContainerResource_clone(t *testing.T) {
	testAccPreCheck(t)
	lx := containerTestClient(t)
	tmpl := containerTestTemplate(t, lx, true)
	name := testenv.Name(t, "tf-ct")
	dir := containerTestDir(t)
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ip := containerTestIPClone
	config := func(extra string) string {
		return providerConfig() + fmt.Sprintf(`
resource "virt_container" "test" {
  name     = %q
  template = %q
  %s

  network_interface {
    ipv4_address = "%s/24"
    ipv4_gateway = "10.0.3.1"
  }

  mount {
    source     = %q
    target     = "/mnt/host"
    read_only  = true
    create_dir = true
  }
}
`, name, tmpl, extra, ip, dir)
	}
	const addr = "virt_container.test"
	var pid string
	expectPID := func(same bool) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			a, err := containerTestAttrs(s, addr)
			if err != nil {
				return err
			}
			switch {
			case same && a["pid"] != pid:
				return fmt.Errorf("init pid %s, want %s: the change must not restart the container", a["pid"], pid)
			case !same && a["pid"] == pid:
				return fmt.Errorf("init pid still %s: the container was not restarted", pid)
			}
			pid = a["pid"]
			return nil
		}
	}
	expectMemory := func(mib int) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			a, err := containerTestAttrs(s, addr)
			if err != nil {
				return err
			}
			got, err := containerTestMemoryLimit(a["pid"])
			if err != nil {
				return err
			}
			if want := strconv.Itoa(mib << 20); got != want {
				return fmt.Errorf("memory limit of the container's cgroup is %s, want %s", got, want)
			}
			return containerTestMemoryEnforced(lx, name, mib)
		}
	}
	expectHostname := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			out, err := containerTestExec(lx, name, "hostname")
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) != want {
				return fmt.Errorf("hostname inside is %q, want %q", strings.TrimSpace(out), want)
			}
			return nil
		}
	}
	stopped := func() {
		if err := lx.StopContainer(context.Background(), name, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	destroyed := func() {
		if err := lx.DestroyContainer(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy: resource.ComposeTestCheckFunc(
			testAccCheckContainerDestroyed(lx, name),
			func(*terraform.State) error {
				if _, err := lx.Container(context.Background(), tmpl); err != nil {
					return fmt.Errorf("the template must outlive its clone: %w", err)
				}
				return nil
			},
		),
		Steps: []resource.TestStep{
			{
				Config: config("memory = 64"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("RUNNING")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("running"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("hostname"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("template"), knownvalue.StringExact(tmpl)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("unprivileged"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("idmap").AtSliceIndex(0).AtMapKey("host_id"), knownvalue.Int64Exact(100000)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("network_interface").AtSliceIndex(0).AtMapKey("name"), knownvalue.StringExact("eth0")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("network_interface").AtSliceIndex(0).AtMapKey("bridge"), knownvalue.StringExact(virt.DefaultContainerBridge)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("network_interface").AtSliceIndex(0).AtMapKey("hwaddr"),
						knownvalue.StringRegexp(regexp.MustCompile(`^00:16:3e(:[0-9a-f]{2}){3}$`))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("ipv4_addresses"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(ip)})),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pending_restart"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeTestCheckFunc(
					expectPID(false),
					expectMemory(64),
					func(s *terraform.State) error {
						out, err := containerTestExec(lx, name, "ip", "-4", "addr", "show", "eth0")
						if err != nil {
							return err
						}
						if !strings.Contains(out, "inet "+ip+"/24") {
							return fmt.Errorf("eth0 inside has no %s/24:\n%s", ip, out)
						}
						if out, err := containerTestExec(lx, name, "cat", "/mnt/host/hello"); err != nil {
							return err
						} else if out != "from the host\n" {
							return fmt.Errorf("the bind mount reads %q", out)
						}
						if _, err := containerTestExec(lx, name, "touch", "/mnt/host/new"); err == nil {
							return errors.New("the read-only mount is writable")
						}
						// Root inside is an ordinary uid on the host.
						if out, err := containerTestExec(lx, name, "id", "-u"); err != nil {
							return err
						} else if out != "0\n" {
							return fmt.Errorf("id -u inside printed %q", out)
						}
						uid, err := containerTestHostUID(pid)
						if err != nil {
							return err
						}
						if uid != 100000 {
							return fmt.Errorf("the container's init (pid %s) runs as host uid %d, want 100000", pid, uid)
						}
						return nil
					},
				),
			},
			{
				Config: config("memory = 64"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// A clone's template is read from its config: nothing is
				// left out of the comparison.
				Config:            config("memory = 64"),
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     name,
				ImportStateVerify: true,
			},
			{
				// Limits change live: same init, new cgroup limit.
				Config: config("memory = 96"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pending_restart"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeTestCheckFunc(expectPID(true), expectMemory(96)),
			},
			{
				// A new hostname waits for the next start (the plan warns).
				Config: config("memory = 96\n  hostname = \"renamed\""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("hostname"), knownvalue.StringExact("renamed")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pending_restart"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("hostname")})),
				},
				Check: resource.ComposeTestCheckFunc(expectPID(true), expectHostname(name)),
			},
			{
				// restart_on_update brings it in: a new init with the new
				// hostname, nothing pending.
				Config: config("memory = 96\n  hostname = \"renamed\"\n  restart_on_update = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pending_restart"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("RUNNING")),
				},
				Check: resource.ComposeTestCheckFunc(expectPID(false), expectHostname("renamed"), expectMemory(96)),
			},
			{
				// Stopped outside Terraform: planned to start, in place.
				PreConfig: stopped,
				Config:    config("memory = 96\n  hostname = \"renamed\"\n  restart_on_update = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("running"), knownvalue.Bool(true)),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("RUNNING")),
				},
				Check: expectPID(false),
			},
			{
				// Destroyed outside Terraform: created again.
				PreConfig: destroyed,
				Config:    config("memory = 96\n  hostname = \"renamed\"\n  restart_on_update = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("RUNNING")),
				},
				Check: resource.ComposeTestCheckFunc(expectPID(false), expectHostname("renamed"), expectMemory(96)),
			},
			{
				// Stopped by configuration.
				Config: config("memory = 96\n  hostname = \"renamed\"\n  running = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("STOPPED")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pid"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("ipv4_addresses"), knownvalue.ListSizeExact(0)),
				},
			},
			{
				Config: config("memory = 96\n  hostname = \"renamed\"\n  running = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// makeBusyboxArchive tars the root filesystem of a privileged busybox
// container (its files owned by ids 0..., as a distribution's tarball is)
// and removes the container.
func makeBusyboxArchive(t *testing.T, lx *lxc.Client) string {
	t.Helper()
	src := testenv.Name(t, "tf-ctsrc")
	containerTestCreate(t, lx, virt.ContainerSpec{Name: src, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}})
	containerTestQuietRCS(t, lx, src)
	archive := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	rootfs := filepath.Join(lx.LXCPath(), src, "rootfs")
	if out, err := exec.Command("tar", "--numeric-owner", "-C", rootfs, "-czf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	if err := lx.DestroyContainer(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	return archive
}

// A container from a rootfs archive made in the test: unprivileged, its
// files mapped into its id range; the CPU settings are kept; the archive is
// not known after an import.
func TestAccContainerResource_archive(t *testing.T) {
	testAccPreCheck(t)
	lx := containerTestClient(t)
	archive := makeBusyboxArchive(t, lx)
	name := testenv.Name(t, "tf-ct")
	ip := containerTestIPArchive
	config := providerConfig() + fmt.Sprintf(`
resource "virt_container" "test" {
  name       = %q
  archive    = %q
  cpus       = "0"
  cpu_weight = 50

  network_interface {
    ipv4_address = "%s/24"
  }

  # busybox's init halts on SIGUSR1, not on LXC's default SIGPWR.
  config = {
    "lxc.signal.halt" = "SIGUSR1"
  }
}
`, name, archive, ip)
	const addr = "virt_container.test"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckContainerDestroyed(lx, name),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("RUNNING")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("archive"), knownvalue.StringExact(archive)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("cpu_weight"), knownvalue.Int64Exact(50)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("cpus"), knownvalue.StringExact("0")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("memory"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("config").AtMapKey("lxc.signal.halt"), knownvalue.StringExact("SIGUSR1")),
				},
				Check: func(s *terraform.State) error {
					a, err := containerTestAttrs(s, addr)
					if err != nil {
						return err
					}
					uid, err := containerTestHostUID(a["pid"])
					if err != nil {
						return err
					}
					if uid != 100000 {
						return fmt.Errorf("init runs as host uid %d, want 100000", uid)
					}
					st, err := os.Stat(filepath.Join(lx.LXCPath(), name, "rootfs", "bin", "busybox"))
					if err != nil {
						return err
					}
					if owner := st.Sys().(*syscall.Stat_t).Uid; owner != 100000 {
						return fmt.Errorf("the unpacked /bin/busybox belongs to host uid %d, want 100000", owner)
					}
					out, err := containerTestExec(lx, name, "ip", "-4", "addr", "show", "eth0")
					if err != nil {
						return err
					}
					if !strings.Contains(out, ip+"/24") {
						return fmt.Errorf("eth0 inside has no %s/24:\n%s", ip, out)
					}
					return nil
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// LXC does not record the archive a container came from.
				Config:                  config,
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"archive"},
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if a := states[0].Attributes["archive"]; a != "" {
						return fmt.Errorf("imported archive %q, want none", a)
					}
					return nil
				},
			},
		},
	})
}

// A container from LXC's busybox template script, privileged (its init
// is host root), on DHCP; a template container with a clone Terraform does
// not know of cannot be destroyed, and the error names the clone.
func TestAccContainerResource_lxcTemplate(t *testing.T) {
	testAccPreCheck(t)
	lx := containerTestClient(t)
	name := testenv.Name(t, "tf-ct")
	clone := testenv.Name(t, "tf-ctc")
	resourceConfig := fmt.Sprintf(`
resource "virt_container" "test" {
  name         = %q
  unprivileged = false
  running      = %%t

  lxc_template {
    name = "busybox"
  }

  network_interface {}
}
`, name)
	config := func(running bool) string { return providerConfig() + fmt.Sprintf(resourceConfig, running) }
	// Should a step fail, the clone goes first, then the template.
	t.Cleanup(func() {
		for _, n := range []string{clone, name} {
			if err := lx.DestroyContainer(context.Background(), n); err != nil && !errors.Is(err, virt.ErrNotFound) {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	const addr = "virt_container.test"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckContainerDestroyed(lx, name, clone),
		Steps: []resource.TestStep{
			{
				Config: config(true),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("RUNNING")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("unprivileged"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("idmap"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("lxc_template").AtMapKey("name"), knownvalue.StringExact("busybox")),
				},
				Check: func(s *terraform.State) error {
					a, err := containerTestAttrs(s, addr)
					if err != nil {
						return err
					}
					uid, err := containerTestHostUID(a["pid"])
					if err != nil {
						return err
					}
					if uid != 0 {
						return fmt.Errorf("a privileged container's init runs as host uid %d, want 0", uid)
					}
					return nil
				},
			},
			{
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// LXC does not record the template script a container came
				// from; the DHCP address may come after the last refresh.
				Config:                  config(true),
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"lxc_template", "ipv4_addresses"},
			},
			{
				// Stopped, it can serve as a template; a clone made outside
				// Terraform then keeps it from being destroyed.
				Config: config(false),
				Check: func(*terraform.State) error {
					_, err := lx.CreateContainer(context.Background(), virt.ContainerSpec{Name: clone, Template: name})
					return err
				},
			},
			{
				Config:      providerConfig(),
				ExpectError: machineErrRE(fmt.Sprintf("Container %q still has clones", name)),
			},
			{
				PreConfig: func() {
					if err := lx.DestroyContainer(context.Background(), clone); err != nil {
						t.Fatal(err)
					}
				},
				Config: providerConfig(),
			},
		},
	})
}

// A create that fails removes what it made and leaves nothing in state:
// an archive that does not unpack, a template script that fails, a
// container that does not start; a name taken outside Terraform is refused
// with the way out.
func TestAccContainerResource_failedCreate(t *testing.T) {
	testAccPreCheck(t)
	lx := containerTestClient(t)
	tmp := t.TempDir()
	garbage := filepath.Join(tmp, "broken.tar.gz")
	// gzip's magic, then nothing tar can read: the unpack starts and fails.
	if err := os.WriteFile(garbage, append([]byte{0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte("x"), 4096)...), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(tmp, "lxc-vt-fails")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'vt: this template always fails' >&2\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	taken := testenv.Name(t, "tf-ctdup")
	containerTestCreate(t, lx, virt.ContainerSpec{Name: taken, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}, Unprivileged: true})

	for _, tc := range []struct {
		name, body, want string
	}{
		{"broken archive", fmt.Sprintf("archive = %q", garbage), `tar`},
		{"failing template script", fmt.Sprintf("lxc_template {\n  name = %q\n}", script), `vt: this template always fails`},
		// LXC runs the pre-start hook after the container is made: the
		// start fails, and the container must go.
		{"failed start", "lxc_template {\n  name = \"busybox\"\n}\n  config = {\n    \"lxc.hook.pre-start\" = \"/bin/false\"\n  }", `start container`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := testenv.Name(t, "tf-ctfail")
			config := providerConfig() + fmt.Sprintf("resource \"virt_container\" \"test\" {\n  name = %q\n  %s\n}\n", name, tc.body)
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProtoV6ProviderFactories,
				CheckDestroy:             testAccCheckContainerDestroyed(lx, name),
				Steps: []resource.TestStep{
					{
						Config:      config,
						ExpectError: regexp.MustCompile(`(?s)Cannot create container ` + regexp.QuoteMeta(name) + `.*` + regexp.QuoteMeta(tc.want)),
					},
					{
						// Nothing in state (an empty configuration plans
						// nothing) and nothing on the host.
						PreConfig: func() {
							if err := testAccCheckContainerDestroyed(lx, name)(nil); err != nil {
								t.Fatalf("after the failed create: %v", err)
							}
						},
						Config: providerConfig(),
						ConfigPlanChecks: resource.ConfigPlanChecks{
							PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
						},
					},
				},
			})
		})
	}

	t.Run("name taken", func(t *testing.T) {
		resource.ParallelTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config:      providerConfig() + fmt.Sprintf("resource \"virt_container\" \"test\" {\n  name = %q\n  lxc_template {\n    name = \"busybox\"\n  }\n}\n", taken),
				ExpectError: machineErrRE(fmt.Sprintf("A container named %q already exists", taken)),
			}},
		})
		if _, err := lx.Container(context.Background(), taken); err != nil {
			t.Fatalf("the refused create harmed the existing container: %v", err)
		}
	})
}

// Each bad input fails at validate or plan with the attribute and the
// layer's reason; nothing is made on the host.
func TestAccContainerResource_badInput(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-ct")
	config := func(body string) string {
		head := fmt.Sprintf("  name = %q\n", name)
		if strings.HasPrefix(body, "name =") {
			head = ""
		}
		return providerConfig() + fmt.Sprintf("resource \"virt_container\" \"bad\" {\n%s  %s\n}\n", head, body)
	}
	const busybox = "lxc_template {\n name = \"busybox\"\n}\n"
	// at is the configuration line Terraform quotes for the attribute the
	// error names, where the test checks that it names the right one.
	for _, tc := range []struct{ body, want, at string }{
		{`name = "-x"` + "\n" + busybox, `"-x" is not a valid container name`, ""},
		{`name = "a/b"` + "\n" + busybox, `"a/b" is not a valid container name`, ""},
		{`hostname = "no spaces"` + "\n" + busybox, `"no spaces" is not a valid hostname`, ""},
		{`memory = 1`, `a container needs exactly one source: template, archive or lxc_template (none is set)`, ""},
		{`template = "vt-base"` + "\n" + busybox, `conflicts with template: a container needs exactly one source`, ""},
		{`template = "` + name + `"`, `a container cannot be a snapshot clone of itself`, ""},
		{"lxc_template {\n args = [\"-x\"]\n}", `required: the name of an LXC template script`, ""},
		{`archive = "rootfs.tar.gz"`, `The path "rootfs.tar.gz" must be absolute`, ""},
		{busybox + `memory = 8`, `Attribute memory value must be at least 16, got: 8`, ""},
		{busybox + `swap = 64`, `a swap limit needs a memory limit: set memory too`, ""},
		{busybox + `cpu_weight = 0`, `Attribute cpu_weight value must be between 1 and 10000, got: 0`, ""},
		{busybox + `cpus = "3-1"`, `range "3-1" runs backwards`, ""},
		{busybox + `stop_timeout = -1`, `Attribute stop_timeout value must be at least 0, got: -1`, ""},
		{busybox + "network_interface {\n ipv4_address = \"10.0.3.300/24\"\n}", `"10.0.3.300/24" is not an IPv4 address in CIDR form`, `ipv4_address = "10.0.3.300/24"`},
		{busybox + "network_interface {\n ipv4_address = \"10.0.3.5\"\n}", `"10.0.3.5" is not an IPv4 address in CIDR form`, ""},
		{busybox + "network_interface {\n ipv4_address = \"10.0.3.0/24\"\n}", `10.0.3.0/24 is the network's own or broadcast address`, ""},
		{busybox + "network_interface {\n ipv4_gateway = \"10.0.3.1\"\n}", `needs ipv4_address: a gateway is only used with a static address`, ""},
		{busybox + "network_interface {\n hwaddr = \"00:16:3e:zz:00:01\"\n}", `"00:16:3e:zz:00:01" is not a MAC address`, `hwaddr = "00:16:3e:zz:00:01"`},
		{busybox + "network_interface {\n hwaddr = \"01:00:5e:00:00:01\"\n}", `01:00:5e:00:00:01 is a multicast address`, ""},
		{busybox + "network_interface {\n hwaddr = \"00:16:3E:AB:00:01\"\n}", `must be in lower case, as LXC's configuration keeps MAC addresses`, ""},
		{busybox + "network_interface {\n mtu = 10\n}", `10 is outside 68-65535`, ""},
		{busybox + "network_interface {\n name = \"eth0\"\n}\nnetwork_interface {\n name = \"eth0\"\n}", `"eth0" is already the name of interfaces[0]`, ""},
		{busybox + "mount {\n source = \"srv\"\n target = \"/srv\"\n}", `"srv" is not an absolute path on the host`, ""},
		{busybox + "mount {\n source = \"/srv\"\n target = \"srv\"\n}", `"srv" is not an absolute path in the container`, `target = "srv"`},
		// At plan, against the host.
		{busybox + "network_interface {\n bridge = \"vt-nobr0\"\n}", `there is no bridge "vt-nobr0" on this host`, `bridge = "vt-nobr0"`},
		{busybox + "mount {\n source = \"/nonexistent/vt\"\n target = \"/srv\"\n}", `cannot use "/nonexistent/vt" on this host`, `source = "/nonexistent/vt"`},
		{busybox + `cpus = "100"`, `CPU 100 is not on this host`, `cpus = "100"`},
		{`template = "vt-tf-nonexistent"`, `no container "vt-tf-nonexistent" to clone`, `template = "vt-tf-nonexistent"`},
		{`archive = "/nonexistent/rootfs.tar"`, `cannot use "/nonexistent/rootfs.tar"`, `archive = "/nonexistent/rootfs.tar"`},
		{"lxc_template {\n name = \"vt-nosuch\"\n}", `there is no LXC template script "vt-nosuch" on this host`, `name = "vt-nosuch"`},
		{busybox + `config = { "lxc.net.0.link" = "br0" }`, `lxc.net.0.link is managed by interfaces; set that instead`, `config = { "lxc.net.0.link" = "br0" }`},
		{busybox + `config = { "lxc.idmap" = "u 0 0 1" }`, `lxc.idmap is managed by unprivileged and idmap; set those instead`, ""},
		{busybox + `config = { "lxc.cgroup2.memory.max" = "1G" }`, `lxc.cgroup2.memory.max is managed by memory; set that instead`, ""},
		{busybox + `config = { "signal.halt" = "SIGUSR1" }`, `"signal.halt" is not an LXC config key`, ""},
	} {
		want := machineErrRE(tc.want)
		if tc.at != "" {
			want = regexp.MustCompile(`(?s)\d+:\s+` + regexp.QuoteMeta(tc.at) + `\s.*` + want.String())
		}
		step := resource.TestStep{Config: config(tc.body), PlanOnly: true, ExpectError: want}
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProtoV6ProviderFactories,
				Steps:                    []resource.TestStep{step},
			})
		})
	}
}

// The container examples of the documentation are applied, re-planned and
// destroyed, with the test's names, a template container and a mount source
// of its own, and a static address of the container tests' range in place
// of the example's. The data source examples read a clone and the template
// made here.
func TestAccContainerExamples(t *testing.T) {
	testAccPreCheck(t)
	lx := containerTestClient(t)
	tmpl := containerTestTemplate(t, lx, true)
	run := func(t *testing.T, config string, destroyed []string, checks ...statecheck.StateCheck) {
		resource.ParallelTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProtoV6ProviderFactories,
			CheckDestroy:             testAccCheckContainerDestroyed(lx, destroyed...),
			Steps:                    exampleSteps(config, checks...),
		})
	}
	t.Run("virt_container", func(t *testing.T) {
		name := testenv.Name(t, "tf-ctex")
		run(t, exampleConfig(t, "../examples/resources/virt_container/resource.tf",
			`name     = "web"`, `name     = "`+name+`-web"`,
			`"debian-12"`, strconv.Quote(tmpl),
			`"10.0.3.10/24"`, strconv.Quote(containerTestIPExample+"/24"),
			`"/srv/www"`, strconv.Quote(containerTestDir(t)),
			`name         = "tiny"`, `name         = "`+name+`-tiny"`,
		), []string{name + "-web", name + "-tiny"},
			statecheck.ExpectKnownOutputValue("web_addresses", knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(containerTestIPExample)})),
			statecheck.ExpectKnownValue("virt_container.tiny", tfjsonpath.New("running"), knownvalue.Bool(true)))
	})
	t.Run("data-source virt_container", func(t *testing.T) {
		name := testenv.Name(t, "tf-ctex")
		containerTestCreate(t, lx, virt.ContainerSpec{Name: name, Template: tmpl, Unprivileged: true})
		run(t, exampleConfig(t, "../examples/data-sources/virt_container/data-source.tf", `name = "proxy"`, "name = "+strconv.Quote(name)), nil,
			statecheck.ExpectKnownOutputValueAtPath("proxy", tfjsonpath.New("template"), knownvalue.StringExact(tmpl)),
			statecheck.ExpectKnownOutputValueAtPath("proxy", tfjsonpath.New("running"), knownvalue.Bool(false)))
	})
	t.Run("data-source virt_container_template", func(t *testing.T) {
		name := testenv.Name(t, "tf-ctex")
		run(t, exampleConfig(t, "../examples/data-sources/virt_container_template/data-source.tf",
			`"^debian-12-"`, strconv.Quote("^"+regexp.QuoteMeta(tmpl)+"$"),
			`name     = "web"`, `name     = "`+name+`-web"`,
		), []string{name + "-web"},
			statecheck.ExpectKnownValue("virt_container.web", tfjsonpath.New("template"), knownvalue.StringExact(tmpl)))
	})
}

// The sweeper removes containers, running or not, clones before their
// templates; it runs here on this test's own names only.
func TestAccContainerSweeper(t *testing.T) {
	testAccPreCheck(t)
	t.Parallel()
	lx := containerTestClient(t)
	ctx := context.Background()
	prefix := testenv.Name(t, "tf-ctsweep")
	tmpl, clone := prefix+"-a", prefix+"-b"
	containerTestCreate(t, lx, virt.ContainerSpec{Name: tmpl, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}, Unprivileged: true})
	containerTestQuietRCS(t, lx, tmpl)
	containerTestCreate(t, lx, virt.ContainerSpec{Name: clone, Template: tmpl, Unprivileged: true})
	if err := lx.StartContainer(ctx, clone); err != nil {
		t.Fatal(err)
	}
	if err := sweepContainersNamed(prefix); err != nil {
		t.Fatal(err)
	}
	names, err := lx.ListContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if left := slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, prefix) }); len(left) > 0 {
		t.Fatalf("left after the sweep: %s", strings.Join(left, ", "))
	}
}
