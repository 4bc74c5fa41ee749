package libvirt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

func TestFormatVersion(t *testing.T) {
	for v, want := range map[uint64]string{
		9000000: "9.0.0",
		7002022: "7.2.22",
		2:       "0.0.2",
		1010001: "1.10.1",
	} {
		if got := formatVersion(v); got != want {
			t.Errorf("formatVersion(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestDomainTypesOnlyForHostArch(t *testing.T) {
	caps := libvirtxml.Caps{Guests: []libvirtxml.CapsGuest{
		{Arch: libvirtxml.CapsGuestArch{Name: "aarch64", Domains: []libvirtxml.CapsGuestDomain{{Type: "qemu"}}}},
		{Arch: libvirtxml.CapsGuestArch{Name: "x86_64", Domains: []libvirtxml.CapsGuestDomain{{Type: "qemu"}, {Type: "kvm"}}}},
		{Arch: libvirtxml.CapsGuestArch{Name: "x86_64", Domains: []libvirtxml.CapsGuestDomain{{Type: "qemu"}}}},
		{Arch: libvirtxml.CapsGuestArch{Name: "riscv64", Domains: []libvirtxml.CapsGuestDomain{{Type: "hvf"}}}},
	}}
	if got := domainTypes(&caps, "x86_64"); !slices.Equal(got, []string{"qemu", "kvm"}) {
		t.Fatalf("domainTypes = %v, want [qemu kvm]", got)
	}
	if got := domainTypes(&caps, "s390x"); got == nil || len(got) != 0 {
		t.Fatalf("domainTypes for an absent arch = %#v, want an empty list", got)
	}
}

// The real daemon's answer agrees with what virsh, an independent client,
// and the local host say.
func TestHostInfo(t *testing.T) {
	c := newTestClient(t)
	info, err := c.HostInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("host info: %+v", *info)

	semver := regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	if !semver.MatchString(info.LibvirtVersion) || !semver.MatchString(info.HypervisorVersion) {
		t.Errorf("versions %q / %q are not major.minor.micro", info.LibvirtVersion, info.HypervisorVersion)
	}
	if info.Hostname == "" || info.Arch == "" || info.CPUs == 0 || info.MemoryBytes == 0 {
		t.Errorf("missing facts: %+v", *info)
	}
	if !slices.Contains(info.DomainTypes, "qemu") {
		t.Errorf("domain types %v lack qemu (TCG), which every QEMU host offers", info.DomainTypes)
	}
	if info.KVMAvailable != slices.Contains(info.DomainTypes, "kvm") {
		t.Errorf("KVMAvailable %v disagrees with domain types %v", info.KVMAvailable, info.DomainTypes)
	}
	if info.LXCVersion != "" {
		t.Errorf("LXCVersion = %q; the libvirt backend must leave it to the LXC backend", info.LXCVersion)
	}

	out, err := exec.Command("virsh", "-c", testenv.URI(), "version", "--daemon").CombinedOutput()
	if err != nil {
		t.Fatalf("virsh version: %v\n%s", err, out)
	}
	if want := "Running against daemon: " + info.LibvirtVersion; !strings.Contains(string(out), want) {
		t.Errorf("virsh says\n%s\nwant a line %q", out, want)
	}
	if want := "Running hypervisor: QEMU " + info.HypervisorVersion; !strings.Contains(string(out), want) {
		t.Errorf("virsh says\n%s\nwant a line %q", out, want)
	}

	if !strings.HasSuffix(testenv.URI(), ":///system") {
		return // the rest compares with the machine the test runs on
	}
	if h, _ := os.Hostname(); info.Hostname != h {
		t.Errorf("hostname = %q, local hostname %q", info.Hostname, h)
	}
	if memKiB := memTotalKiB(t); info.MemoryBytes != memKiB*1024 {
		t.Errorf("memory = %d bytes, /proc/meminfo MemTotal = %d KiB", info.MemoryBytes, memKiB)
	}
	// libvirt offers kvm exactly when /dev/kvm is usable; whether guests
	// then run (not on nested hosts like this one) is beyond what it knows.
	_, statErr := os.Stat("/dev/kvm")
	if info.KVMAvailable != (statErr == nil) {
		t.Errorf("KVMAvailable = %v, but /dev/kvm stat error = %v", info.KVMAvailable, statErr)
	}
}

// The daemon's test driver answers with fixed facts, so every field can be
// checked exactly.
func TestHostInfoTestDriver(t *testing.T) {
	testenv.Integration(t)
	c, err := New(context.Background(), Options{URI: "test:///default"})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer func() { _ = c.Close() }()
	info, err := c.HostInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	real := newTestClient(t)
	realInfo, err := real.HostInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Arch != "i686" || info.CPUs != 16 || info.MemoryBytes != 3145728*1024 ||
		!slices.Equal(info.DomainTypes, []string{"test"}) || info.KVMAvailable ||
		info.HypervisorVersion != "0.0.2" || info.LXCVersion != "" {
		t.Errorf("test driver host info = %+v", *info)
	}
	if info.LibvirtVersion != realInfo.LibvirtVersion {
		t.Errorf("test driver libvirt version %q, daemon's %q: same daemon, same version", info.LibvirtVersion, realInfo.LibvirtVersion)
	}
	if info.Hostname == "" {
		t.Error("test driver gave no hostname")
	}
}

func memTotalKiB(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kib uint64
		if n, _ := fmt.Sscanf(line, "MemTotal: %d kB", &kib); n == 1 {
			return kib
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}
