package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/cloudinit"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

func init() {
	resource.AddTestSweepers("virt_machine", &resource.Sweeper{
		Name: "virt_machine",
		F:    func(string) error { return sweepMachinesNamed(testenv.Prefix) },
	})
}

// sweepMachinesNamed destroys and undefines (with NVRAM) every machine
// whose name starts with prefix, and removes their cloud-init seeds: those
// still attached, and those a killed run left in any pool.
func sweepMachinesNamed(prefix string) error {
	ctx := context.Background()
	lv, err := libvirt.New(ctx, libvirt.Options{URI: testenv.URI()})
	if err != nil {
		return err
	}
	defer func() { _ = lv.Close() }()
	names, err := lv.ListMachines(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if err := lv.UndefineMachine(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	pools, err := lv.ListPools(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, pool := range pools {
		vols, err := lv.ListVolumes(ctx, pool)
		if err != nil {
			continue // an inactive pool lists nothing; its volumes are not in use
		}
		for _, v := range vols {
			if strings.HasPrefix(v, prefix) && strings.HasSuffix(v, seedVolumeName("")) {
				if err := deleteVolumeByName(ctx, lv, pool, v); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// machineTestEnv is what a machine test runs on: a pool of its own holding
// the test guest's disk as a template, and a directory libvirt's QEMU can
// write console logs into.
type machineTestEnv struct {
	lv       *libvirt.Client
	pool     string
	template string // volume key
	dir      string
}

const machineTestPoolRoot = "/var/lib/virt-test"

func newMachineTestEnv(t *testing.T) *machineTestEnv {
	t.Helper()
	ctx := context.Background()
	lv := testLibvirtClient(t)
	env := &machineTestEnv{lv: lv, pool: testenv.Name(t, "tf-mpool")}
	if err := os.MkdirAll(machineTestPoolRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := lv.CreatePool(ctx, virt.PoolSpec{Name: env.pool, Path: filepath.Join(machineTestPoolRoot, env.pool)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lv.DeletePool(context.Background(), env.pool); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	tmpl, err := lv.UploadVolume(ctx, virt.VolumeSpec{Pool: env.pool, Name: env.pool + "-template.qcow2"}, testenv.GuestDisk(t))
	if err != nil {
		t.Fatal(err)
	}
	env.template = tmpl.Key
	env.removeVolumeAtEnd(t, tmpl.Key)

	// t.TempDir and its parent are 0700 root: QEMU (libvirt-qemu) could
	// not open a console log there.
	env.dir = t.TempDir()
	for _, d := range []string{filepath.Dir(env.dir), env.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func (env *machineTestEnv) removeVolumeAtEnd(t *testing.T, key string) {
	t.Cleanup(func() {
		if err := env.lv.DeleteVolume(context.Background(), key); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// clone makes a copy-on-write clone of the test guest's disk; it outlives
// the machines (volumes are separate resources) and goes when the test ends.
func (env *machineTestEnv) clone(t *testing.T, name string) string {
	t.Helper()
	vol, err := env.lv.CreateVolume(context.Background(), virt.VolumeSpec{
		Pool: env.pool, Name: name + ".qcow2", BackingVolumeKey: env.template,
	})
	if err != nil {
		t.Fatal(err)
	}
	env.removeVolumeAtEnd(t, vol.Key)
	return vol.Key
}

// guest returns the test guest's configuration, named name, on a clone of
// its own.
func (env *machineTestEnv) guest(t *testing.T, name string) guest {
	return guest{
		kernel: testenv.GuestKernel(t), initrd: testenv.GuestInitrd(t),
		name: name, volume: env.clone(t, name), console: filepath.Join(env.dir, name+".log"), pool: env.pool,
	}
}

// guest is a virt_machine configuration for the test guest.
type guest struct {
	kernel, initrd              string
	name, volume, console, pool string
	// extra is HCL added to the resource body.
	extra   string
	cmdline string
	network string
}

func (g guest) resource() string {
	cmdline := g.cmdline
	if cmdline == "" {
		cmdline = "console=ttyS0"
	}
	network := g.network
	if network == "" {
		network = "default"
	}
	return fmt.Sprintf(`
resource "virt_machine" "test" {
  name = %q
  type = "qemu"

  boot {
    kernel  = %q
    initrd  = %q
    cmdline = %q
  }

  disk {
    volume_id = %q
  }

  network_interface {
    network = %q
  }

  console {
    type = "file"
    path = %q
  }

  # A test guest that does not power off on ACPI (not booted yet) is
  # destroyed after 30 s instead of half of the default 5 minutes.
  timeouts {
    delete = "1m"
  }
%s
}
`, g.name, g.kernel, g.initrd, cmdline, g.volume, network, g.console, g.extra)
}

// consoleDeadline bounds the wait for the test guest's console: a TCG
// guest is up in about 8 s, but much later when the host is busy (other
// tests and benchmarks boot guests on the same two cores).
const consoleDeadline = 3 * time.Minute

// waitConsoleCount reads the guest's serial log until it holds want at
// least n times. The log is a local file and libvirt has no event for
// console output, so it is read again every 100 ms.
func waitConsoleCount(path, want string, n int) (string, error) {
	deadline := time.Now().Add(consoleDeadline)
	for {
		b, _ := os.ReadFile(path)
		text := strings.ReplaceAll(string(b), "\r", "")
		if strings.Count(text, want) >= n {
			return text, nil
		}
		if time.Now().After(deadline) {
			return text, fmt.Errorf("%q not %d times on the console within %s; console:\n%s", want, n, consoleDeadline, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func consoleCount(path, want string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), want)
}

// machineErrRE matches words of an error message across Terraform's line
// wrapping.
func machineErrRE(words string) *regexp.Regexp {
	parts := strings.Fields(words)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, `\s+`))
}

// testAccCheckMachineDestroyed asks libvirt, not the provider, whether the
// machines and their seeds are gone.
func testAccCheckMachineDestroyed(t *testing.T, lv *libvirt.Client, pool string, names ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		for _, name := range names {
			if _, err := lv.Machine(ctx, name); err == nil {
				return fmt.Errorf("machine %s still exists", name)
			} else if !errors.Is(err, virt.ErrNotFound) {
				return fmt.Errorf("machine %s: %w", name, err)
			}
			if _, err := lv.Volume(ctx, pool, seedVolumeName(name)); err == nil {
				return fmt.Errorf("seed of machine %s still exists", name)
			} else if !errors.Is(err, virt.ErrNotFound) {
				return fmt.Errorf("seed of machine %s: %w", name, err)
			}
		}
		return nil
	}
}

// machineSpec reads the machine straight from libvirt.
func machineSpec(lv *libvirt.Client, name string) (*virt.MachineSpec, error) {
	return lv.Machine(context.Background(), name)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// The whole life of a running machine: create and boot with a cloud-init
// seed and an address, an empty re-plan, import, live and next-boot
// updates, drift (memory changed, stopped, undefined outside Terraform),
// replace, and a destroy that leaves nothing.
func TestAccMachineResource_lifecycle(t *testing.T) {
	testAccPreCheck(t)
	env := newMachineTestEnv(t)
	lv := env.lv
	name := testenv.Name(t, "tf-vm")
	userData := "#cloud-config\nhostname: " + name + "\n"
	base := env.guest(t, name)
	console := base.console
	waiter := env.guest(t, name+"-w")
	userData2 := userData + "packages: [nginx]\n"
	configWith := func(ud, extra string, mod func(*guest)) string {
		g := base
		g.extra = fmt.Sprintf(`
  cloud_init {
    user_data = %q
    pool      = %q
  }
`, ud, env.pool) + extra
		if mod != nil {
			mod(&g)
		}
		return providerConfig() + g.resource()
	}
	config := func(extra string, mod func(*guest)) string { return configWith(userData, extra, mod) }
	// From the cloud-init step on, the seed carries userData2.
	config2 := func(extra string, mod func(*guest)) string { return configWith(userData2, extra, mod) }
	step6 := func(g *guest) { g.cmdline = "console=ttyS0 vt.step=6" }
	sized := `
  memory     = 256
  max_memory = 512
  vcpu       = 1
  max_vcpu   = 2
`
	grown := `
  memory      = 384
  max_memory  = 512
  vcpu        = 2
  max_vcpu    = 2
  description = "grown live"
  autostart   = true
`
	readyCount := 0
	expectReady := func(n int) resource.TestCheckFunc {
		return func(*terraform.State) error {
			readyCount = n
			_, err := waitConsoleCount(console, testenv.Marker, n)
			return err
		}
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckMachineDestroyed(t, lv, env.pool, name, waiter.name),
		Steps: []resource.TestStep{
			{
				// Create and boot; create waits for the DHCP lease.
				Config: config(sized, nil),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("state"), knownvalue.StringExact("running")),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("running"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("id"),
						knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`))),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(0).AtMapKey("target"), knownvalue.StringExact("vda")),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(0).AtMapKey("format"), knownvalue.StringExact("qcow2")),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("max_memory"), knownvalue.Int64Exact(512)),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("network_interface").AtSliceIndex(0).AtMapKey("mac"),
						knownvalue.StringRegexp(regexp.MustCompile(`^52:54:00(:[0-9a-f]{2}){3}$`))),
				},
				Check: resource.ComposeTestCheckFunc(
					expectReady(1),
					func(s *terraform.State) error {
						attrs := s.RootModule().Resources["virt_machine.test"].Primary.Attributes
						text, _ := waitConsoleCount(console, testenv.Marker, 1)
						if want := "VIRT-TESTENV-NIC eth0 " + attrs["network_interface.0.mac"]; !strings.Contains(text, want) {
							return fmt.Errorf("console lacks %q:\n%s", want, text)
						}
						if want := "VIRT-TESTENV-CIDATA user-data " + sha256Hex(userData); !strings.Contains(text, want) {
							return fmt.Errorf("console lacks %q (the seed as the guest reads it):\n%s", want, text)
						}
						if want := "VIRT-TESTENV-MEM "; !strings.Contains(text, want) {
							return fmt.Errorf("console lacks %q:\n%s", want, text)
						}
						return nil
					},
				),
			},
			{
				// Nothing to do: what libvirt filled in maps back to the config.
				Config: config(sized, nil),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// wait_for_address: the create of a second machine waits for
				// its lease on the default network.
				Config: config(sized, nil) + waiter.resourceNamed("wait", `
  memory = 128
  network_interface {
    network          = "default"
    wait_for_address = true
  }
`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_machine.wait", tfjsonpath.New("network_interface").AtSliceIndex(0).AtMapKey("addresses").AtSliceIndex(0),
						knownvalue.StringRegexp(regexp.MustCompile(`^192\.168\.122\.\d+$`))),
				},
			},
			{
				// Import by name: everything libvirt keeps reads back the same.
				Config:            config(sized, nil),
				ResourceName:      "virt_machine.test",
				ImportState:       true,
				ImportStateId:     name,
				ImportStateVerify: true,
				// cloud-init content and timeouts are not kept by libvirt;
				// addresses come and go with leases.
				ImportStateVerifyIgnore: []string{"cloud_init", "timeouts", "network_interface.0.addresses"},
			},
			{
				// Live: memory within max_memory, vcpu within max_vcpu,
				// description, autostart. The guest keeps running.
				Config: config(grown, nil),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionUpdate)},
				},
				Check: func(*terraform.State) error {
					m, err := machineSpec(lv, name)
					if err != nil {
						return err
					}
					if m.MemoryMiB != 384 || m.VCPU != 2 || m.Description != "grown live" || !m.Autostart || m.State != virt.StateRunning {
						return fmt.Errorf("after live update: memory %d vcpu %d description %q autostart %v state %s",
							m.MemoryMiB, m.VCPU, m.Description, m.Autostart, m.State)
					}
					if n := consoleCount(console, testenv.Marker); n != readyCount {
						return fmt.Errorf("guest booted %d times, want %d: a live update must not restart it", n, readyCount)
					}
					return nil
				},
			},
			{
				// Next boot with reboot_on_update: the apply restarts the guest.
				Config: config(grown+"  reboot_on_update = true\n", func(g *guest) { g.cmdline = "console=ttyS0 vt.step=5" }),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionUpdate)},
				},
				Check: expectReady(2),
			},
			{
				// Only the seed changes, with reboot_on_update: it is
				// re-created under the running guest, which reads it after
				// the restart.
				Config: config2(grown+"  reboot_on_update = true\n", func(g *guest) { g.cmdline = "console=ttyS0 vt.step=5" }),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionUpdate)},
				},
				Check: func(s *terraform.State) error {
					if err := expectReady(readyCount + 1)(s); err != nil {
						return err
					}
					text, _ := waitConsoleCount(console, testenv.Marker, readyCount)
					boots := strings.Split(text, testenv.Marker) // boots[i] is what boot i printed
					last := boots[len(boots)-2]
					if want := "VIRT-TESTENV-CIDATA user-data " + sha256Hex(userData2); !strings.Contains(last, want) {
						return fmt.Errorf("after the restart the console lacks %q:\n%s", want, last)
					}
					return nil
				},
			},
			{
				// Next boot without it: the definition changes, the guest does not restart.
				Config: config2(grown, step6),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionUpdate)},
				},
				Check: func(*terraform.State) error {
					m, err := machineSpec(lv, name)
					if err != nil {
						return err
					}
					if m.Boot == nil || m.Boot.Cmdline != "console=ttyS0 vt.step=6" {
						return fmt.Errorf("definition's boot after the update: %+v", m.Boot)
					}
					if m.State != virt.StateRunning {
						return fmt.Errorf("state %s, want running", m.State)
					}
					if n := consoleCount(console, testenv.Marker); n != readyCount {
						return fmt.Errorf("guest booted %d times, want %d: without reboot_on_update it must not restart", n, readyCount)
					}
					return nil
				},
			},
			{
				// Memory changed outside Terraform is planned back.
				PreConfig: func() {
					commandOutput(t, "virsh", "-c", testenv.URI(), "setmem", name, "300M", "--live", "--config")
				},
				Config: config2(grown, step6),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("memory"), knownvalue.Int64Exact(384)),
					},
				},
				Check: func(*terraform.State) error {
					m, err := machineSpec(lv, name)
					if err != nil {
						return err
					}
					if m.MemoryMiB != 384 {
						return fmt.Errorf("memory %d MiB after planning it back, want 384", m.MemoryMiB)
					}
					return nil
				},
			},
			{
				// Stopped outside Terraform: planned to start, in place.
				PreConfig: func() {
					if err := lv.DestroyMachine(context.Background(), name); err != nil {
						t.Fatal(err)
					}
				},
				Config: config2(grown, step6),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("running"), knownvalue.Bool(true)),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("state"), knownvalue.StringExact("running")),
				},
				Check: func(s *terraform.State) error {
					if err := expectReady(readyCount + 1)(s); err != nil {
						return err
					}
					// It booted the definition the last update wrote.
					b, _ := os.ReadFile(console)
					if !strings.Contains(string(b), "VIRT-TESTENV-CIDATA user-data "+sha256Hex(userData2)) {
						return errors.New("the restarted guest does not see its seed")
					}
					return nil
				},
			},
			{
				// Undefined outside Terraform (the seed stays behind): re-created.
				PreConfig: func() {
					if err := lv.UndefineMachine(context.Background(), name); err != nil {
						t.Fatal(err)
					}
				},
				Config: config2(grown, step6),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("state"), knownvalue.StringExact("running")),
				},
				Check: func(s *terraform.State) error { return expectReady(readyCount + 1)(s) },
			},
			{
				// Stopped by configuration (in place), so that the replace
				// below makes a kvm machine that never starts (KVM guests
				// hang on the test hosts).
				Config: config2(grown+"  running = false\n", step6),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionUpdate)},
				},
			},
			kvmStep(t, lv, strings.Replace(config2(grown+"  running = false\n", step6), `type = "qemu"`, `type = "kvm"`, 1)),
		},
	})
}

// kvmStep changes a stopped machine's type to kvm. Where the host offers
// kvm, type cannot change in place: the plan says replace. Where it does not
// (a host without /dev/kvm), the plan refuses the type and names what the
// host offers.
func kvmStep(t *testing.T, lv *libvirt.Client, config string) resource.TestStep {
	t.Helper()
	info, err := lv.HostInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.DomainTypes, "kvm") {
		return resource.TestStep{
			Config:      config,
			ExpectError: regexp.MustCompile(`(?s)Domain type not offered by the host.*offers domain types qemu, not "kvm"`),
		}
	}
	return resource.TestStep{
		Config: config,
		ConfigPlanChecks: resource.ConfigPlanChecks{
			PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionReplace)},
		},
		ConfigStateChecks: []statecheck.StateCheck{
			statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("type"), knownvalue.StringExact("kvm")),
			statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("state"), knownvalue.StringExact("shutoff")),
		},
	}
}

// resourceNamed renders the guest as a resource of another name, with its
// own interface block in body (instead of the default one).
func (g guest) resourceNamed(label, body string) string {
	return fmt.Sprintf(`
resource "virt_machine" %q {
  name = %q
  type = "qemu"

  boot {
    kernel  = %q
    initrd  = %q
    cmdline = "console=ttyS0"
  }

  disk {
    volume_id = %q
  }

  console {
    type = "file"
    path = %q
  }
%s
}
`, label, g.name, g.kernel, g.initrd, g.volume, g.console, body)
}

// A machine that is only defined (running = false): import by UUID and by
// HOST/NAME, the data source, starting it by configuration, and a firmware
// change, which replaces it.
func TestAccMachineResource_defined(t *testing.T) {
	testAccPreCheck(t)
	env := newMachineTestEnv(t)
	g := env.guest(t, testenv.Name(t, "tf-vm"))
	provider := `provider "virt" {
  uri   = "` + testenv.URI() + `"
  hosts = { other = "` + testenv.URI() + `" }
}
`
	g.extra = `
  running = false
  memory  = 128
  disk {
    path   = "` + testenv.GuestDisk(t) + `"
    format = "qcow2"
    device = "cdrom"
  }
  network_interface {
    network = "default"
    mac     = "52:54:00:ab:cd:ef"
  }
  graphics {
    type = "vnc"
  }
`
	config := provider + g.resource()
	extra := env.clone(t, g.name+"-data")
	grown := g
	grown.volume = extra
	grown.extra = "\n  disk {\n    volume_id = \"" + g.volume + "\"\n  }\n" + g.extra + `
  network_interface {
    network = "default"
  }
`
	dataSource := `
data "virt_machine" "test" {
  name = virt_machine.test.name
}
`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckMachineDestroyed(t, env.lv, env.pool, g.name),
		Steps: []resource.TestStep{
			{
				Config: config + dataSource,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("state"), knownvalue.StringExact("shutoff")),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(1).AtMapKey("bus"), knownvalue.StringExact("sata")),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(1).AtMapKey("readonly"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(1).AtMapKey("target"), knownvalue.StringExact("sda")),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("graphics").AtMapKey("listen"), knownvalue.StringExact("127.0.0.1")),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("network_interface").AtSliceIndex(1).AtMapKey("mac"), knownvalue.StringExact("52:54:00:ab:cd:ef")),
					statecheck.CompareValuePairs("data.virt_machine.test", tfjsonpath.New("id"), "virt_machine.test", tfjsonpath.New("id"), compareSame{}),
					statecheck.ExpectKnownValue("data.virt_machine.test", tfjsonpath.New("memory"), knownvalue.Int64Exact(128)),
					statecheck.ExpectKnownValue("data.virt_machine.test", tfjsonpath.New("running"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("data.virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(0).AtMapKey("volume_id"), knownvalue.StringExact(g.volume)),
					statecheck.ExpectKnownValue("data.virt_machine.test", tfjsonpath.New("network_interface").AtSliceIndex(1).AtMapKey("mac"), knownvalue.StringExact("52:54:00:ab:cd:ef")),
				},
			},
			{
				Config: config + dataSource,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				Config:       config,
				ResourceName: "virt_machine.test",
				ImportState:  true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					return strings.ToUpper(s.RootModule().Resources["virt_machine.test"].Primary.ID), nil
				},
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts"},
			},
			{
				Config:                  config,
				ResourceName:            "virt_machine.test",
				ImportState:             true,
				ImportStateId:           "other/" + g.name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts", "host"},
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if h := states[0].Attributes["host"]; h != "other" {
						return fmt.Errorf("host %q after importing other/NAME", h)
					}
					return nil
				},
			},
			{
				// A disk put first and a second NIC: the disks that stay keep
				// their device names, the new ones get the next free name and
				// a MAC, exactly as planned (no "inconsistent result").
				Config: provider + grown.resource(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(0).AtMapKey("target"), knownvalue.StringExact("vdb")),
						plancheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(1).AtMapKey("target"), knownvalue.StringExact("vda")),
						plancheck.ExpectUnknownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(0).AtMapKey("format")),
						plancheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("network_interface").AtSliceIndex(1).AtMapKey("mac"), knownvalue.StringExact("52:54:00:ab:cd:ef")),
						plancheck.ExpectUnknownValue("virt_machine.test", tfjsonpath.New("network_interface").AtSliceIndex(2).AtMapKey("mac")),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(0).AtMapKey("volume_id"), knownvalue.StringExact(extra)),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("disk").AtSliceIndex(0).AtMapKey("format"), knownvalue.StringExact("qcow2")),
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("network_interface").AtSliceIndex(2).AtMapKey("mac"),
						knownvalue.StringRegexp(regexp.MustCompile(`^52:54:00(:[0-9a-f]{2}){3}$`))),
				},
			},
			{
				Config:        config,
				ResourceName:  "virt_machine.test",
				ImportState:   true,
				ImportStateId: g.name + "-absent",
				ExpectError:   machineErrRE(fmt.Sprintf("no machine is named %q", g.name+"-absent")),
			},
			{
				Config: provider + strings.Replace(g.resource(), `type = "qemu"`, "type = \"qemu\"\n  firmware = \"efi\"", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("virt_machine.test", plancheck.ResourceActionReplace)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_machine.test", tfjsonpath.New("firmware"), knownvalue.StringExact("efi")),
				},
			},
		},
	})
}

// compareSame checks that two values are equal.
type compareSame struct{}

func (compareSame) CompareValues(values ...any) error {
	if len(values) == 2 && values[0] == values[1] {
		return nil
	}
	return fmt.Errorf("values differ: %v", values)
}

// A create that fails when libvirt starts the machine (its network does
// not exist) removes the machine and its seed, reports libvirt's error with
// the machine's name, and leaves nothing in state; a name taken outside
// Terraform is refused with the way out.
func TestAccMachineResource_failedCreate(t *testing.T) {
	testAccPreCheck(t)
	env := newMachineTestEnv(t)
	g := env.guest(t, testenv.Name(t, "tf-vm"))
	g.network = testenv.Name(t, "tf-nonet")
	g.extra = `
  cloud_init {
    user_data = "#cloud-config\n"
    pool      = "` + env.pool + `"
  }
`
	taken := env.guest(t, testenv.Name(t, "tf-vm"))
	ctx := context.Background()
	if _, err := env.lv.DefineMachine(ctx, virt.MachineSpec{Name: taken.name, Type: virt.DomainQEMU, MemoryMiB: 64}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.lv.UndefineMachine(context.Background(), taken.name) })

	nothingLeft := func() {
		if err := testAccCheckMachineDestroyed(t, env.lv, env.pool, g.name)(nil); err != nil {
			t.Fatalf("after the failed create: %v", err)
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckMachineDestroyed(t, env.lv, env.pool, g.name),
		Steps: []resource.TestStep{
			{
				Config:      providerConfig() + g.resource(),
				ExpectError: regexp.MustCompile(`(?s)Cannot create machine ` + g.name + `.*` + regexp.QuoteMeta(g.network)),
			},
			{
				// Nothing in state (an empty configuration plans nothing)
				// and nothing on the host.
				PreConfig: nothingLeft,
				Config:    providerConfig(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				Config:      providerConfig() + taken.resource(),
				ExpectError: machineErrRE(fmt.Sprintf("A machine named %q already exists", taken.name)),
			},
		},
	})
}

// Each bad input fails at plan with the attribute and the reason; nothing
// is made on the host.
func TestAccMachineResource_badInput(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-vm")
	config := func(body string) string {
		head := fmt.Sprintf("  name = %q\n", name)
		if strings.HasPrefix(body, "name =") {
			head = ""
		}
		if !strings.HasPrefix(body, "type =") {
			head += "  type = \"qemu\"\n"
		}
		return providerConfig() + fmt.Sprintf(`
resource "virt_machine" "bad" {
%s  %s
}
`, head, body)
	}
	disk := `
  disk {
    volume_id = "/var/lib/libvirt/images/vt-none.qcow2"
  }
`
	for _, tc := range []struct{ body, want string }{
		{`name = "-x"`, `is not a valid machine name`},
		{`memory = 8`, `Attribute memory value must be at least 16, got: 8`},
		{`vcpu = 0`, `Attribute vcpu value must be at least 1, got: 0`},
		{`vcpu = 4096`, `vcpu = 4096 is more than the`},
		{`memory = 1073741824`, `memory = 1073741824 MiB is more than the`},
		{"memory = 512\n  max_memory = 256", `256 MiB is less than memory (512 MiB)`},
		{"memory = 256\n  max_memory = 512\n  balloon = false", `512 MiB above memory (256 MiB) needs balloon`},
		{"vcpu = 2\n  max_vcpu = 1", `2 is more than max_vcpu (1)`},
		{`type = "xen"`, `Attribute type value must be one of: ["kvm" "qemu"], got: "xen"`},
		{"disk {\n volume_id = \"/a\"\n path = \"/b\"\n}", `Set only one of volume_id (a volume) and path (a host file or device); both are set.`},
		{"disk {\n bus = \"virtio\"\n}", `Set one of volume_id (a volume) and path (a host file or device); neither is set.`},
		{"disk {\n path = \"/b\"\n format = \"raw\"\n bus = \"usb\"\n}", `Attribute disk[0].bus value must be one of`},
		{"disk {\n path = \"/b\"\n format = \"raw\"\n device = \"cdrom\"\n bus = \"virtio\"\n}", `a cdrom cannot be on the virtio bus`},
		{"disk {\n path = \"relative.qcow2\"\n format = \"qcow2\"\n}", `"relative.qcow2" is not an absolute path`},
		{disk + "network_interface {\n network = \"default\"\n model = \"ne2k\"\n}", `Attribute network_interface[0].model value must be one of`},
		{disk + "network_interface {\n network = \"default\"\n mac = \"52:54:00:zz:00:01\"\n}", `"52:54:00:zz:00:01" is not a MAC address`},
		{disk + "network_interface {\n network = \"default\"\n mac = \"01:00:5e:00:00:01\"\n}", `is a multicast address`},
		{disk + "network_interface {\n network = \"default\"\n mac = \"52:54:00:AB:00:01\"\n}", `must be in lower case, as libvirt reports MAC addresses`},
		{disk + "network_interface {\n network = \"default\"\n bridge = \"br0\"\n}", `Set only one of network (a libvirt network) and bridge (a host bridge); both are set.`},
		{disk + "network_interface {\n model = \"virtio\"\n}", `Invalid network interface`},
		{"boot {\n kernel = \"vmlinuz\"\n}", `"vmlinuz" is not an absolute path on the host`},
		{"console {\n type = \"file\"\n}", `a file console needs an absolute host path`},
		{"graphics {\n type = \"rdp\"\n}", `Attribute graphics.type value must be one of`},
		{"cloud_init {\n user_data = \"hello\"\n}", `cloud-init would ignore it`},
		{"cloud_init {\n meta_data = \"- a\"\n}", `must be a YAML mapping`},
	} {
		step := resource.TestStep{Config: config(tc.body), PlanOnly: true, ExpectError: machineErrRE(tc.want)}
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProtoV6ProviderFactories,
				Steps:                    []resource.TestStep{step},
			})
		})
	}
}

// The machine examples of the documentation are applied, re-planned and
// destroyed. The resource example runs with the test's names, the test
// guest's disk as the template image and its kernel and initrd, a bridge and
// a console directory of the test's own, and type "qemu" for the guest that
// does not set it: KVM guests hang on the test host. The example's web guest
// boots from its disk, which the test guest's cannot, so it also gets the
// test guest's kernel: it then asks the default network for the address
// that wait_for_address waits for. The two guests boot side by side, the
// test's only boots. The data source example reads a machine defined (not
// started) here.
func TestAccMachineExamples(t *testing.T) {
	testAccPreCheck(t)
	lv := testLibvirtClient(t)
	t.Run("virt_machine", func(t *testing.T) {
		name := testenv.Name(t, "tf-vmex")
		dir := t.TempDir()
		// QEMU (libvirt-qemu) opens the disk and writes the console log here.
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		disk := filepath.Join(dir, "tiny.qcow2")
		commandOutput(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", testenv.GuestDisk(t), disk)
		kernel, initrd := strconv.Quote(testenv.GuestKernel(t)), strconv.Quote(testenv.GuestInitrd(t))
		config := exampleConfig(t, "../examples/resources/virt_machine/resource.tf",
			`"debian-12-genericcloud-amd64.qcow2"`, strconv.Quote(name+"-debian.qcow2"),
			`"/var/lib/images/debian-12-genericcloud-amd64.qcow2"`, strconv.Quote(testenv.GuestDisk(t)),
			`"web.qcow2"`, strconv.Quote(name+"-web.qcow2"),
			`name       = "web"`, `name       = "`+name+`-web"
  type       = "qemu"
  boot {
    kernel = `+kernel+`
    initrd = `+initrd+`
  }`,
			`name    = "tiny"`, `name    = "`+name+`-tiny"`,
			`"/var/lib/images/vmlinuz"`, kernel,
			`"/var/lib/images/initrd.gz"`, initrd,
			`"/var/lib/images/tiny.qcow2"`, strconv.Quote(disk),
			`"br0"`, strconv.Quote(testAccBridge(t)),
			`"/var/log/tiny-console.log"`, strconv.Quote(filepath.Join(dir, "tiny.log")),
			`"debian-12-amd64-netinst.iso"`, strconv.Quote(name+"-netinst.iso"),
			`"/var/lib/images/debian-12-amd64-netinst.iso"`, strconv.Quote(testenv.InstallerISO(t, dir, "VTINSTALL", "virt.boot=isolinux")),
			`"installed.qcow2"`, strconv.Quote(name+"-installed.qcow2"),
			`name   = "installed"`, `name   = "`+name+`-installed"
  type   = "qemu"`,
		)
		resource.ParallelTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProtoV6ProviderFactories,
			CheckDestroy: resource.ComposeTestCheckFunc(
				testAccCheckMachineDestroyed(t, lv, virt.DefaultPool, name+"-web", name+"-tiny", name+"-installed"),
				testAccCheckStorageDestroyed(t),
			),
			Steps: exampleSteps(config,
				statecheck.ExpectKnownValue("virt_machine.web", tfjsonpath.New("state"), knownvalue.StringExact("running")),
				statecheck.ExpectKnownValue("virt_machine.tiny", tfjsonpath.New("state"), knownvalue.StringExact("running")),
				statecheck.ExpectKnownValue("virt_machine.installed", tfjsonpath.New("state"), knownvalue.StringExact("running")),
				statecheck.ExpectKnownOutputValue("web_address", knownvalue.StringRegexp(regexp.MustCompile(`^192\.168\.122\.`))),
			),
		})
	})
	t.Run("data-source virt_machine", func(t *testing.T) {
		name := testenv.Name(t, "tf-vmex")
		if _, err := lv.DefineMachine(context.Background(), virt.MachineSpec{
			Name: name, Type: virt.DomainQEMU, MemoryMiB: 64,
			Disks:      []virt.DiskSpec{{Path: testenv.GuestDisk(t), Format: virt.FormatQCOW2, ReadOnly: true}},
			Interfaces: []virt.InterfaceSpec{{Network: "default"}},
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lv.UndefineMachine(context.Background(), name) })
		resource.ParallelTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProtoV6ProviderFactories,
			Steps: exampleSteps(exampleConfig(t, "../examples/data-sources/virt_machine/data-source.tf", `name = "db"`, "name = "+strconv.Quote(name)),
				statecheck.ExpectKnownValue("data.virt_machine.db", tfjsonpath.New("disk").AtSliceIndex(0).AtMapKey("path"), knownvalue.StringExact(testenv.GuestDisk(t))),
				statecheck.ExpectKnownValue("data.virt_machine.db", tfjsonpath.New("state"), knownvalue.StringExact("shutoff")),
			),
		})
	})
}

func cloudinitConfigForTest() cloudinit.Config {
	return cloudinit.Config{UserData: "#cloud-config\n"}
}

// The sweeper removes machines (running or not) and their seeds; it runs
// here on this test's own names only.
func TestAccMachineSweeper(t *testing.T) {
	testAccPreCheck(t)
	t.Parallel()
	ctx := context.Background()
	env := newMachineTestEnv(t)
	prefix := testenv.Name(t, "tf-vmsweep")
	name := prefix + "-a"
	seed, err := env.lv.CreateSeedVolume(ctx, env.pool, seedVolumeName(name), cloudinitConfigForTest())
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := env.lv.CreateSeedVolume(ctx, env.pool, seedVolumeName(prefix+"-b"), cloudinitConfigForTest())
	if err != nil {
		t.Fatal(err)
	}
	spec := virt.MachineSpec{
		Name: name, Type: virt.DomainQEMU, MemoryMiB: 64, Firmware: virt.FirmwareEFI,
		Disks: []virt.DiskSpec{{VolumeKey: seed.Key, Device: virt.DeviceCDROM, Bus: virt.BusSCSI}},
	}
	if _, err := env.lv.DefineMachine(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.lv.UndefineMachine(context.Background(), name) })
	if err := sweepMachinesNamed(prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := env.lv.Machine(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("machine after the sweep: %v, want not found", err)
	}
	for _, key := range []string{seed.Key, orphan.Key} {
		if _, err := env.lv.VolumeByKey(ctx, key); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("seed %s after the sweep: %v, want not found", key, err)
		}
	}
}
