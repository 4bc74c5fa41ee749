package virt

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestMachineWithDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   MachineSpec
		want MachineSpec
	}{
		{
			name: "empty",
			in:   MachineSpec{Name: "m"},
			want: MachineSpec{
				Name: "m", Type: DomainKVM, VCPU: 1, MaxVCPU: 1, MemoryMiB: 512, MaxMemoryMiB: 512,
				Firmware: FirmwareBIOS, Console: ConsoleSpec{Type: ConsolePTY}, Graphics: GraphicsSpec{Type: GraphicsNone},
			},
		},
		{
			name: "ceilings follow the boot values",
			in:   MachineSpec{Name: "m", VCPU: 4, MemoryMiB: 2048},
			want: MachineSpec{
				Name: "m", Type: DomainKVM, VCPU: 4, MaxVCPU: 4, MemoryMiB: 2048, MaxMemoryMiB: 2048,
				Firmware: FirmwareBIOS, Console: ConsoleSpec{Type: ConsolePTY}, Graphics: GraphicsSpec{Type: GraphicsNone},
			},
		},
		{
			name: "explicit values kept",
			in: MachineSpec{
				Name: "m", Type: DomainQEMU, VCPU: 2, MaxVCPU: 8, MemoryMiB: 256, MaxMemoryMiB: 1024,
				Firmware: FirmwareEFI, Console: ConsoleSpec{Type: ConsoleFile, Path: "/var/log/m.log"},
				Graphics:  GraphicsSpec{Type: GraphicsVNC, Listen: "0.0.0.0"},
				QemuAgent: true, RNG: true, Balloon: true, Autostart: true,
			},
			want: MachineSpec{
				Name: "m", Type: DomainQEMU, VCPU: 2, MaxVCPU: 8, MemoryMiB: 256, MaxMemoryMiB: 1024,
				Firmware: FirmwareEFI, Console: ConsoleSpec{Type: ConsoleFile, Path: "/var/log/m.log"},
				Graphics:  GraphicsSpec{Type: GraphicsVNC, Listen: "0.0.0.0"},
				QemuAgent: true, RNG: true, Balloon: true, Autostart: true,
			},
		},
		{
			name: "uuid canonical",
			in:   MachineSpec{Name: "m", UUID: "6F1E3F5E8F0A4C579A331F6F1B3A2C4D"},
			want: MachineSpec{
				Name: "m", UUID: "6f1e3f5e-8f0a-4c57-9a33-1f6f1b3a2c4d", Type: DomainKVM, VCPU: 1, MaxVCPU: 1, MemoryMiB: 512, MaxMemoryMiB: 512,
				Firmware: FirmwareBIOS, Console: ConsoleSpec{Type: ConsolePTY}, Graphics: GraphicsSpec{Type: GraphicsNone},
			},
		},
		{
			name: "console path implies a file console, spice listens locally",
			in:   MachineSpec{Name: "m", Console: ConsoleSpec{Path: "/tmp/c.log"}, Graphics: GraphicsSpec{Type: GraphicsSpice}},
			want: MachineSpec{
				Name: "m", Type: DomainKVM, VCPU: 1, MaxVCPU: 1, MemoryMiB: 512, MaxMemoryMiB: 512,
				Firmware: FirmwareBIOS, Console: ConsoleSpec{Type: ConsoleFile, Path: "/tmp/c.log"},
				Graphics: GraphicsSpec{Type: GraphicsSpice, Listen: DefaultListen},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.WithDefaults()
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("WithDefaults:\n got %+v\nwant %+v", got, tc.want)
			}
			if again := got.WithDefaults(); !reflect.DeepEqual(again, got) {
				t.Fatalf("WithDefaults is not idempotent:\n once %+v\ntwice %+v", got, again)
			}
		})
	}
}

func TestMachineWithDefaultsDisks(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []DiskSpec
		want []DiskSpec
	}{
		{
			name: "virtio disks numbered in order",
			in:   []DiskSpec{{Path: "/a"}, {Path: "/b"}, {Path: "/c"}},
			want: []DiskSpec{
				{Path: "/a", Bus: BusVirtio, Device: DeviceDisk, Target: "vda"},
				{Path: "/b", Bus: BusVirtio, Device: DeviceDisk, Target: "vdb"},
				{Path: "/c", Bus: BusVirtio, Device: DeviceDisk, Target: "vdc"},
			},
		},
		{
			name: "cdrom on sata, read-only; sata and scsi share sd*",
			in:   []DiskSpec{{Path: "/a"}, {Path: "/iso", Device: DeviceCDROM}, {Path: "/s", Bus: BusSCSI}, {Path: "/h", Bus: BusIDE}},
			want: []DiskSpec{
				{Path: "/a", Bus: BusVirtio, Device: DeviceDisk, Target: "vda"},
				{Path: "/iso", Bus: BusSATA, Device: DeviceCDROM, ReadOnly: true, Target: "sda"},
				{Path: "/s", Bus: BusSCSI, Device: DeviceDisk, Target: "sdb"},
				{Path: "/h", Bus: BusIDE, Device: DeviceDisk, Target: "hda"},
			},
		},
		{
			name: "explicit targets are skipped, even when later in the list",
			in:   []DiskSpec{{Path: "/a"}, {Path: "/b", Target: "vda"}, {Path: "/c"}},
			want: []DiskSpec{
				{Path: "/a", Bus: BusVirtio, Device: DeviceDisk, Target: "vdb"},
				{Path: "/b", Bus: BusVirtio, Device: DeviceDisk, Target: "vda"},
				{Path: "/c", Bus: BusVirtio, Device: DeviceDisk, Target: "vdc"},
			},
		},
		{
			name: "unknown bus gets no target (Validate reports the bus)",
			in:   []DiskSpec{{Path: "/a", Bus: "floppy"}},
			want: []DiskSpec{{Path: "/a", Bus: "floppy", Device: DeviceDisk}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got := MachineSpec{Disks: tc.in}.WithDefaults().Disks
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("disks:\n got %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(in, tc.in) {
				t.Fatalf("WithDefaults changed the caller's slice: %+v", tc.in)
			}
		})
	}
}

func TestDiskSuffix(t *testing.T) {
	for i, want := range map[int]string{0: "a", 1: "b", 25: "z", 26: "aa", 27: "ab", 51: "az", 52: "ba", 701: "zz", 702: "aaa"} {
		if got := diskSuffix(i); got != want {
			t.Errorf("diskSuffix(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestMachineWithDefaultsInterfaces(t *testing.T) {
	got := MachineSpec{Interfaces: []InterfaceSpec{
		{},
		{Network: "lan"},
		{Bridge: "br0", MAC: "52:54:00:AB:CD:EF"},
		{Type: InterfaceUser, Model: "e1000"},
	}}.WithDefaults().Interfaces
	want := []InterfaceSpec{
		{Type: InterfaceNetwork, Network: DefaultNetwork, Model: "virtio"},
		{Type: InterfaceNetwork, Network: "lan", Model: "virtio"},
		{Type: InterfaceBridge, Bridge: "br0", Model: "virtio", MAC: "52:54:00:ab:cd:ef"},
		{Type: InterfaceUser, Model: "e1000"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("interfaces:\n got %+v\nwant %+v", got, want)
	}
}

func TestMachineValidate(t *testing.T) {
	valid := func() MachineSpec {
		return MachineSpec{
			Name:       "vm-1",
			Disks:      []DiskSpec{{VolumeKey: "/var/lib/libvirt/images/a.qcow2"}},
			Interfaces: []InterfaceSpec{{}},
		}
	}
	for _, tc := range []struct {
		name   string
		modify func(*MachineSpec)
		fields []string // every field that must be reported, in order
	}{
		{"valid", func(*MachineSpec) {}, nil},
		{"valid full", func(s *MachineSpec) {
			s.UUID = "6f1e3f5e-8f0a-4c57-9a33-1f6f1b3a2c4d"
			s.Type, s.VCPU, s.MaxVCPU, s.MemoryMiB, s.MaxMemoryMiB = DomainQEMU, 2, 4, 16, 4096
			s.Balloon = true
			s.Firmware = FirmwareEFI
			s.Boot = &DirectBoot{Kernel: "/boot/vmlinuz", Initrd: "/boot/initrd", Cmdline: "console=ttyS0"}
			s.Disks = append(s.Disks,
				DiskSpec{Pool: "default", Volume: "data", Format: FormatRaw, Bus: BusSCSI},
				DiskSpec{Path: "/iso/x.iso", Device: DeviceCDROM, Bus: BusIDE},
				DiskSpec{Path: "/dev/sdz", Target: "vdz"})
			s.Interfaces = append(s.Interfaces,
				InterfaceSpec{Type: InterfaceBridge, Bridge: "br0", MAC: "52:54:00:12:34:56"},
				InterfaceSpec{Type: InterfaceUser, Model: "e1000"})
			s.Console = ConsoleSpec{Type: ConsoleFile, Path: "/var/log/vm.log"}
			s.Graphics = GraphicsSpec{Type: GraphicsSpice, Listen: "::1"}
		}, nil},
		{"name empty", func(s *MachineSpec) { s.Name = "" }, []string{"name"}},
		{"name with slash", func(s *MachineSpec) { s.Name = "a/b" }, []string{"name"}},
		{"name with space", func(s *MachineSpec) { s.Name = "a b" }, []string{"name"}},
		{"name leading dot", func(s *MachineSpec) { s.Name = ".vm" }, []string{"name"}},
		{"name too long", func(s *MachineSpec) { s.Name = strings.Repeat("a", 65) }, []string{"name"}},
		{"uuid", func(s *MachineSpec) { s.UUID = "not-a-uuid" }, []string{"uuid"}},
		{"type", func(s *MachineSpec) { s.Type = "xen" }, []string{"type"}},
		{"vcpu above max", func(s *MachineSpec) { s.VCPU, s.MaxVCPU = 4, 2 }, []string{"vcpu"}},
		{"memory too small", func(s *MachineSpec) { s.MemoryMiB = 8 }, []string{"memory"}},
		{"memory above max", func(s *MachineSpec) { s.MemoryMiB, s.MaxMemoryMiB = 1024, 512 }, []string{"max_memory"}},
		{"memory below max without balloon", func(s *MachineSpec) { s.MemoryMiB, s.MaxMemoryMiB = 512, 1024 }, []string{"max_memory"}},
		{"firmware", func(s *MachineSpec) { s.Firmware = "uboot" }, []string{"firmware"}},
		{"boot without kernel", func(s *MachineSpec) { s.Boot = &DirectBoot{Initrd: "/boot/initrd"} }, []string{"boot.kernel"}},
		{"boot relative paths", func(s *MachineSpec) { s.Boot = &DirectBoot{Kernel: "vmlinuz", Initrd: "initrd"} }, []string{"boot.kernel", "boot.initrd"}},
		{"disk without source", func(s *MachineSpec) { s.Disks = []DiskSpec{{}} }, []string{"disks[0]"}},
		{"disk with two sources", func(s *MachineSpec) { s.Disks[0].Path = "/x" }, []string{"disks[0]"}},
		{"disk pool without volume", func(s *MachineSpec) { s.Disks = []DiskSpec{{Pool: "default"}} }, []string{"disks[0].volume"}},
		{"disk volume without pool", func(s *MachineSpec) { s.Disks = []DiskSpec{{Volume: "v"}} }, []string{"disks[0].pool"}},
		{"disk relative path", func(s *MachineSpec) { s.Disks = []DiskSpec{{Path: "disk.img"}} }, []string{"disks[0].path"}},
		{"disk format", func(s *MachineSpec) { s.Disks[0].Format = "vmdk" }, []string{"disks[0].format"}},
		{"disk bus", func(s *MachineSpec) { s.Disks = append(s.Disks, DiskSpec{Path: "/x", Bus: "usb"}) }, []string{"disks[1].bus"}},
		{"disk device", func(s *MachineSpec) { s.Disks[0].Device = "tape" }, []string{"disks[0].device"}},
		{"floppy on virtio", func(s *MachineSpec) { s.Disks[0].Device, s.Disks[0].Bus = DeviceFloppy, BusVirtio }, []string{"disks[0].bus"}},
		{"disk on fdc", func(s *MachineSpec) { s.Disks[0].Bus = BusFDC }, []string{"disks[0].bus"}},
		{"third floppy", func(s *MachineSpec) {
			for range 3 {
				s.Disks = append(s.Disks, DiskSpec{Path: "/f.img", Device: DeviceFloppy})
			}
		}, []string{"disks[3].target"}},
		{"cdrom on virtio", func(s *MachineSpec) { s.Disks[0].Device, s.Disks[0].Bus = DeviceCDROM, BusVirtio }, []string{"disks[0].bus"}},
		{"target syntax", func(s *MachineSpec) { s.Disks[0].Target = "xvda" }, []string{"disks[0].target"}},
		{"target of another bus", func(s *MachineSpec) { s.Disks[0].Target = "sda" }, []string{"disks[0].target"}},
		{"duplicate targets", func(s *MachineSpec) {
			s.Disks = []DiskSpec{{Path: "/a", Target: "vdb"}, {Path: "/b", Target: "vdb"}}
		}, []string{"disks[1].target"}},
		{"mac syntax", func(s *MachineSpec) { s.Interfaces[0].MAC = "52:54:00:12:34" }, []string{"interfaces[0].mac"}},
		{"mac multicast", func(s *MachineSpec) { s.Interfaces[0].MAC = "01:00:5e:00:00:01" }, []string{"interfaces[0].mac"}},
		{"mac duplicate", func(s *MachineSpec) {
			s.Interfaces = []InterfaceSpec{{MAC: "52:54:00:00:00:01"}, {MAC: "52:54:00:00:00:01"}}
		}, []string{"interfaces[1].mac"}},
		{"interface type", func(s *MachineSpec) { s.Interfaces[0].Type = "direct" }, []string{"interfaces[0].type"}},
		{"interface model", func(s *MachineSpec) { s.Interfaces[0].Model = "ne2k_isa" }, []string{"interfaces[0].model"}},
		{"interface model in capitals", func(s *MachineSpec) { s.Interfaces[0].Model = "VirtIO" }, []string{"interfaces[0].model"}},
		{"network with bridge", func(s *MachineSpec) {
			s.Interfaces[0] = InterfaceSpec{Type: InterfaceNetwork, Bridge: "br0"}
		}, []string{"interfaces[0].bridge"}},
		{"bridge without bridge", func(s *MachineSpec) { s.Interfaces[0].Type = InterfaceBridge }, []string{"interfaces[0].bridge"}},
		{"bridge with network", func(s *MachineSpec) {
			s.Interfaces[0] = InterfaceSpec{Type: InterfaceBridge, Bridge: "br0", Network: "default"}
		}, []string{"interfaces[0].network"}},
		{"user with network", func(s *MachineSpec) {
			s.Interfaces[0] = InterfaceSpec{Type: InterfaceUser, Network: "default", Bridge: "br0"}
		}, []string{"interfaces[0].network", "interfaces[0].bridge"}},
		{"console file relative", func(s *MachineSpec) { s.Console = ConsoleSpec{Type: ConsoleFile, Path: "c.log"} }, []string{"console.path"}},
		{"console file without path", func(s *MachineSpec) { s.Console = ConsoleSpec{Type: ConsoleFile} }, []string{"console.path"}},
		{"console pty with path", func(s *MachineSpec) { s.Console = ConsoleSpec{Type: ConsolePTY, Path: "/x"} }, []string{"console.path"}},
		{"console type", func(s *MachineSpec) { s.Console.Type = "tcp" }, []string{"console.type"}},
		{"graphics type", func(s *MachineSpec) { s.Graphics.Type = "sdl" }, []string{"graphics.type"}},
		{"graphics listen", func(s *MachineSpec) { s.Graphics = GraphicsSpec{Type: GraphicsVNC, Listen: "localhost"} }, []string{"graphics.listen"}},
		{"graphics none listens", func(s *MachineSpec) { s.Graphics.Listen = "127.0.0.1" }, []string{"graphics.listen"}},
		{"every problem at once", func(s *MachineSpec) {
			s.Name, s.VCPU, s.MaxVCPU = "", 3, 2
			s.Disks = append(s.Disks, DiskSpec{Path: "/x", Bus: "usb"})
			s.Interfaces[0].MAC = "ff:ff:ff:ff:ff:ff"
		}, []string{"name", "vcpu", "disks[1].bus", "interfaces[0].mac"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.modify(&s)
			err := s.Validate()
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var errs SpecErrors
			if !errors.As(err, &errs) {
				t.Fatalf("Validate = %v, want SpecErrors for %v", err, tc.fields)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields = %v, want %v (%v)", got, tc.fields, err)
			}
			var one *SpecError
			if !errors.As(err, &one) || one.Field != tc.fields[0] {
				t.Fatalf("errors.As(*SpecError) = %v, want field %s", one, tc.fields[0])
			}
		})
	}
}

// A NIC model outside the list says which models there are, and every one
// of them is accepted.
func TestMachineValidateInterfaceModels(t *testing.T) {
	s := MachineSpec{Name: "vm-1", Interfaces: []InterfaceSpec{{Model: "pcnet"}}}
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate accepted model pcnet")
	}
	for _, m := range InterfaceModels {
		if !strings.Contains(err.Error(), `"`+m+`"`) {
			t.Errorf("error does not offer %s: %v", m, err)
		}
	}
	for _, m := range InterfaceModels {
		s.Interfaces[0].Model = m
		if err := s.Validate(); err != nil {
			t.Errorf("Validate with model %s: %v", m, err)
		}
	}
}
