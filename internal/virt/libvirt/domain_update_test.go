package libvirt

import (
	"bytes"
	"compress/gzip"
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
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// bootedTestGuest defines and starts spec and waits until its guest is up
// (acpid armed, so that a graceful shutdown works), with cleanup.
func bootedTestGuest(t *testing.T, c *Client, spec virt.MachineSpec) *virt.MachineSpec {
	t.Helper()
	removeMachineAtEnd(t, c, spec.Name)
	got, err := c.DefineMachine(t.Context(), spec)
	if err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	start := time.Now()
	if err := c.StartMachine(t.Context(), spec.Name); err != nil {
		t.Fatalf("StartMachine: %v", err)
	}
	waitConsole(t, spec.Console.Path, testenv.Marker)
	t.Logf("guest up %s after start", time.Since(start).Round(time.Millisecond))
	return got
}

// dataDisk makes an empty qcow2 image QEMU can open.
func dataDisk(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", p, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	return p
}

// domainXML reads a domain's live (flags 0) or inactive definition.
func domainXML(t *testing.T, c *Client, name string, flags golibvirt.DomainXMLFlags) *libvirtxml.Domain {
	t.Helper()
	var doc string
	err := c.call(t.Context(), func(lv *golibvirt.Libvirt) error {
		dom, err := lv.DomainLookupByName(name)
		if err != nil {
			return err
		}
		doc, err = lv.DomainGetXMLDesc(dom, flags)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	return &d
}

// pciAddress renders a device's PCI address for comparison.
func pciAddress(a *libvirtxml.DomainAddress) string {
	if a == nil || a.PCI == nil || a.PCI.Slot == nil {
		return "none"
	}
	return fmt.Sprintf("slot %#x function %#x", *a.PCI.Slot, *a.PCI.Function)
}

func countOnConsole(t *testing.T, path, marker string) int {
	t.Helper()
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), marker)
}

// waitConsoleCount waits until marker is on the console n times.
func waitConsoleCount(t *testing.T, path, marker string, n int) {
	t.Helper()
	deadline := time.Now().Add(consoleDeadline)
	for countOnConsole(t, path, marker) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not %d times on the console within %s", marker, n, consoleDeadline)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func withDisks(s virt.MachineSpec, disks ...virt.DiskSpec) virt.MachineSpec {
	s.Disks = append(slices.Clone(s.Disks), disks...)
	return s
}

func withInterfaces(s virt.MachineSpec, ifaces ...virt.InterfaceSpec) virt.MachineSpec {
	s.Interfaces = append(slices.Clone(s.Interfaces), ifaces...)
	return s
}

// Everything that can change live does, on a running guest that keeps
// running: balloon, vCPU hot-plug, disk and NIC hot-plug and unplug,
// description, autostart; and an update that ends with the machine stopped
// shuts it down first.
func TestUpdateMachineLive(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	dir := qemuWorkDir(t)
	spec := testGuestSpec(t, testenv.Name(t, "lv-dom"), dir)
	spec.VCPU, spec.MaxVCPU = 1, 2
	spec.MemoryMiB, spec.MaxMemoryMiB, spec.Balloon = 256, 512, true
	first := bootedTestGuest(t, c, spec)
	name := spec.Name
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	balloon, err := c.watchDomain(ctx, dom, golibvirt.DomainEventIDBalloonChange)
	if err != nil {
		t.Fatal(err)
	}
	defer balloon.Close()

	want := withInterfaces(withDisks(spec, virt.DiskSpec{Path: dataDisk(t, dir, "data.qcow2"), Format: virt.FormatQCOW2}),
		virt.InterfaceSpec{Type: virt.InterfaceUser})
	want.MemoryMiB, want.VCPU = 384, 2
	want.Description, want.Autostart = "updated live", true
	start := time.Now()
	got, err := c.UpdateMachine(ctx, name, want, virt.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateMachine: %v", err)
	}
	t.Logf("live update (memory, vcpu, disk, NIC, description, autostart) took %s", time.Since(start).Round(time.Millisecond))
	expect := withReadBack(want.WithDefaults(), got)
	expect.State = virt.StateRunning
	requireSpec(t, "live-updated machine", got, expect)
	if got.Interfaces[0].MAC != first.Interfaces[0].MAC {
		t.Errorf("the first NIC changed its MAC from %s to %s", first.Interfaces[0].MAC, got.Interfaces[0].MAC)
	}

	live := domainXML(t, c, name, 0)
	liveSpec, err := specFromDomain(live)
	if err != nil {
		t.Fatal(err)
	}
	if liveSpec.VCPU != 2 {
		t.Errorf("running machine has %d vCPUs, want 2", liveSpec.VCPU)
	}
	if live.Description != want.Description {
		t.Errorf("running machine's description = %q", live.Description)
	}
	if len(liveSpec.Disks) != 2 || liveSpec.Disks[1].Target != "vdb" || liveSpec.Disks[1].Path != want.Disks[1].Path {
		t.Errorf("running machine's disks = %+v, want the data disk as vdb", liveSpec.Disks)
	}
	if len(liveSpec.Interfaces) != 2 || liveSpec.Interfaces[1].MAC != got.Interfaces[1].MAC {
		t.Errorf("running machine's NICs = %+v, want the new one with the persistent MAC %s", liveSpec.Interfaces, got.Interfaces[1].MAC)
	}
	// The hot-plugged devices sit where the persistent definition put
	// them, so they keep their names in the guest after a restart.
	persisted := domainXML(t, c, name, golibvirt.DomainXMLInactive)
	if a, b := pciAddress(live.Devices.Disks[1].Address), pciAddress(persisted.Devices.Disks[1].Address); a != b {
		t.Errorf("hot-plugged disk at %s, persistent definition at %s", a, b)
	}
	// The guest's balloon driver gets there in its own time.
	for reached := false; !reached; {
		ev, ok, err := balloon.next(ctx)
		if err != nil || !ok {
			t.Fatalf("no balloon change to 384 MiB: %v", err)
		}
		actual := ev.(*golibvirt.DomainEventCallbackBalloonChangeMsg).Msg.Actual
		t.Logf("balloon at %d KiB after %s", actual, time.Since(start).Round(time.Millisecond))
		reached = actual == 384<<10
	}
	if n := countOnConsole(t, spec.Console.Path, testenv.Marker); n != 1 {
		t.Errorf("guest booted %d times; a live update must not restart it", n)
	}

	// And back: unplug the disk and the NIC, balloon down.
	back := spec
	back.Description = "updated live"
	start = time.Now()
	got, err = c.UpdateMachine(ctx, name, back, virt.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateMachine (unplug): %v", err)
	}
	t.Logf("live unplug of a disk and a NIC took %s", time.Since(start).Round(time.Millisecond))
	expect = withReadBack(back.WithDefaults(), got)
	expect.State = virt.StateRunning
	// vCPUs only go at the next boot (the guest would have to let go).
	expect.PendingRestart = []string{"vcpu"}
	requireSpec(t, "machine after unplug", got, expect)
	live = domainXML(t, c, name, 0)
	if n, m := len(live.Devices.Disks), len(live.Devices.Interfaces); n != 1 || m != 1 {
		t.Errorf("running machine still has %d disks and %d NICs, want 1 and 1", n, m)
	}

	// Ending stopped: shut down, then redefined; nothing pending.
	stop := false
	got, err = c.UpdateMachine(ctx, name, back, virt.UpdateOptions{Running: &stop, ShutdownGrace: consoleDeadline})
	if err != nil {
		t.Fatalf("UpdateMachine (stop): %v", err)
	}
	if got.State != virt.StateShutoff || got.PendingRestart != nil {
		t.Errorf("after an update to stopped: state %s, pending %v", got.State, got.PendingRestart)
	}
	if countOnConsole(t, spec.Console.Path, poweroffMarker) != 1 {
		t.Errorf("the guest was not shut down gracefully")
	}

	// Ending running: redefined first, so it boots with the new definition.
	run := true
	next := back
	next.Boot = &virt.DirectBoot{Kernel: spec.Boot.Kernel, Initrd: spec.Boot.Initrd, Cmdline: "console=ttyS0 vt-started-by-update"}
	got, err = c.UpdateMachine(ctx, name, next, virt.UpdateOptions{Running: &run})
	if err != nil {
		t.Fatalf("UpdateMachine (start): %v", err)
	}
	if got.State != virt.StateRunning || got.PendingRestart != nil {
		t.Errorf("after an update to running: state %s, pending %v", got.State, got.PendingRestart)
	}
	waitConsoleCount(t, spec.Console.Path, testenv.Marker, 2)
	if b, _ := os.ReadFile(spec.Console.Path); !strings.Contains(string(b), "Command line: console=ttyS0 vt-started-by-update") {
		t.Errorf("the machine did not boot with the definition of the update that started it")
	}
}

// A change only a restart applies waits for the next boot, and says so;
// the same update with Reboot restarts the machine to apply it (also when
// the change was written by an earlier update).
func TestUpdateMachineNextBoot(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	spec := testGuestSpec(t, testenv.Name(t, "lv-dom"), qemuWorkDir(t))
	bootedTestGuest(t, c, spec)
	name := spec.Name

	want := spec
	want.Boot = &virt.DirectBoot{Kernel: spec.Boot.Kernel, Initrd: spec.Boot.Initrd, Cmdline: "console=ttyS0 vt-next-boot"}
	start := time.Now()
	got, err := c.UpdateMachine(ctx, name, want, virt.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateMachine: %v", err)
	}
	t.Logf("next-boot update took %s", time.Since(start).Round(time.Millisecond))
	if got.Boot.Cmdline != want.Boot.Cmdline || !slices.Equal(got.PendingRestart, []string{"boot.cmdline"}) {
		t.Fatalf("after a next-boot update: cmdline %q, pending %v; want the new cmdline pending", got.Boot.Cmdline, got.PendingRestart)
	}
	if live := domainXML(t, c, name, 0); live.OS.Cmdline != spec.Boot.Cmdline {
		t.Errorf("the running machine's cmdline changed to %q", live.OS.Cmdline)
	}
	if n := countOnConsole(t, spec.Console.Path, testenv.Marker); n != 1 {
		t.Errorf("guest booted %d times without Reboot", n)
	}

	start = time.Now()
	got, err = c.UpdateMachine(ctx, name, want, virt.UpdateOptions{Reboot: true, ShutdownGrace: consoleDeadline})
	if err != nil {
		t.Fatalf("UpdateMachine with Reboot: %v", err)
	}
	t.Logf("restart for the pending change took %s", time.Since(start).Round(time.Millisecond))
	expect := withReadBack(want.WithDefaults(), got)
	expect.State = virt.StateRunning
	requireSpec(t, "restarted machine", got, expect)
	waitConsoleCount(t, spec.Console.Path, testenv.Marker, 2)
	t.Logf("guest up again %s after the update began", time.Since(start).Round(time.Millisecond))
	console, _ := os.ReadFile(spec.Console.Path)
	if !strings.Contains(string(console), "Command line: console=ttyS0 vt-next-boot") {
		t.Errorf("the guest did not boot with the new command line")
	}
	if n := strings.Count(string(console), poweroffMarker); n != 1 {
		t.Errorf("poweroff marker %d times; the restart must be a graceful shutdown", n)
	}

	// Nothing left to restart for: the same update again changes nothing.
	got, err = c.UpdateMachine(ctx, name, want, virt.UpdateOptions{Reboot: true})
	if err != nil || got.PendingRestart != nil {
		t.Fatalf("repeated UpdateMachine = %v, pending %v", err, got.PendingRestart)
	}
	if n := countOnConsole(t, spec.Console.Path, poweroffMarker); n != 1 {
		t.Errorf("a no-op update restarted the machine")
	}
}

// A guest that does not release a disk (here: paused, so it cannot answer
// the ACPI unplug request) fails the update with a clear error within the
// deadline; the persistent definition no longer has the disk, and once the
// guest answers, the disk goes.
func TestUpdateMachineDetachNotReleased(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	dir := qemuWorkDir(t)
	spec := testGuestSpec(t, testenv.Name(t, "lv-dom"), dir)
	spec = withDisks(spec, virt.DiskSpec{Path: dataDisk(t, dir, "data.qcow2"), Format: virt.FormatQCOW2})
	bootedTestGuest(t, c, spec)
	name := spec.Name
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainSuspend(dom) }); err != nil {
		t.Fatal(err)
	}

	want := spec
	want.Disks = spec.Disks[:1]
	const deadline = 3 * time.Second
	uctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	got, err := c.UpdateMachine(uctx, name, want, virt.UpdateOptions{})
	took := time.Since(start)
	t.Logf("error after %s: %v", took.Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "did not release") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("UpdateMachine = %v, want an error saying the guest did not release the disk", err)
	}
	if took > deadline+5*time.Second {
		t.Errorf("UpdateMachine took %s with a deadline of %s", took, deadline)
	}
	if got == nil || len(got.Disks) != 1 {
		t.Fatalf("read back with the error = %+v; want the persistent definition without the disk", got)
	}
	alias := "virtio-disk1"
	if !hasAlias(domainXML(t, c, name, 0), alias) {
		t.Fatalf("the running machine no longer has %s; the test meant the guest to hold on to it", alias)
	}

	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainResume(dom) }); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, consoleDeadline)
	defer cancel()
	if err := c.awaitDeviceRemoval(wctx, dom, alias, nil); err != nil {
		t.Fatalf("the disk did not go once the guest ran again: %v", err)
	}
	got, err = c.Machine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	expect := withReadBack(want.WithDefaults(), got)
	expect.State = virt.StateRunning
	requireSpec(t, "machine after the late unplug", got, expect)
}

// On a stopped machine an update is a new definition, which reads back as
// asked; the NICs and disks that stay keep their MACs, targets and slots;
// what needs a new machine is refused without touching it.
func TestUpdateMachineStopped(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	removeMachineAtEnd(t, c, name)
	spec := virt.MachineSpec{
		Name: name, Type: virt.DomainQEMU, MemoryMiB: 256,
		Disks:      []virt.DiskSpec{{Path: "/nonexistent/a.qcow2", Format: virt.FormatQCOW2}, {Path: "/nonexistent/b.qcow2", Format: virt.FormatQCOW2}},
		Interfaces: []virt.InterfaceSpec{{Type: virt.InterfaceUser}, {Type: virt.InterfaceUser}},
	}
	first, err := c.DefineMachine(ctx, spec)
	if err != nil {
		t.Fatalf("DefineMachine: %v", err)
	}
	before := domainXML(t, c, name, golibvirt.DomainXMLInactive)

	// The user's view: no MACs, no targets. Drop the first data disk and
	// the first NIC, change nearly everything else.
	want := spec
	want.Description = "redefined"
	want.MemoryMiB, want.MaxMemoryMiB, want.Balloon = 384, 512, true
	want.VCPU, want.MaxVCPU = 2, 4
	want.Boot = &virt.DirectBoot{Kernel: "/nonexistent/vmlinuz", Cmdline: "console=ttyS0"}
	want.Disks = []virt.DiskSpec{spec.Disks[0],
		{Path: "/nonexistent/c.raw", Format: virt.FormatRaw, Bus: virt.BusSATA},
		{Path: "/nonexistent/d.raw", Format: virt.FormatRaw}}
	want.Interfaces = []virt.InterfaceSpec{{Type: virt.InterfaceUser, MAC: first.Interfaces[1].MAC, Model: "e1000"}, {Bridge: testBridge}}
	want.Console = virt.ConsoleSpec{Type: virt.ConsoleFile, Path: "/nonexistent/console.log"}
	want.Graphics = virt.GraphicsSpec{Type: virt.GraphicsVNC}
	want.QemuAgent, want.RNG, want.Autostart = true, true, true
	start := time.Now()
	got, err := c.UpdateMachine(ctx, name, want, virt.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateMachine: %v", err)
	}
	t.Logf("UpdateMachine of a stopped machine took %s", time.Since(start).Round(time.Millisecond))
	expect := withReadBack(want.WithDefaults(), got)
	expect.State = virt.StateShutoff
	expect.Disks[2].Target = "vdb" // the freed target, as the plan gives it
	requireSpec(t, "redefined machine", got, expect)
	again, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	requireSpec(t, "redefined machine read again", again, *got)
	if got.UUID != first.UUID {
		t.Errorf("UUID changed from %s to %s", first.UUID, got.UUID)
	}
	after := domainXML(t, c, name, golibvirt.DomainXMLInactive)
	if a, b := pciAddress(after.Devices.Interfaces[0].Address), pciAddress(before.Devices.Interfaces[1].Address); a != b || a == "none" {
		t.Errorf("the NIC that stayed moved from %s to %s", b, a)
	}

	bad := want
	bad.Type, bad.Firmware = virt.DomainKVM, virt.FirmwareEFI
	if _, err := c.UpdateMachine(ctx, name, bad, virt.UpdateOptions{}); !errors.Is(err, virt.ErrNeedsReplace) ||
		!strings.Contains(err.Error(), "type, firmware") {
		t.Fatalf("UpdateMachine changing type and firmware = %v, want ErrNeedsReplace naming both", err)
	}
	if now, err := c.Machine(ctx, name); err != nil || now.Type != virt.DomainQEMU {
		t.Fatalf("a refused update changed the machine: %+v, %v", now, err)
	}
	invalid := want
	invalid.VCPU = 9
	var errs virt.SpecErrors
	if _, err := c.UpdateMachine(ctx, name, invalid, virt.UpdateOptions{}); !errors.As(err, &errs) || errs[0].Field != "vcpu" {
		t.Fatalf("UpdateMachine with vcpu above max_vcpu = %v, want a SpecError on vcpu", err)
	}
	if _, err := c.UpdateMachine(ctx, testenv.Name(t, "lv-dom"), want, virt.UpdateOptions{}); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("UpdateMachine of a missing machine = %v, want ErrNotFound", err)
	}

	// libvirt chooses an EFI machine's firmware files on define; a
	// redefinition asks again and reads back the same.
	efi := virt.MachineSpec{Name: testenv.Name(t, "lv-dom"), Type: virt.DomainQEMU, Firmware: virt.FirmwareEFI,
		Disks: []virt.DiskSpec{{Path: "/nonexistent/efi.qcow2", Format: virt.FormatQCOW2}}}
	removeMachineAtEnd(t, c, efi.Name)
	if _, err := c.DefineMachine(ctx, efi); err != nil {
		t.Fatalf("DefineMachine (EFI): %v", err)
	}
	loader := domainXML(t, c, efi.Name, golibvirt.DomainXMLInactive).OS.Loader
	efi.Description, efi.MemoryMiB = "efi, redefined", 256
	got, err = c.UpdateMachine(ctx, efi.Name, efi, virt.UpdateOptions{})
	if err != nil {
		t.Fatalf("UpdateMachine (EFI): %v", err)
	}
	expect = withReadBack(efi.WithDefaults(), got)
	expect.State = virt.StateShutoff
	requireSpec(t, "redefined EFI machine", got, expect)
	if now := domainXML(t, c, efi.Name, golibvirt.DomainXMLInactive).OS.Loader; !reflect.DeepEqual(now, loader) {
		t.Errorf("EFI loader changed on redefinition: %+v, was %+v", now, loader)
	}
}

// dhcpGuestInitrd is the test guest's initrd with an init that also asks for
// a DHCP lease on every NIC before it says it is ready. The kernel unpacks
// concatenated archives in order, so appending one with a new /init
// replaces the old.
func dhcpGuestInitrd(t *testing.T, dir string) string {
	t.Helper()
	base := testenv.GuestInitrd(t)
	orig, err := exec.Command("sh", "-c", `gzip -dc "$0" | cpio -i --quiet --to-stdout init`, base).Output()
	if err != nil {
		t.Fatalf("extract /init from %s: %v", base, err)
	}
	const ready = `echo "VIRT-TESTENV-GUEST-READY"`
	// The lease is all the test needs: the script configures nothing.
	dhcp := `for n in /sys/class/net/*; do
	n=${n##*/}
	[ "$n" = lo ] && continue
	ip link set "$n" up
	udhcpc -i "$n" -q -n -t 30 -T 1 -s /bin/true >/dev/null 2>&1 &
done
`
	if !bytes.Contains(orig, []byte(ready)) {
		t.Fatalf("the guest's /init has no %s line to put the DHCP step before", ready)
	}
	patched := bytes.Replace(orig, []byte(ready), []byte(dhcp+ready), 1)
	tree := filepath.Join(dir, "dhcp-init")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "init"), patched, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "--quiet", "-o", "-H", "newc")
	cmd.Dir, cmd.Stdin = tree, strings.NewReader("init\n")
	archive, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio: %v", err)
	}
	out, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(archive); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "initrd-dhcp.gz")
	if err := os.WriteFile(p, append(out, gz.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Placeholders for the live XML golden file (see TestMachineAddresses).
const (
	goldenLiveNetwork = "vt-golden-net"
	goldenMACBridge   = "52:54:00:5a:00:03"
	goldenLiveKernel  = "/var/cache/virt-testenv/guest/vmlinuz"
)

// goldenLiveSpec is the machine whose running definition
// testdata/libvirt-live.xml holds.
func goldenLiveSpec(name, uuid, workDir, network, kernel string, macs [3]string) virt.MachineSpec {
	return virt.MachineSpec{
		Name: name, UUID: uuid, Type: virt.DomainQEMU, Description: "live golden",
		VCPU: 1, MaxVCPU: 2, MemoryMiB: 256, MaxMemoryMiB: 512,
		Boot: &virt.DirectBoot{Kernel: kernel, Initrd: filepath.Join(workDir, "initrd-dhcp.gz"), Cmdline: "console=ttyS0"},
		Disks: []virt.DiskSpec{{Path: filepath.Join(workDir, goldenDiskFile), Format: virt.FormatQCOW2},
			{Path: filepath.Join(workDir, "data.qcow2"), Format: virt.FormatQCOW2, ReadOnly: true}},
		Interfaces: []virt.InterfaceSpec{{Network: network, MAC: macs[0]}, {Type: virt.InterfaceUser, MAC: macs[1], Model: "e1000"},
			{Bridge: testBridge, MAC: macs[2]}},
		Console:  virt.ConsoleSpec{Type: virt.ConsoleFile, Path: filepath.Join(workDir, goldenConsole)},
		Graphics: virt.GraphicsSpec{Type: virt.GraphicsVNC}, QemuAgent: true, RNG: true, Balloon: true,
	}
}

// randomMAC is a locally administered unicast MAC in libvirt's range.
func randomMAC(t *testing.T) string {
	t.Helper()
	n := strings.TrimPrefix(testenv.Name(t, "m"), testenv.Prefix+"m-")
	return fmt.Sprintf("52:54:00:%s:%s:%s", n[0:2], n[2:4], n[4:6])
}

// A NIC on a libvirt network gets its DHCP lease read back as its address,
// and WaitForAddress waits for it. The running machine reads back as
// defined, with tap names and nothing pending: what the live definition
// adds (aliases, tap names, PTYs, the bridge of the network) does not leak.
// Under -update the live and inactive XML are kept as golden files.
func TestMachineAddresses(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	dir := qemuWorkDir(t)
	prefix, n := freeSubnet(t)
	network := testenv.Name(t, "lv-net")
	removeNetworkAtEnd(t, c, network)
	if _, err := c.CreateNetwork(ctx, virt.NetworkSpec{Name: network, Mode: virt.NetworkIsolated,
		Addresses: []string{fmt.Sprintf("10.251.%d.1/24", n)}, DHCP: true}); err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	name := testenv.Name(t, "lv-dom")
	uuid := "5e1f0c2a-7d44-4b8e-a1c3-" + strings.TrimPrefix(name, testenv.Prefix+"lv-dom-") + "0000"
	macs := [3]string{randomMAC(t), randomMAC(t), randomMAC(t)}
	spec := goldenLiveSpec(name, uuid, dir, network, testenv.GuestKernel(t), macs)
	dhcpGuestInitrd(t, dir)
	overlayOf(t, testenv.GuestDisk(t), dir, goldenDiskFile)
	dataDisk(t, dir, "data.qcow2")
	start := time.Now()
	bootedTestGuest(t, c, spec)

	wctx, cancel := context.WithTimeout(ctx, consoleDeadline)
	defer cancel()
	addrs, err := c.WaitForAddress(wctx, name, strings.ToUpper(macs[0]))
	if err != nil {
		t.Fatalf("WaitForAddress: %v", err)
	}
	t.Logf("address %v %s after start", addrs, time.Since(start).Round(time.Millisecond))
	if ip, err := netip.ParseAddr(addrs[0]); err != nil || !prefix.Contains(ip) || len(addrs) != 1 {
		t.Fatalf("addresses %v, want one in %s", addrs, prefix)
	}

	got, err := c.Machine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	expect := withReadBack(spec.WithDefaults(), got)
	expect.State = virt.StateRunning
	expect.Interfaces[0].Addresses = addrs
	// The bridge NIC's address, if the host's ARP table happens to have
	// one, is its own business.
	expect.Interfaces[2].Addresses = got.Interfaces[2].Addresses
	requireSpec(t, "running machine with addresses", got, expect)
	for i, nic := range got.Interfaces {
		if (nic.Device == "") != (i == 1) {
			t.Errorf("interfaces[%d] has tap %q; only the user-mode NIC has none", i, nic.Device)
		}
	}

	if _, err := c.WaitForAddress(ctx, name, "52:54:00:ff:ff:ff"); err == nil || !strings.Contains(err.Error(), "no NIC") {
		t.Errorf("WaitForAddress of a NIC the machine lacks = %v", err)
	}

	if updateGolden() {
		var docs [2]string
		err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
			dom, err := lv.DomainLookupByName(name)
			if err != nil {
				return err
			}
			if docs[0], err = lv.DomainGetXMLDesc(dom, 0); err != nil {
				return err
			}
			docs[1], err = lv.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, file := range []string{"libvirt-live.xml", "libvirt-live-inactive.xml"} {
			checkGolden(t, file, []byte(normalizeLiveXML(docs[i], map[string]string{
				dir: goldenWorkDir, name: goldenName, uuid: goldenUUID, network: goldenLiveNetwork,
				testenv.GuestKernel(t): goldenLiveKernel,
				macs[0]:                goldenMACNet, macs[1]: goldenMACUser, macs[2]: goldenMACBridge,
			})))
		}
	}
}

// normalizeLiveXML replaces what differs between runs in a domain's XML.
func normalizeLiveXML(doc string, names map[string]string) string {
	var pairs []string
	for from, to := range names {
		pairs = append(pairs, from, to)
	}
	doc = strings.NewReplacer(pairs...).Replace(doc)
	taps := map[string]string{}
	doc = regexp.MustCompile(`vnet[0-9]+`).ReplaceAllStringFunc(doc, func(s string) string {
		if _, ok := taps[s]; !ok {
			taps[s] = fmt.Sprintf("vnet%d", len(taps))
		}
		return taps[s]
	})
	for re, to := range map[string]string{
		`<domain type='qemu' id='[0-9]+'>`: "<domain type='qemu' id='1'>",
		`domain-[0-9]+-`:                   "domain-1-",
		`virbr[0-9]+`:                      "virbr1",
		`port='59[0-9][0-9]'`:              "port='5900'",
		`/dev/pts/[0-9]+`:                  "/dev/pts/1",
		`portid='[0-9a-f-]+'`:              "portid='00000000-0000-0000-0000-000000000000'",
	} {
		doc = regexp.MustCompile(re).ReplaceAllString(doc, to)
	}
	return doc
}
