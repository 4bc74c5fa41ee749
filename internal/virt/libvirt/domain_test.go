package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/go-hclog"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// PoweroffMarker is what the test guest prints when the ACPI power button
// reaches it (scripts/guest-init).
const poweroffMarker = "VIRT-TESTENV-GUEST-POWEROFF"

// testBridge is the host bridge scripts/testenv makes (for LXC).
const testBridge = "lxcbr0"

// consoleDeadline bounds the wait for the test guest's console output; a TCG
// guest reaches its init in about 8 s, more when tests run side by side.
const consoleDeadline = 60 * time.Second

// qemuWorkDir makes a directory that libvirt's QEMU (user libvirt-qemu) can
// traverse and write its console log into: t.TempDir and its parent are
// 0700 and owned by root, which QEMU cannot enter.
func qemuWorkDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// overlayOf makes a qcow2 overlay of base in dir, so that guests never
// write to the shared test disk.
func overlayOf(t testing.TB, base, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", p).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img create overlay: %v: %s", err, out)
	}
	return p
}

// testGuestSpec is the tiny test guest under TCG: direct kernel boot, a
// virtio disk (an overlay of the test disk), a user-mode virtio NIC and the
// serial console logged to dir/console.log.
func testGuestSpec(t testing.TB, name, dir string) virt.MachineSpec {
	t.Helper()
	return virt.MachineSpec{
		Name:      name,
		Type:      virt.DomainQEMU, // KVM guests hang on the test hosts (nested virtualization)
		MemoryMiB: 256,
		Boot: &virt.DirectBoot{
			Kernel: testenv.GuestKernel(t),
			Initrd: testenv.GuestInitrd(t),
			// no_timer_check: under TCG on a loaded host the kernel's
			// IO-APIC timer check can fail and panic the guest early in
			// its boot ("IO-APIC + timer doesn't work!", seen in CI);
			// cloud images pass the same option.
			Cmdline: "console=ttyS0 no_timer_check",
		},
		Disks:      []virt.DiskSpec{{Path: overlayOf(t, testenv.GuestDisk(t), dir, "disk.qcow2"), Format: virt.FormatQCOW2}},
		Interfaces: []virt.InterfaceSpec{{Type: virt.InterfaceUser}},
		Console:    virt.ConsoleSpec{Type: virt.ConsoleFile, Path: filepath.Join(dir, "console.log")},
	}
}

// removeMachineAtEnd destroys and undefines name when the test ends, pass
// or fail; a machine the test already removed is fine.
func removeMachineAtEnd(t testing.TB, c *Client, name string) {
	t.Helper()
	t.Cleanup(func() {
		// t.Context is over by now; the cleanup still has to reach libvirt.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), cleanupTimeout)
		defer cancel()
		if err := c.UndefineMachine(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// waitConsole polls the console log until it contains want. libvirt has no
// event for console output, and the file is local, so reading it every
// 100 ms is the cheapest honest wait.
func waitConsole(t testing.TB, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(consoleDeadline)
	for {
		b, _ := os.ReadFile(path)
		text := strings.ReplaceAll(string(b), "\r", "")
		if strings.Contains(text, want) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not on the console within %s; console so far:\n%s", want, consoleDeadline, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// withReadBack returns want with what the host fills in copied from got:
// the UUID, generated MACs and tap names, and the state.
func withReadBack(want virt.MachineSpec, got *virt.MachineSpec) virt.MachineSpec {
	want.UUID = got.UUID
	want.State = got.State
	want.Interfaces = slices.Clone(want.Interfaces)
	for i := range want.Interfaces {
		if i < len(got.Interfaces) {
			if want.Interfaces[i].MAC == "" {
				want.Interfaces[i].MAC = got.Interfaces[i].MAC
			}
			want.Interfaces[i].Device = got.Interfaces[i].Device
		}
	}
	return want
}

func requireSpec(t testing.TB, what string, got *virt.MachineSpec, want virt.MachineSpec) {
	t.Helper()
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("%s drifted:\n got %+v\nwant %+v", what, *got, want)
	}
}

// The whole life of a machine: define, read back without drift, start, see
// the guest come up with its virtio disk and NIC, read back while running,
// shut down through ACPI, undefine.
func TestMachineLifecycle(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	dir := qemuWorkDir(t)
	spec := testGuestSpec(t, name, dir)
	spec.QemuAgent, spec.RNG, spec.Balloon = true, true, true
	// A tap NIC as well, for the tap name that only a running machine has.
	// scripts/testenv sets lxcbr0 up for the containers.
	spec.Interfaces = append(spec.Interfaces, virt.InterfaceSpec{Bridge: testBridge})
	removeMachineAtEnd(t, c, name)

	got, err := c.DefineMachine(ctx, spec)
	if err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	if got.UUID == "" || got.Interfaces[0].MAC == "" {
		t.Fatalf("read back lacks UUID or MAC: %+v", got)
	}
	want := withReadBack(spec.WithDefaults(), got)
	want.State = virt.StateShutoff
	requireSpec(t, "defined machine", got, want)
	for _, uuid := range []string{got.UUID, strings.ToUpper(strings.ReplaceAll(got.UUID, "-", ""))} {
		byUUID, err := c.MachineByUUID(ctx, uuid)
		if err != nil {
			t.Fatalf("MachineByUUID(%s): %v", uuid, err)
		}
		requireSpec(t, "machine by UUID "+uuid, byUUID, want)
	}

	start := time.Now()
	if err := c.StartMachine(ctx, name); err != nil {
		t.Fatalf("StartMachine: %v", err)
	}
	t.Logf("StartMachine returned after %s", time.Since(start))
	running, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatalf("Machine: %v", err)
	}
	want.State = virt.StateRunning
	requireSpec(t, "running machine", running, withReadBack(want, running))
	if dev := running.Interfaces[1].Device; !regexp.MustCompile(`^vnet[0-9]+$`).MatchString(dev) {
		t.Errorf("running bridge NIC has tap name %q, want vnetN", dev)
	}
	if dev := running.Interfaces[0].Device; dev != "" {
		t.Errorf("user-mode NIC has tap name %q; it has no tap", dev)
	}

	console := waitConsole(t, spec.Console.Path, testenv.Marker)
	t.Logf("guest ready %s after start", time.Since(start))
	if !regexp.MustCompile(`(?m)^VIRT-TESTENV-DISK vda [0-9]+$`).MatchString(console) {
		t.Errorf("guest does not report its virtio disk vda:\n%s", console)
	}
	for i, n := range got.Interfaces {
		if nic := fmt.Sprintf("VIRT-TESTENV-NIC eth%d %s", i, n.MAC); !strings.Contains(console, nic) {
			t.Errorf("guest does not report its NIC %d (%q):\n%s", i, nic, console)
		}
	}

	names, err := c.ListMachines(ctx)
	if err != nil {
		t.Fatalf("ListMachines: %v", err)
	}
	if !slices.Contains(names, name) {
		t.Errorf("ListMachines = %v, lacks %s", names, name)
	}

	// The guest's acpid is armed once it printed the marker: this is the
	// graceful path.
	start = time.Now()
	if err := c.ShutdownMachine(ctx, name, consoleDeadline); err != nil {
		t.Fatalf("ShutdownMachine: %v", err)
	}
	t.Logf("graceful shutdown took %s", time.Since(start))
	if b, _ := os.ReadFile(spec.Console.Path); !strings.Contains(string(b), poweroffMarker) {
		t.Errorf("guest never saw the power button (no %s): it was destroyed, not shut down", poweroffMarker)
	}
	stopped, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatalf("Machine: %v", err)
	}
	want.State = virt.StateShutoff
	requireSpec(t, "stopped machine", stopped, withReadBack(want, stopped))
	if dev := stopped.Interfaces[1].Device; dev != "" {
		t.Errorf("stopped machine still reports tap %q", dev)
	}

	// Shutting down a stopped machine leaves it be.
	if err := c.ShutdownMachine(ctx, name, time.Second); err != nil {
		t.Errorf("ShutdownMachine of a stopped machine: %v", err)
	}

	if err := c.UndefineMachine(ctx, name); err != nil {
		t.Fatalf("UndefineMachine: %v", err)
	}
	if _, err := c.Machine(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("Machine after undefine = %v, want ErrNotFound", err)
	}
}

// A guest that does not react to the power button (here: still booting, its
// acpid not yet running) is pulled off once grace has passed, promptly.
func TestShutdownMachineForcedAfterGrace(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	removeMachineAtEnd(t, c, name)

	if _, err := c.DefineMachine(ctx, spec); err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	if err := c.StartMachine(ctx, name); err != nil {
		t.Fatalf("StartMachine: %v", err)
	}
	const grace = 200 * time.Millisecond
	start := time.Now()
	if err := c.ShutdownMachine(ctx, name, grace); err != nil {
		t.Fatalf("ShutdownMachine: %v", err)
	}
	took := time.Since(start)
	t.Logf("forced shutdown took %s (grace %s)", took, grace)
	if took < grace {
		t.Errorf("ShutdownMachine returned after %s, before its grace of %s: the guest cannot have stopped by itself", took, grace)
	}
	if took > grace+15*time.Second {
		t.Errorf("ShutdownMachine took %s, far beyond its grace of %s", took, grace)
	}
	got, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatalf("Machine: %v", err)
	}
	if got.State != virt.StateShutoff {
		t.Fatalf("state after forced shutdown = %s, want shutoff", got.State)
	}
	if b, _ := os.ReadFile(spec.Console.Path); strings.Contains(string(b), poweroffMarker) {
		t.Errorf("guest saw the power button; this test meant to cover the forced path")
	}
}

// A guest asked to shut down while it still boots misses the first press of
// the power button (its acpid is not running yet); the repeated presses
// reach it once acpid is up, so it powers off by itself long before the
// grace is over instead of being destroyed when it ends.
func TestShutdownMachineWhileBooting(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	removeMachineAtEnd(t, c, name)

	if _, err := c.DefineMachine(ctx, spec); err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	if err := c.StartMachine(ctx, name); err != nil {
		t.Fatalf("StartMachine: %v", err)
	}
	if b, _ := os.ReadFile(spec.Console.Path); strings.Contains(string(b), testenv.Marker) {
		t.Fatalf("guest was up before the shutdown request; this test means to press the button during boot")
	}
	const grace = 30 * time.Second
	start := time.Now()
	if err := c.ShutdownMachine(ctx, name, grace); err != nil {
		t.Fatalf("ShutdownMachine: %v", err)
	}
	took := time.Since(start)
	t.Logf("shutdown of a booting guest took %s (grace %s)", took, grace)
	console, _ := os.ReadFile(spec.Console.Path)
	if !strings.Contains(string(console), poweroffMarker) {
		t.Fatalf("guest never saw the power button (no %s): it was destroyed after %s, not shut down; console:\n%s",
			poweroffMarker, took, console)
	}
	// The guest is up in about 8 s (more beside other tests), and the
	// button is pressed again every shutdownRepeat.
	if took > grace-5*time.Second {
		t.Errorf("ShutdownMachine took %s, close to its grace of %s", took, grace)
	}
	got, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatalf("Machine: %v", err)
	}
	if got.State != virt.StateShutoff {
		t.Fatalf("state after shutdown = %s, want shutoff", got.State)
	}
}

// Every model of virt.InterfaceModels is one that libvirt takes and this
// host's QEMU starts a machine with (QEMU rejects an unknown NIC model only
// at start), and reads back as given.
func TestInterfaceModels(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	spec.Interfaces = nil
	for _, m := range virt.InterfaceModels {
		spec.Interfaces = append(spec.Interfaces, virt.InterfaceSpec{Type: virt.InterfaceUser, Model: m})
	}
	removeMachineAtEnd(t, c, name)

	got, err := c.DefineMachine(ctx, spec)
	if err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	if err := c.StartMachine(ctx, name); err != nil {
		t.Fatalf("StartMachine with NIC models %v: %v", virt.InterfaceModels, err)
	}
	running, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatalf("Machine: %v", err)
	}
	for i, m := range virt.InterfaceModels {
		if got.Interfaces[i].Model != m || running.Interfaces[i].Model != m {
			t.Errorf("NIC %d: model read back as %q (defined) and %q (running), want %q",
				i, got.Interfaces[i].Model, running.Interfaces[i].Model, m)
		}
	}
	if err := c.DestroyMachine(ctx, name); err != nil {
		t.Fatalf("DestroyMachine: %v", err)
	}
}

// DestroyMachine stops at once and is a no-op on a stopped machine;
// UndefineMachine of a running machine destroys it first.
func TestDestroyAndUndefineRunningMachine(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	removeMachineAtEnd(t, c, name)

	if _, err := c.DefineMachine(ctx, spec); err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := c.StartMachine(ctx, name); err != nil {
			t.Fatalf("StartMachine: %v", err)
		}
		// Starting a running machine is a no-op.
		if err := c.StartMachine(ctx, name); err != nil {
			t.Fatalf("StartMachine again: %v", err)
		}
		if i == 1 {
			break
		}
		start := time.Now()
		if err := c.DestroyMachine(ctx, name); err != nil {
			t.Fatalf("DestroyMachine: %v", err)
		}
		t.Logf("DestroyMachine took %s", time.Since(start))
		if got, err := c.Machine(ctx, name); err != nil || got.State != virt.StateShutoff {
			t.Fatalf("after destroy: %+v, %v; want shutoff", got, err)
		}
		if err := c.DestroyMachine(ctx, name); err != nil {
			t.Fatalf("DestroyMachine of a stopped machine: %v", err)
		}
	}
	if err := c.UndefineMachine(ctx, name); err != nil {
		t.Fatalf("UndefineMachine of a running machine: %v", err)
	}
	if _, err := c.Machine(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("Machine after undefine = %v, want ErrNotFound", err)
	}
}

func TestDefineMachineTwice(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := virt.MachineSpec{Name: name, Type: virt.DomainQEMU, Disks: []virt.DiskSpec{{Path: "/nonexistent/a.qcow2", Format: virt.FormatQCOW2}}}
	removeMachineAtEnd(t, c, name)

	first, err := c.DefineMachine(ctx, spec)
	if err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	spec.Description = "second"
	if _, err := c.DefineMachine(ctx, spec); !errors.Is(err, virt.ErrExists) {
		t.Fatalf("second DefineMachine = %v, want ErrExists", err)
	}
	// The first definition is untouched.
	got, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	requireSpec(t, "first machine", got, *first)

	// Another name with the first one's UUID collides too.
	other := testenv.Name(t, "lv-dom")
	removeMachineAtEnd(t, c, other)
	spec.Name, spec.UUID = other, first.UUID
	if _, err := c.DefineMachine(ctx, spec); !errors.Is(err, virt.ErrExists) {
		t.Fatalf("DefineMachine with a taken UUID = %v, want ErrExists", err)
	}
	if _, err := c.Machine(ctx, other); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("Machine(%s) = %v, want ErrNotFound", other, err)
	}
}

// Bad input is reported per field before libvirt sees anything; what only
// libvirt can judge fails the define and leaves no domain.
func TestDefineMachineRejected(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	pool := newDomainTestPool(t, c)
	raw := pool.volume(t, "raw.img", "raw")

	for _, tc := range []struct {
		name   string
		modify func(*virt.MachineSpec)
		fields []string // SpecErrors expected; none: libvirt's own refusal
		is     error
	}{
		{"bad spec", func(s *virt.MachineSpec) {
			s.Disks[0].Bus = "usb"
			s.Interfaces = []virt.InterfaceSpec{{Type: virt.InterfaceUser, MAC: "01:00:5e:00:00:01"}}
		}, []string{"disks[0].bus", "interfaces[0].mac"}, nil},
		{"path without format outside pools", func(s *virt.MachineSpec) {
			s.Disks[0] = virt.DiskSpec{Path: "/nonexistent/disk.img"}
		}, []string{"disks[0].format"}, nil},
		{"format that is not the volume's", func(s *virt.MachineSpec) {
			s.Disks[0] = virt.DiskSpec{VolumeKey: raw, Format: virt.FormatQCOW2}
		}, []string{"disks[0].format"}, nil},
		{"missing volume key", func(s *virt.MachineSpec) {
			s.Disks[0] = virt.DiskSpec{VolumeKey: "/nonexistent/volume.qcow2"}
		}, nil, virt.ErrNotFound},
		{"missing pool", func(s *virt.MachineSpec) {
			s.Disks[0] = virt.DiskSpec{Pool: "vt-no-such-pool", Volume: "x"}
		}, nil, virt.ErrNotFound},
		{"NIC model outside virt.InterfaceModels", func(s *virt.MachineSpec) {
			// libvirt would define it; QEMU would refuse it only at start.
			s.Interfaces = []virt.InterfaceSpec{{Type: virt.InterfaceUser, Model: "ne2k_isa"}}
		}, []string{"interfaces[0].model"}, nil},
		{"more IDE disks than QEMU has", func(s *virt.MachineSpec) {
			s.Disks[0] = virt.DiskSpec{Path: "/nonexistent/a.img", Format: virt.FormatRaw, Bus: virt.BusIDE, Target: "hdz"}
		}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			name := testenv.Name(t, "lv-dom")
			removeMachineAtEnd(t, c, name)
			spec := virt.MachineSpec{
				Name:  name,
				Type:  virt.DomainQEMU,
				Disks: []virt.DiskSpec{{Path: "/nonexistent/a.qcow2", Format: virt.FormatQCOW2}},
			}
			tc.modify(&spec)
			_, err := c.DefineMachine(ctx, spec)
			if err == nil {
				t.Fatal("DefineMachine succeeded")
			}
			t.Logf("error: %v", err)
			var errs virt.SpecErrors
			switch {
			case tc.fields != nil:
				if !errors.As(err, &errs) {
					t.Fatalf("error is not SpecErrors: %v", err)
				}
				var fields []string
				for _, e := range errs {
					fields = append(fields, e.Field)
				}
				if !slices.Equal(fields, tc.fields) {
					t.Fatalf("fields = %v, want %v", fields, tc.fields)
				}
			case tc.is != nil:
				if !errors.Is(err, tc.is) {
					t.Fatalf("error is not %v: %v", tc.is, err)
				}
			default:
				if errors.As(err, &errs) || errors.Is(err, virt.ErrNotFound) || errors.Is(err, virt.ErrExists) {
					t.Fatalf("want libvirt's own refusal, got %v", err)
				}
			}
			if _, err := c.Machine(ctx, name); !errors.Is(err, virt.ErrNotFound) {
				t.Fatalf("a failed define left a domain behind: Machine = %v", err)
			}
		})
	}
}

// A network that does not exist is only noticed on start: the start fails,
// says why, and the machine stays defined and shut off for the caller to
// decide about.
func TestStartMachineMissingNetwork(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	spec.Interfaces = []virt.InterfaceSpec{{Network: "vt-no-such-network"}}
	removeMachineAtEnd(t, c, name)

	if _, err := c.DefineMachine(ctx, spec); err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	err := c.StartMachine(ctx, name)
	if err == nil {
		t.Fatal("StartMachine with a missing network succeeded")
	}
	if !strings.Contains(err.Error(), "vt-no-such-network") || !strings.Contains(err.Error(), name) {
		t.Errorf("error does not name the machine and the network: %v", err)
	}
	// ErrNotFound would tell a caller that the machine itself is gone.
	if errors.Is(err, virt.ErrNotFound) {
		t.Errorf("a missing network is reported as ErrNotFound: %v", err)
	}
	got, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != virt.StateShutoff {
		t.Fatalf("state = %s, want shutoff", got.State)
	}
}

// EFI is only asked for; libvirt picks the firmware files and keeps NVRAM,
// which undefine removes.
func TestDefineMachineEFI(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := virt.MachineSpec{
		Name: name, Type: virt.DomainQEMU, Firmware: virt.FirmwareEFI, Autostart: true,
		Disks:    []virt.DiskSpec{{Path: "/nonexistent/efi.qcow2", Format: virt.FormatQCOW2}},
		Graphics: virt.GraphicsSpec{Type: virt.GraphicsVNC},
	}
	removeMachineAtEnd(t, c, name)
	got, err := c.DefineMachine(ctx, spec)
	if err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	want := withReadBack(spec.WithDefaults(), got)
	want.State = virt.StateShutoff
	requireSpec(t, "EFI machine", got, want)
	if err := c.UndefineMachine(ctx, name); err != nil {
		t.Fatalf("UndefineMachine: %v", err)
	}
}

// An EFI machine boots (OVMF, the test guest's kernel through its EFI
// stub), and its delete removes the NVRAM file libvirt made for it at the
// first start: nothing is left for a machine of the same name to inherit.
func TestEFIMachineBootsAndDeleteRemovesNVRAM(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	dir := qemuWorkDir(t)
	spec := testGuestSpec(t, name, dir)
	spec.Firmware = virt.FirmwareEFI
	removeMachineAtEnd(t, c, name)

	if _, err := c.CreateMachine(ctx, spec, true); err != nil {
		t.Fatalf("CreateMachine: %v", err)
	}
	// libvirt picks the firmware at the start: the live definition names
	// the NVRAM file, the persistent one only asks for EFI.
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		doc, err = lv.DomainGetXMLDesc(dom, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<nvram[^>]*>([^<]+)</nvram>`).FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("no NVRAM in the definition of a started EFI machine:\n%s", doc)
	}
	nvram := m[1]
	if _, err := os.Stat(nvram); err != nil {
		t.Fatalf("NVRAM of the started machine: %v", err)
	}
	waitConsole(t, filepath.Join(dir, "console.log"), testenv.Marker)
	deleteMachineWithFiles(t, c, name, nvram)
}

// deleteMachineWithFiles deletes the machine and fails unless it and the
// host files that were its own (NVRAM, a managed save image) are gone.
func deleteMachineWithFiles(t *testing.T, c *Client, name string, files ...string) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.DeleteMachine(ctx, name, time.Minute); err != nil {
		t.Fatalf("DeleteMachine: %v", err)
	}
	if _, err := c.Machine(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("machine after delete: %v", err)
	}
	for _, f := range files {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after delete: %v", f, err)
		}
	}
}

// A machine put to sleep with a managed save (virsh managedsave: stopped,
// its memory in a file libvirt resumes from at the next start) is deleted
// with that file: a new machine of the same name must not wake up in the
// old one's memory.
func TestDeleteMachineRemovesManagedSave(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	dir := qemuWorkDir(t)
	spec := testGuestSpec(t, name, dir)
	removeMachineAtEnd(t, c, name)

	if _, err := c.CreateMachine(ctx, spec, true); err != nil {
		t.Fatalf("CreateMachine: %v", err)
	}
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var saved int32
	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		if err := lv.DomainManagedSave(dom, 0); err != nil {
			return err
		}
		saved, err = lv.DomainHasManagedSaveImage(dom, 0)
		return err
	}); err != nil {
		t.Fatalf("managed save: %v", err)
	}
	if saved != 1 {
		t.Fatal("no managed save image after the managed save")
	}
	got, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != virt.StateShutoff {
		t.Fatalf("state after a managed save = %s, want shutoff", got.State)
	}

	// libvirt keeps the image as NAME.save in its save directory.
	image := filepath.Join("/var/lib/libvirt/qemu/save", name+".save")
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("managed save image: %v", err)
	}
	deleteMachineWithFiles(t, c, name, image)
}

func TestMachineNotFound(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	for op, call := range map[string]func() error{
		"Machine":         func() error { _, err := c.Machine(ctx, name); return err },
		"StartMachine":    func() error { return c.StartMachine(ctx, name) },
		"ShutdownMachine": func() error { return c.ShutdownMachine(ctx, name, time.Second) },
		"DestroyMachine":  func() error { return c.DestroyMachine(ctx, name) },
		"UndefineMachine": func() error { return c.UndefineMachine(ctx, name) },
	} {
		err := call()
		if !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("%s of a missing machine = %v, want ErrNotFound", op, err)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error does not name the machine: %v", op, err)
		}
	}

	// A random UUID no machine of this host has.
	const uuid = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	if _, err := c.MachineByUUID(ctx, uuid); !errors.Is(err, virt.ErrNotFound) || !strings.Contains(err.Error(), uuid) {
		t.Errorf("MachineByUUID of a missing machine = %v, want ErrNotFound naming the UUID", err)
	}
	// Not a UUID at all is a mistake of the caller, not a missing machine.
	if _, err := c.MachineByUUID(ctx, name); err == nil || errors.Is(err, virt.ErrNotFound) {
		t.Errorf("MachineByUUID(%q) = %v, want an error other than ErrNotFound", name, err)
	}
}

func TestParseMachineUUID(t *testing.T) {
	want := golibvirt.UUID{0x0b, 0x3e, 0x1c, 0x1e, 0x4b, 0x5a, 0x4c, 0x7e, 0x9d, 0x33, 0x0a, 0x8f, 0x2f, 0x3e, 0x6c, 0x11}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c11", true},
		{"0B3E1C1E-4B5A-4C7E-9D33-0A8F2F3E6C11", true},
		{"0b3e1c1e4b5a4c7e9d330a8f2f3e6c11", true},
		{"", false},
		{"vm-1", false},
		{"0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c1", false},    // a digit short
		{"0b3e1c1e4-b5a-4c7e-9d33-0a8f2f3e6c11", false},   // dash misplaced
		{"0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c1g", false},   // not hex
		{"0b3e1c1e-4b5a-4c7e9d33-0a8f2f3e6c11-", false},   // dashes elsewhere
		{"{0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c11}", false}, // braces
	} {
		got, err := parseUUID(tc.in)
		if tc.ok && (err != nil || got != want) {
			t.Errorf("parseUUID(%q) = %x, %v; want %x", tc.in, got, err, want)
		}
		if !tc.ok && err == nil {
			t.Errorf("parseUUID(%q) = %x, want an error", tc.in, got)
		}
	}
}

// Volumes named by key and by pool and name are resolved to files, and read
// back as they were named. The definition libvirt stores is what
// testdata/libvirt-defined-full.xml holds (rewritten under -update).
func TestCaptureLibvirtDomainXML(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	pool := newDomainTestPool(t, c)
	pool.volume(t, goldenVolKey, "qcow2")
	pool.volume(t, goldenVolName, "raw")
	work := qemuWorkDir(t)
	name := testenv.Name(t, "lv-dom")
	uuid := "5e1f0c2a-7d44-4b8e-a1c3-" + strings.TrimPrefix(name, testenv.Prefix+"lv-dom-") + "0000"
	spec := goldenMachineSpec(name, uuid, pool.name, pool.dir, work)
	removeMachineAtEnd(t, c, name)

	got, err := c.DefineMachine(ctx, spec)
	if err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	want := spec.WithDefaults()
	want.State = virt.StateShutoff
	requireSpec(t, "machine on volumes", got, want)

	// A format left out is read from the volume, whichever way it is named.
	spec2 := spec
	spec2.Name, spec2.UUID = testenv.Name(t, "lv-dom"), ""
	spec2.Disks = slices.Clone(spec.Disks)
	spec2.Disks[0] = virt.DiskSpec{Path: filepath.Join(pool.dir, goldenVolKey)}
	spec2.Disks[1].Format, spec2.Disks[2].Format = "", ""
	removeMachineAtEnd(t, c, spec2.Name)
	got2, err := c.DefineMachine(ctx, spec2)
	if err != nil {
		t.Fatalf("DefineMachine without formats: %v", err)
	}
	for i, want := range []string{"qcow2", "qcow2", "raw"} {
		if got2.Disks[i].Format != want {
			t.Errorf("disks[%d].format read back %q, want %q", i, got2.Disks[i].Format, want)
		}
	}

	var doc string
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		dom, err := lv.DomainLookupByName(name)
		if err != nil {
			return err
		}
		doc, err = lv.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	normalized := strings.NewReplacer(
		pool.dir, goldenPoolDir,
		work, goldenWorkDir,
		pool.name, goldenPool,
		name, goldenName,
		uuid, goldenUUID,
	).Replace(doc)
	if updateGolden() {
		checkGolden(t, "libvirt-defined-full.xml", []byte(normalized))
	}
}

// domainTestPool is a transient directory pool for one test. Storage has its own
// backend; these tests only need volumes to exist, so they make them with
// plain RPCs.
type domainTestPool struct {
	c    *Client
	name string
	dir  string
	pool golibvirt.StoragePool
}

func newDomainTestPool(t testing.TB, c *Client) *domainTestPool {
	t.Helper()
	p := &domainTestPool{c: c, name: testenv.Name(t, "lv-pool"), dir: qemuWorkDir(t)}
	doc := fmt.Sprintf("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>", p.name, p.dir)
	err := c.call(t.Context(), func(lv *golibvirt.Libvirt) error {
		var err error
		p.pool, err = lv.StoragePoolCreateXML(doc, 0)
		return err
	})
	if err != nil {
		t.Fatalf("create pool: %v", err)
	}
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		_ = c.call(ctx, func(lv *golibvirt.Libvirt) error { return lv.StoragePoolDestroy(p.pool) })
	})
	return p
}

// volume makes a 16 MiB volume and returns its key.
func (p *domainTestPool) volume(t testing.TB, name, format string) string {
	t.Helper()
	doc := fmt.Sprintf("<volume><name>%s</name><capacity unit='MiB'>16</capacity><target><format type='%s'/></target></volume>", name, format)
	var key string
	err := p.c.call(t.Context(), func(lv *golibvirt.Libvirt) error {
		vol, err := lv.StorageVolCreateXML(p.pool, doc, 0)
		key = vol.Key
		return err
	})
	if err != nil {
		t.Fatalf("create volume %s: %v", name, err)
	}
	return key
}

// The hub hands each watch only its own domain's events of the kinds it
// watches, never blocks on a watch that does not read, and tells the
// watches of a kind when its stream ends.
func TestEventHubDelivery(t *testing.T) {
	h := &eventHub{subscribed: map[golibvirt.DomainEventID]bool{}, watches: map[*domainWatch]struct{}{}}
	mine, other := golibvirt.UUID{1}, golibvirt.UUID{2}
	newWatch := func(uuid golibvirt.UUID, ids ...golibvirt.DomainEventID) *domainWatch {
		w := &domainWatch{hub: h, uuid: uuid, ids: ids, events: make(chan any, watchBuffer), ended: make(chan struct{})}
		h.watches[w] = struct{}{}
		return w
	}
	lifecycle := func(uuid golibvirt.UUID) any {
		return &golibvirt.DomainEventCallbackLifecycleMsg{Msg: golibvirt.DomainEventLifecycleMsg{Dom: golibvirt.Domain{UUID: uuid}}}
	}
	removed := func(uuid golibvirt.UUID, alias string) any {
		return &golibvirt.DomainEventCallbackDeviceRemovedMsg{Msg: golibvirt.DomainEventDeviceRemovedMsg{Dom: golibvirt.Domain{UUID: uuid}, DevAlias: alias}}
	}
	w := newWatch(mine, golibvirt.DomainEventIDLifecycle)
	devices := newWatch(mine, golibvirt.DomainEventIDDeviceRemoved)
	otherWatch := newWatch(other, golibvirt.DomainEventIDLifecycle)

	h.deliver(golibvirt.DomainEventIDLifecycle, lifecycle(other))
	h.deliver(golibvirt.DomainEventIDLifecycle, lifecycle(mine))
	h.deliver(golibvirt.DomainEventIDDeviceRemoved, removed(mine, "net1"))
	h.deliver(golibvirt.DomainEventIDLifecycle, "not an event")

	ev, ok, err := w.next(t.Context())
	if err != nil || !ok || ev.(*golibvirt.DomainEventCallbackLifecycleMsg).Msg.Dom.UUID != mine {
		t.Fatalf("next = %+v, %v, %v; want the watched domain's lifecycle event", ev, ok, err)
	}
	if ev, _, _ := devices.next(t.Context()); ev.(*golibvirt.DomainEventCallbackDeviceRemovedMsg).Msg.DevAlias != "net1" {
		t.Fatalf("device watch got %+v", ev)
	}
	if len(otherWatch.events) != 1 {
		t.Fatalf("the other domain's watch holds %d events, want 1", len(otherWatch.events))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := w.next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next with nothing to read = %v, want the context's error", err)
	}

	// A reader that lags loses events beyond the buffer, and the hub goes on.
	for i := 0; i < 3*watchBuffer; i++ {
		h.deliver(golibvirt.DomainEventIDLifecycle, lifecycle(mine))
	}
	if len(w.events) != watchBuffer {
		t.Fatalf("watch holds %d events, want %d", len(w.events), watchBuffer)
	}

	w.Close()
	h.deliver(golibvirt.DomainEventIDLifecycle, lifecycle(mine))
	if len(w.events) != watchBuffer {
		t.Fatal("a closed watch still receives events")
	}

	h.subscribed[golibvirt.DomainEventIDDeviceRemoved] = true
	h.streamEnded(golibvirt.DomainEventIDDeviceRemoved)
	if _, ok, err := devices.next(t.Context()); ok || err != nil {
		t.Fatalf("next after the stream ended = %v, %v; want not ok, no error", ok, err)
	}
	if h.subscribed[golibvirt.DomainEventIDDeviceRemoved] {
		t.Fatal("the hub still counts an ended stream as subscribed")
	}
	select {
	case <-otherWatch.ended:
		t.Fatal("a watch of another kind was told its stream ended")
	default:
	}
}

// Many waits on one connection at once: libvirtd takes one registration per
// kind of event per connection, so without the hub the second would fail
// with "event callback already tracked".
func TestConcurrentWatches(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := c.watchDomain(ctx, golibvirt.Domain{Name: "x", UUID: golibvirt.UUID{byte(i)}},
				golibvirt.DomainEventIDLifecycle, golibvirt.DomainEventIDDeviceRemoved)
			if err != nil {
				errs <- err
				return
			}
			w.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("watch: %v", err)
	}
	// And again, after every watch closed: the subscriptions are kept.
	w, err := c.watchDomain(ctx, golibvirt.Domain{Name: "x"}, golibvirt.DomainEventIDLifecycle)
	if err != nil {
		t.Fatalf("watch after the others closed: %v", err)
	}
	w.Close()
}

// When anything after the define fails, the domain is undefined again. Not
// parallel: it sets a package-wide hook, and parallel tests only resume once
// the sequential ones are done.
func TestDefineMachineUndoneOnLaterFailure(t *testing.T) {
	c := newTestClient(t)
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	removeMachineAtEnd(t, c, name)
	boom := errors.New("injected failure after define")
	failAfterDefine = func(n string) error {
		if n == name {
			// The domain exists at this point.
			if _, err := c.lookupDomain(ctx, n); err != nil {
				t.Errorf("domain not defined when the hook ran: %v", err)
			}
			return boom
		}
		return nil
	}
	t.Cleanup(func() { failAfterDefine = nil })

	spec := virt.MachineSpec{Name: name, Type: virt.DomainQEMU, Firmware: virt.FirmwareEFI,
		Disks: []virt.DiskSpec{{Path: "/nonexistent/a.qcow2", Format: virt.FormatQCOW2}}}
	if _, err := c.DefineMachine(ctx, spec); !errors.Is(err, boom) {
		t.Fatalf("DefineMachine = %v, want the injected failure", err)
	}
	if _, err := c.Machine(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("the domain survived a failed define: Machine = %v", err)
	}
}

func TestCollectAddresses(t *testing.T) {
	found := map[string][]netip.Addr{}
	collectAddresses(found, []golibvirt.DomainInterface{
		{Name: "vnet0", Hwaddr: golibvirt.OptString{"52:54:00:AA:00:01"}, Addrs: []golibvirt.DomainIPAddr{
			{Addr: "10.0.0.9", Prefix: 24}, {Type: 1, Addr: "fd00::9", Prefix: 64}, {Type: 1, Addr: "fe80::1", Prefix: 64},
		}},
		{Name: "lo", Addrs: []golibvirt.DomainIPAddr{{Addr: "127.0.0.1", Prefix: 8}}},
		{Name: "eth1", Hwaddr: golibvirt.OptString{"52:54:00:aa:00:02"}, Addrs: []golibvirt.DomainIPAddr{{Addr: "not an address"}}},
	})
	// The agent adds what the lease knew again, and more.
	collectAddresses(found, []golibvirt.DomainInterface{
		{Name: "eth0", Hwaddr: golibvirt.OptString{"52:54:00:aa:00:01"}, Addrs: []golibvirt.DomainIPAddr{
			{Addr: "10.0.0.9", Prefix: 24}, {Addr: "10.0.0.10", Prefix: 24}, {Addr: "::ffff:10.0.0.2"},
		}},
	})
	got := map[string][]string{}
	for mac, addrs := range found {
		got[mac] = sortedAddresses(addrs)
	}
	want := map[string][]string{"52:54:00:aa:00:01": {"10.0.0.2", "10.0.0.9", "10.0.0.10", "fd00::9"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("addresses = %v, want %v", got, want)
	}
}

func TestRetryTransient(t *testing.T) {
	locked := golibvirt.Error{Code: uint32(golibvirt.ErrOperationTimeout),
		Message: "Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainSetMemoryFlags)"}
	unplug := golibvirt.Error{Code: uint32(golibvirt.ErrOperationTimeout),
		Message: "Timed out during operation: vcpu unplug request timed out. Unplug result must be manually inspected in the domain"}
	invalid := golibvirt.Error{Code: uint32(golibvirt.ErrOperationInvalid), Message: "Requested operation is not valid: domain is not running"}
	log := hclog.NewNullLogger()

	for _, tc := range []struct {
		name  string
		errs  []error // returned by the attempts in turn
		calls int
		want  error
	}{
		{"success", []error{nil}, 1, nil},
		{"busy, then success", []error{locked, fmt.Errorf("wrapped: %w", locked), nil}, 3, nil},
		{"vcpu unplug timeout is not retried", []error{unplug, nil}, 1, unplug},
		{"other refusals are not retried", []error{invalid, nil}, 1, invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retryTransient(t.Context(), log, func() error {
				calls++
				return tc.errs[calls-1]
			})
			if calls != tc.calls || !errors.Is(err, tc.want) {
				t.Fatalf("%d calls, error %v; want %d calls, error %v", calls, err, tc.calls, tc.want)
			}
		})
	}

	// Busy until the deadline: the last error, saying it gave up.
	ctx, cancel := context.WithTimeout(t.Context(), 600*time.Millisecond)
	defer cancel()
	calls := 0
	start := time.Now()
	err := retryTransient(ctx, log, func() error { calls++; return locked })
	if !isTransient(err) || !strings.Contains(err.Error(), "deadline") || calls < 2 {
		t.Fatalf("after %d calls: %v; want the lock error and the deadline", calls, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("gave up after %s with a deadline of 600ms", took)
	}
}

func TestDefinitionDiffers(t *testing.T) {
	base := virt.MachineSpec{Name: "m", Disks: []virt.DiskSpec{{Path: "/a", Format: virt.FormatRaw}},
		Interfaces: []virt.InterfaceSpec{{Type: virt.InterfaceUser, MAC: "52:54:00:00:00:01"}}}.WithDefaults()
	readBack := base
	readBack.State, readBack.Autostart, readBack.PendingRestart = virt.StateRunning, true, []string{"vcpu"}
	readBack.Interfaces = []virt.InterfaceSpec{base.Interfaces[0]}
	readBack.Interfaces[0].Device, readBack.Interfaces[0].Addresses = "vnet3", []string{"10.0.0.2"}
	if definitionDiffers(readBack, base) {
		t.Error("read-back-only fields and autostart count as a definition change")
	}
	changed := base
	changed.Description = "x"
	if !definitionDiffers(readBack, changed) {
		t.Error("a description change is not a definition change")
	}
}

// A create whose start fails leaves no domain behind, and its error names the
// machine and what stopped it.
func TestCreateMachineStartFailureUndone(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	spec.Interfaces = []virt.InterfaceSpec{{Network: "vt-no-such-network"}}
	removeMachineAtEnd(t, c, name)

	_, err := c.CreateMachine(ctx, spec, true)
	if err == nil {
		t.Fatal("CreateMachine with a missing network succeeded")
	}
	if !strings.Contains(err.Error(), "vt-no-such-network") || !strings.Contains(err.Error(), name) {
		t.Errorf("error does not name the machine and the network: %v", err)
	}
	exists, err := c.MachineExists(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("machine %s is still defined after its failed create", name)
	}
}

// CreateMachine with start returns the machine read back while it runs,
// with what only a running machine has (its live interface names).
func TestCreateMachineStarted(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	removeMachineAtEnd(t, c, name)

	got, err := c.CreateMachine(ctx, spec, true)
	if err != nil {
		t.Fatalf("CreateMachine: %v", err)
	}
	if got.State != virt.StateRunning {
		t.Errorf("state = %s, want running", got.State)
	}
	out, err := exec.Command("virsh", "-q", "-c", testenv.URI(), "domstate", name).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "running" {
		t.Errorf("virsh domstate %s = %q (%v), want running", name, out, err)
	}
	exists, err := c.MachineExists(ctx, name)
	if err != nil || !exists {
		t.Errorf("MachineExists(%s) = %v, %v; want true", name, exists, err)
	}
}
