package libvirt

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// The -update flag rewrites golden files. Other test files of this package
// may want the same flag, so it is defined only once, by whoever comes first
// (package variables initialise before any init function runs).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata/")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// checkGolden compares got with testdata/name, or rewrites it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updateGolden() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if string(want) != string(got) {
		t.Fatalf("%s differs (run with -update to accept):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// Placeholders for what differs between runs in the XML captured from the
// daemon (see TestCaptureLibvirtDomainXML).
const (
	goldenName     = "vt-golden"
	goldenUUID     = "8c3c9e5a-3b7e-4a8e-9d35-0c1f8a6b2d11"
	goldenPool     = "vt-golden-pool"
	goldenPoolDir  = "/srv/vt-golden-pool"
	goldenWorkDir  = "/srv/vt-golden"
	goldenMACUser  = "52:54:00:5a:00:01"
	goldenMACNet   = "52:54:00:5a:00:02"
	goldenVolKey   = "golden-key.qcow2"
	goldenVolName  = "golden-named.raw"
	goldenKernel   = "vmlinuz"
	goldenInitrd   = "initrd.gz"
	goldenConsole  = "console.log"
	goldenDiskFile = "disk.qcow2"
)

// goldenMachineSpec exercises every field the XML carries. The integration
// test defines it for real; the unit test parses what libvirt made of it.
func goldenMachineSpec(name, uuid, pool, poolDir, workDir string) virt.MachineSpec {
	return virt.MachineSpec{
		Name:         name,
		UUID:         uuid,
		Type:         virt.DomainQEMU,
		Description:  "golden <machine> & friends",
		VCPU:         1,
		MaxVCPU:      2,
		MemoryMiB:    256,
		MaxMemoryMiB: 512,
		Boot: &virt.DirectBoot{
			Kernel:  filepath.Join(workDir, goldenKernel),
			Initrd:  filepath.Join(workDir, goldenInitrd),
			Cmdline: "console=ttyS0 quiet",
		},
		Disks: []virt.DiskSpec{
			{Path: filepath.Join(workDir, goldenDiskFile), Format: virt.FormatQCOW2},
			{VolumeKey: filepath.Join(poolDir, goldenVolKey), Format: virt.FormatQCOW2},
			{Pool: pool, Volume: goldenVolName, Format: virt.FormatRaw, Bus: virt.BusSCSI, ReadOnly: true},
			{Path: filepath.Join(workDir, "seed.iso"), Format: virt.FormatRaw, Device: virt.DeviceCDROM},
		},
		Interfaces: []virt.InterfaceSpec{
			{Type: virt.InterfaceUser, MAC: goldenMACUser},
			{Network: "default", Model: "e1000", MAC: goldenMACNet},
		},
		Console:   virt.ConsoleSpec{Type: virt.ConsoleFile, Path: filepath.Join(workDir, goldenConsole)},
		Graphics:  virt.GraphicsSpec{Type: virt.GraphicsVNC},
		QemuAgent: true,
		RNG:       true,
		Balloon:   true,
	}
}

type renderCase struct {
	name    string
	spec    virt.MachineSpec
	sources []diskSource
}

func renderCases() []renderCase {
	golden := goldenMachineSpec(goldenName, goldenUUID, goldenPool, goldenPoolDir, goldenWorkDir)
	return []renderCase{
		{
			name: "minimal",
			spec: virt.MachineSpec{
				Name:       "vm",
				Disks:      []virt.DiskSpec{{Path: "/var/lib/libvirt/images/vm.qcow2", Format: virt.FormatQCOW2}},
				Interfaces: []virt.InterfaceSpec{{}},
			},
			sources: []diskSource{{Path: "/var/lib/libvirt/images/vm.qcow2", Format: virt.FormatQCOW2}},
		},
		{
			name: "full",
			spec: golden,
			sources: []diskSource{
				{Path: golden.Disks[0].Path, Format: virt.FormatQCOW2},
				{Path: golden.Disks[1].VolumeKey, Format: virt.FormatQCOW2},
				{Path: filepath.Join(goldenPoolDir, goldenVolName), Format: virt.FormatRaw},
				{Path: golden.Disks[3].Path, Format: virt.FormatRaw},
			},
		},
		{
			name: "efi-spice-block",
			spec: virt.MachineSpec{
				Name:     "efi",
				Type:     virt.DomainKVM,
				VCPU:     4,
				Firmware: virt.FirmwareEFI,
				Disks: []virt.DiskSpec{
					// Format is read back from the volume when not given.
					{Pool: "lvm", Volume: "root"},
					{Path: "/dev/sdb", Format: virt.FormatRaw, Bus: virt.BusSATA},
				},
				Interfaces: []virt.InterfaceSpec{{Bridge: "br0", MAC: "52:54:00:AA:BB:CC"}},
				Graphics:   virt.GraphicsSpec{Type: virt.GraphicsSpice, Listen: "0.0.0.0"},
				Autostart:  true,
			},
			sources: []diskSource{
				{Path: "/dev/vg0/root", Format: virt.FormatRaw, Block: true},
				{Path: "/dev/sdb", Format: virt.FormatRaw, Block: true},
			},
		},
	}
}

// expectedReadBack is what specFromDomain must return for a defaulted spec:
// the same, with formats resolved and without what lives outside the XML.
func expectedReadBack(spec virt.MachineSpec, sources []diskSource) virt.MachineSpec {
	want := spec.WithDefaults()
	for i := range want.Disks {
		if want.Disks[i].Format == "" {
			want.Disks[i].Format = sources[i].Format
		}
	}
	want.Autostart = false
	return want
}

func TestDomainFromSpecGolden(t *testing.T) {
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec.WithDefaults()
			if err := spec.Validate(); err != nil {
				t.Fatalf("test spec is invalid: %v", err)
			}
			out, err := domainFromSpec(spec, tc.sources).Marshal()
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			checkGolden(t, "domain-"+tc.name+".xml", []byte(out+"\n"))

			var dom libvirtxml.Domain
			if err := dom.Unmarshal(out); err != nil {
				t.Fatalf("unmarshal rendered XML: %v", err)
			}
			got, err := specFromDomain(&dom)
			if err != nil {
				t.Fatalf("specFromDomain: %v", err)
			}
			if want := expectedReadBack(tc.spec, tc.sources); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip drifted:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// testdata/libvirt-defined-full.xml is the "full" golden spec as libvirt
// 9.0 stores it after define, captured by TestCaptureLibvirtDomainXML: with
// controllers, PCI addresses, the serial port's console twin, input devices,
// a CPU model and KiB units that the spec never mentions.
func TestSpecFromLibvirtDefinedXML(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "libvirt-defined-full.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(string(raw)); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	for _, added := range []string{"<controller", "<address", "<console", "<input", "unit='KiB'"} {
		if !strings.Contains(string(raw), added) {
			t.Errorf("captured XML lacks %s: not what libvirt returns", added)
		}
	}
	got, err := specFromDomain(&dom)
	if err != nil {
		t.Fatalf("specFromDomain: %v", err)
	}
	want := goldenMachineSpec(goldenName, goldenUUID, goldenPool, goldenPoolDir, goldenWorkDir).WithDefaults()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spec from libvirt's XML:\n got %+v\nwant %+v", got, want)
	}
}

func TestSpecFromDomainForeign(t *testing.T) {
	for _, tc := range []struct {
		name  string
		xml   string
		check func(t *testing.T, s virt.MachineSpec)
	}{
		{
			name: "stale volume metadata reports the path",
			xml: `<domain type='kvm'><name>x</name><memory>1048576</memory><vcpu>1</vcpu>
<metadata><v:machine xmlns:v="` + machineMetadataNS + `"><v:disk target="vda" source="/old" volume_key="/old"/></v:machine>
<other:thing xmlns:other="urn:other"><disk target="vda"/></other:thing></metadata>
<devices><disk type='file' device='disk'><source file='/new'/><target dev='vda' bus='virtio'/></disk></devices></domain>`,
			check: func(t *testing.T, s virt.MachineSpec) {
				if d := s.Disks[0]; d.Path != "/new" || d.VolumeKey != "" {
					t.Errorf("disk = %+v, want path /new and no volume key", d)
				}
			},
		},
		{
			name: "volume source and loader",
			xml: `<domain type='kvm'><name>x</name><memory unit='GiB'>2</memory><vcpu>1</vcpu>
<os><type>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader></os>
<devices><disk type='volume' device='disk'><source pool='p' volume='v'/><target dev='vda' bus='virtio'/></disk>
<interface type='direct'><source dev='eth0' mode='bridge'/></interface></devices></domain>`,
			check: func(t *testing.T, s virt.MachineSpec) {
				if d := s.Disks[0]; d.Pool != "p" || d.Volume != "v" {
					t.Errorf("disk = %+v, want pool p volume v", d)
				}
				if s.MemoryMiB != 2048 || s.MaxMemoryMiB != 2048 {
					t.Errorf("memory = %d/%d MiB, want 2048", s.MemoryMiB, s.MaxMemoryMiB)
				}
				if s.Firmware != virt.FirmwareEFI {
					t.Errorf("firmware = %q, want efi", s.Firmware)
				}
				if s.Interfaces[0].Type != "direct" {
					t.Errorf("interface type = %q, want direct", s.Interfaces[0].Type)
				}
				if s.Balloon {
					t.Error("no <memballoon> read back as a balloon")
				}
			},
		},
		{
			name: "live XML carries tap names",
			xml: `<domain type='qemu' id='3'><name>x</name><memory>524288</memory><currentMemory>262144</currentMemory><vcpu current='2'>4</vcpu>
<devices><interface type='network'><mac address='52:54:00:AB:00:01'/><source network='default' portid='x' bridge='virbr0'/><target dev='vnet7'/><model type='virtio'/></interface>
<graphics type='vnc' port='5900' autoport='yes' listen='0.0.0.0'/></devices></domain>`,
			check: func(t *testing.T, s virt.MachineSpec) {
				want := virt.InterfaceSpec{Type: virt.InterfaceNetwork, Network: "default", Model: "virtio", MAC: "52:54:00:ab:00:01", Device: "vnet7"}
				if s.Interfaces[0] != want {
					t.Errorf("interface = %+v, want %+v", s.Interfaces[0], want)
				}
				if s.VCPU != 2 || s.MaxVCPU != 4 || s.MemoryMiB != 256 || s.MaxMemoryMiB != 512 {
					t.Errorf("vcpu %d/%d memory %d/%d", s.VCPU, s.MaxVCPU, s.MemoryMiB, s.MaxMemoryMiB)
				}
				if s.Graphics != (virt.GraphicsSpec{Type: virt.GraphicsVNC, Listen: "0.0.0.0"}) {
					t.Errorf("graphics = %+v", s.Graphics)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dom libvirtxml.Domain
			if err := dom.Unmarshal(tc.xml); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			s, err := specFromDomain(&dom)
			if err != nil {
				t.Fatalf("specFromDomain: %v", err)
			}
			tc.check(t, s)
		})
	}
}

func TestSpecFromDomainErrors(t *testing.T) {
	for name, x := range map[string]string{
		"memory unit":  `<domain type='kvm'><name>x</name><memory unit='parsecs'>1</memory></domain>`,
		"bad metadata": `<domain type='kvm'><name>x</name><metadata><v:machine xmlns:v="` + machineMetadataNS + `"><v:disk target="vda"></v:machine></metadata></domain>`,
	} {
		t.Run(name, func(t *testing.T) {
			var dom libvirtxml.Domain
			if err := dom.Unmarshal(x); err != nil {
				return // rejected earlier is fine too
			}
			if _, err := specFromDomain(&dom); err == nil {
				t.Fatal("specFromDomain accepted it")
			}
		})
	}
}
