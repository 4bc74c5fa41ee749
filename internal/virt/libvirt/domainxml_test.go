package libvirt

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
			{Path: filepath.Join(workDir, "drivers.img"), Format: virt.FormatRaw, Device: virt.DeviceFloppy},
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
				{Path: golden.Disks[4].Path, Format: virt.FormatRaw},
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
		{
			// An install from media: the blank disk boots first, then the
			// CD-ROMs in order (the installer ISO, a seed); a floppy never.
			name: "installer",
			spec: virt.MachineSpec{
				Name: "install",
				Disks: []virt.DiskSpec{
					{Path: "/var/lib/libvirt/images/install.qcow2", Format: virt.FormatQCOW2},
					{Path: "/var/lib/libvirt/images/installer.iso", Format: virt.FormatRaw, Device: virt.DeviceCDROM, Bus: virt.BusSCSI},
					{Path: "/var/lib/libvirt/images/seed.iso", Format: virt.FormatRaw, Device: virt.DeviceCDROM, Bus: virt.BusSCSI},
					{Path: "/var/lib/libvirt/images/drivers.img", Format: virt.FormatRaw, Device: virt.DeviceFloppy},
				},
				Interfaces: []virt.InterfaceSpec{{}},
			},
			sources: []diskSource{
				{Path: "/var/lib/libvirt/images/install.qcow2", Format: virt.FormatQCOW2},
				{Path: "/var/lib/libvirt/images/installer.iso", Format: virt.FormatRaw},
				{Path: "/var/lib/libvirt/images/seed.iso", Format: virt.FormatRaw},
				{Path: "/var/lib/libvirt/images/drivers.img", Format: virt.FormatRaw},
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
				if !reflect.DeepEqual(s.Interfaces[0], want) {
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

// goldenLive is the machine of testdata/libvirt-live.xml, captured by
// TestMachineAddresses under -update.
func goldenLive() virt.MachineSpec {
	return goldenLiveSpec(goldenName, goldenUUID, goldenWorkDir, goldenLiveNetwork, goldenLiveKernel,
		[3]string{goldenMACNet, goldenMACUser, goldenMACBridge}).WithDefaults()
}

func readGoldenDomain(t *testing.T, name string) *libvirtxml.Domain {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(string(raw)); err != nil {
		t.Fatalf("unmarshal %s: %v", name, err)
	}
	return &dom
}

// The running machine's definition, as libvirt 9.0 reports it, reads back
// as the spec it was defined from: aliases, PCI addresses, the network's
// bridge and port, the agent socket, the qcow2 backing chain, CPU features
// and the security label stay out; only the tap names come in.
func TestSpecFromLibvirtLiveXML(t *testing.T) {
	live := readGoldenDomain(t, "libvirt-live.xml")
	inactive := readGoldenDomain(t, "libvirt-live-inactive.xml")
	for _, added := range []string{"<alias", "portid=", "<backingStore", "state='disconnected'", "<seclabel", "vnet1"} {
		if raw, _ := os.ReadFile(filepath.Join("testdata", "libvirt-live.xml")); !strings.Contains(string(raw), added) {
			t.Errorf("captured live XML lacks %s: not what libvirt returns", added)
		}
	}
	want := goldenLive()
	got, err := specFromDomain(inactive)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spec from the persistent XML:\n got %+v\nwant %+v", got, want)
	}
	got, err = specFromDomain(live)
	if err != nil {
		t.Fatal(err)
	}
	want.Interfaces[0].Device, want.Interfaces[2].Device = "vnet0", "vnet1"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spec from the live XML:\n got %+v\nwant %+v", got, want)
	}

	r := &domainRead{spec: want, inactive: inactive, live: live}
	if p := pendingRestart(r); p != nil {
		t.Errorf("pendingRestart of an unchanged running machine = %v", p)
	}
	if agentConnected(live) {
		t.Error("agent reported connected; the channel says disconnected")
	}
	if diskAlias(live, 1) != "virtio-disk1" || interfaceAlias(live, 2) != "net2" || !hasAlias(live, "net1") || hasAlias(live, "net3") {
		t.Error("aliases not found where the live XML has them")
	}
}

// What the persistent definition has and the running machine not: only
// what a restart applies is pending.
func TestPendingRestart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*libvirtxml.Domain)
		want   []string
	}{
		{"nothing", func(*libvirtxml.Domain) {}, nil},
		{"cmdline", func(d *libvirtxml.Domain) { d.OS.Cmdline = "console=ttyS0 quiet" }, []string{"boot.cmdline"}},
		{"memory within max: live", func(d *libvirtxml.Domain) { d.CurrentMemory.Value = 393216 }, nil},
		{"max memory and model", func(d *libvirtxml.Domain) {
			d.Memory.Value = 1048576
			d.Devices.Interfaces[0].Model.Type = "e1000"
		}, []string{"max_memory", "interfaces[0].model"}},
		{"a disk gone: live", func(d *libvirtxml.Domain) { d.Devices.Disks = d.Devices.Disks[:1] }, nil},
		{"type", func(d *libvirtxml.Domain) { d.Type = "kvm" }, []string{"type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inactive := readGoldenDomain(t, "libvirt-live-inactive.xml")
			tc.modify(inactive)
			r := &domainRead{inactive: inactive, live: readGoldenDomain(t, "libvirt-live.xml")}
			if got := pendingRestart(r); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("pendingRestart = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAgentConnected(t *testing.T) {
	live := readGoldenDomain(t, "libvirt-live.xml")
	live.Devices.Channels[0].Target.VirtIO.State = "connected"
	if !agentConnected(live) {
		t.Error("a connected agent channel not seen")
	}
	if agentConnected(nil) {
		t.Error("a stopped machine has no agent")
	}
}

// Devices to hot-plug come out of the persistent definition: with its PCI
// slot, or without one for the running domain to choose.
func TestHotplugXML(t *testing.T) {
	def := readGoldenDomain(t, "libvirt-live-inactive.xml")
	for _, tc := range []struct {
		name   string
		render func(bool) (string, error)
		want   []string
	}{
		{"disk", func(a bool) (string, error) { return hotplugDiskXML(def, 1, a) },
			[]string{`<disk type="file" device="disk">`, `<target dev="vdb" bus="virtio">`, `<readonly>`}},
		{"interface", func(a bool) (string, error) { return hotplugInterfaceXML(def, 2, a) },
			[]string{`<interface type="bridge">`, `<mac address="` + goldenMACBridge + `">`, `<source bridge="lxcbr0">`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			with, err := tc.render(true)
			if err != nil {
				t.Fatal(err)
			}
			without, err := tc.render(false)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(with, w) || !strings.Contains(without, w) {
					t.Errorf("device XML lacks %s:\n%s", w, with)
				}
			}
			if !strings.Contains(with, `<address type="pci"`) || strings.Contains(without, "<address") {
				t.Errorf("address kept or dropped wrongly:\n%s\n%s", with, without)
			}
		})
	}
	if def.Devices.Disks[1].Address == nil {
		t.Fatal("rendering for hot-plug changed the definition it came from")
	}
}

// A redefinition keeps the slots of the disks and NICs that stay.
func TestKeepDeviceAddresses(t *testing.T) {
	old := readGoldenDomain(t, "libvirt-live-inactive.xml")
	spec := goldenLive()
	// The user-mode NIC goes; the others keep their slots, although they
	// would now be numbered differently.
	spec.Interfaces = []virt.InterfaceSpec{spec.Interfaces[0], spec.Interfaces[2]}
	dst := domainFromSpec(spec, nil)
	keepDeviceAddresses(dst, old)
	for i, want := range []*libvirtxml.DomainAddress{old.Devices.Disks[0].Address, old.Devices.Disks[1].Address} {
		if !reflect.DeepEqual(dst.Devices.Disks[i].Address, want) {
			t.Errorf("disk %d address %+v, want %+v", i, dst.Devices.Disks[i].Address, want)
		}
	}
	for i, j := range []int{0, 2} {
		if !reflect.DeepEqual(dst.Devices.Interfaces[i].Address, old.Devices.Interfaces[j].Address) {
			t.Errorf("NIC %d address %+v, want that of old NIC %d", i, dst.Devices.Interfaces[i].Address, j)
		}
	}
	// A new NIC gets none: libvirt picks.
	spec.Interfaces = append(spec.Interfaces, virt.InterfaceSpec{Type: virt.InterfaceUser, MAC: "52:54:00:00:00:99"})
	dst = domainFromSpec(spec.WithDefaults(), nil)
	keepDeviceAddresses(dst, old)
	if dst.Devices.Interfaces[2].Address != nil {
		t.Errorf("a new NIC got address %+v", dst.Devices.Interfaces[2].Address)
	}
}

// libvirt groups a definition's disks by bus; the metadata brings the
// spec's order back. Without complete metadata libvirt's order stays, with
// the boot disk first.
func TestDiskOrder(t *testing.T) {
	spec := virt.MachineSpec{Name: "m", Disks: []virt.DiskSpec{
		{Path: "/a", Format: virt.FormatRaw},
		{Path: "/b", Format: virt.FormatRaw, Bus: virt.BusSATA},
		{Path: "/c", Format: virt.FormatRaw},
	}}.WithDefaults()
	libvirtOrder := func(dom *libvirtxml.Domain, order ...int) {
		d := dom.Devices.Disks
		dom.Devices.Disks = nil
		for _, i := range order {
			dom.Devices.Disks = append(dom.Devices.Disks, d[i])
		}
	}
	dom := domainFromSpec(spec, nil)
	libvirtOrder(dom, 0, 2, 1) // vda, vdb, sda: as libvirt stores it
	got, err := specFromDomain(dom)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Disks, spec.Disks) {
		t.Fatalf("disks read back %+v, want the spec's order %+v", got.Disks, spec.Disks)
	}

	// The boot disk somewhere else, metadata stale: boot disk first.
	dom = domainFromSpec(spec, nil)
	libvirtOrder(dom, 2, 1, 0)
	dom.Devices.Disks[1].Source.File.File = "/edited"
	got, err = specFromDomain(dom)
	if err != nil {
		t.Fatal(err)
	}
	if paths := []string{got.Disks[0].Path, got.Disks[1].Path, got.Disks[2].Path}; !slices.Equal(paths, []string{"/a", "/c", "/edited"}) {
		t.Fatalf("disks read back in order %v, want the boot disk first, then libvirt's order", paths)
	}
}
