package virt

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

// updateBase is a machine as read back: defaults applied, UUID, MACs and
// targets assigned by the host.
func updateBase() MachineSpec {
	return MachineSpec{
		Name: "vm", UUID: "6f1e3f5e-8f0a-4c57-9a33-1f6f1b3a2c4d", Type: DomainQEMU,
		VCPU: 1, MaxVCPU: 2, MemoryMiB: 256, MaxMemoryMiB: 512, Balloon: true,
		Boot: &DirectBoot{Kernel: "/k", Initrd: "/i", Cmdline: "console=ttyS0"},
		Disks: []DiskSpec{
			{Path: "/root.qcow2", Format: FormatQCOW2},
			{VolumeKey: "/pool/data.qcow2", Format: FormatQCOW2},
		},
		Interfaces: []InterfaceSpec{
			{Type: InterfaceUser, MAC: "52:54:00:00:00:01"},
			{Network: "lan", MAC: "52:54:00:00:00:02"},
		},
		Console: ConsoleSpec{Type: ConsoleFile, Path: "/log/console.log"},
	}.WithDefaults()
}

// asUser is what a front end passes: the user's values, nothing the host
// assigned (no UUID, no MACs, no targets).
func asUser(s MachineSpec) MachineSpec {
	s.UUID = ""
	s.Disks = slices.Clone(s.Disks)
	for i := range s.Disks {
		s.Disks[i].Target = ""
	}
	s.Interfaces = slices.Clone(s.Interfaces)
	for i := range s.Interfaces {
		s.Interfaces[i].MAC = ""
	}
	if s.Boot != nil {
		b := *s.Boot
		s.Boot = &b
	}
	return s
}

func TestPlanMachineUpdate(t *testing.T) {
	type change struct {
		field string
		class UpdateClass
	}
	live := func(f string) change { return change{f, UpdateLive} }
	next := func(f string) change { return change{f, UpdateNextBoot} }
	repl := func(f string) change { return change{f, UpdateReplace} }

	// What a spec that keeps the host-assigned values (MACs above all)
	// plans instead, where that differs.
	wantFull := map[string][]change{
		"nic moves to another network: a new nic": {next("interfaces[1].network")},
	}
	for _, tc := range []struct {
		name   string
		old    func(*MachineSpec)
		modify func(*MachineSpec)
		want   []change
	}{
		{"nothing", nil, func(*MachineSpec) {}, nil},
		{"rename", nil, func(s *MachineSpec) { s.Name = "vm2" }, []change{repl("name")}},
		{"uuid", nil, func(s *MachineSpec) { s.UUID = "00000000-0000-0000-0000-000000000001" }, []change{repl("uuid")}},
		{"type", nil, func(s *MachineSpec) { s.Type = DomainKVM }, []change{repl("type")}},
		{"firmware", nil, func(s *MachineSpec) { s.Firmware = FirmwareEFI }, []change{repl("firmware")}},
		{"description and autostart", nil, func(s *MachineSpec) { s.Description, s.Autostart = "d", true },
			[]change{live("description"), live("autostart")}},
		{"memory within max", nil, func(s *MachineSpec) { s.MemoryMiB = 384 }, []change{live("memory")}},
		{"memory down", nil, func(s *MachineSpec) { s.MemoryMiB = 128 }, []change{live("memory")}},
		{"memory up to max", nil, func(s *MachineSpec) { s.MemoryMiB = 512 }, []change{live("memory")}},
		{"memory above the running max", nil, func(s *MachineSpec) { s.MemoryMiB, s.MaxMemoryMiB = 768, 1024 },
			[]change{next("memory"), next("max_memory")}},
		{"memory without balloon", func(s *MachineSpec) { s.MaxMemoryMiB, s.Balloon = 256, false },
			func(s *MachineSpec) { s.MemoryMiB, s.MaxMemoryMiB = 200, 200 }, []change{next("memory"), next("max_memory")}},
		{"balloon added with memory", func(s *MachineSpec) { s.MaxMemoryMiB, s.Balloon = 256, false },
			func(s *MachineSpec) { s.MemoryMiB, s.Balloon = 200, true }, []change{next("memory"), next("balloon")}},
		{"max memory only", nil, func(s *MachineSpec) { s.MaxMemoryMiB = 1024 }, []change{next("max_memory")}},
		{"vcpu within max", nil, func(s *MachineSpec) { s.VCPU = 2 }, []change{live("vcpu")}},
		{"vcpu down", func(s *MachineSpec) { s.VCPU = 2 }, func(s *MachineSpec) { s.VCPU = 1 }, []change{next("vcpu")}},
		{"vcpu above max", nil, func(s *MachineSpec) { s.VCPU, s.MaxVCPU = 4, 4 }, []change{next("vcpu"), next("max_vcpu")}},
		{"cmdline", nil, func(s *MachineSpec) { s.Boot.Cmdline = "console=ttyS0 quiet" }, []change{next("boot.cmdline")}},
		{"kernel and initrd", nil, func(s *MachineSpec) { s.Boot.Kernel, s.Boot.Initrd = "/k2", "" },
			[]change{next("boot.kernel"), next("boot.initrd")}},
		{"boot dropped", nil, func(s *MachineSpec) { s.Boot = nil }, []change{next("boot")}},
		{"attach virtio disk", nil, func(s *MachineSpec) { s.Disks = append(s.Disks, DiskSpec{Path: "/d2.raw", Format: FormatRaw}) },
			[]change{live("disks[2]")}},
		{"detach data disk", nil, func(s *MachineSpec) { s.Disks = s.Disks[:1] }, []change{live("disks[1]")}},
		{"attach sata disk", nil, func(s *MachineSpec) {
			s.Disks = append(s.Disks, DiskSpec{Path: "/d2.raw", Format: FormatRaw, Bus: BusSATA})
		},
			[]change{next("disks[2]")}},
		{"attach cdrom", nil, func(s *MachineSpec) {
			s.Disks = append(s.Disks, DiskSpec{Path: "/seed.iso", Format: FormatRaw, Device: DeviceCDROM})
		},
			[]change{next("disks[2]")}},
		{"attach scsi disk without controller", nil, func(s *MachineSpec) {
			s.Disks = append(s.Disks, DiskSpec{Path: "/d2.raw", Format: FormatRaw, Bus: BusSCSI})
		}, []change{next("disks[2]")}},
		{"attach scsi disk beside another", func(s *MachineSpec) {
			s.Disks = append(s.Disks, DiskSpec{Path: "/s1.raw", Format: FormatRaw, Bus: BusSCSI, Target: "sda"})
		}, func(s *MachineSpec) {
			s.Disks = append(s.Disks, DiskSpec{Path: "/s2.raw", Format: FormatRaw, Bus: BusSCSI})
		}, []change{live("disks[3]")}},
		{"detach sata disk", func(s *MachineSpec) {
			s.Disks = append(s.Disks, DiskSpec{Path: "/s1.raw", Format: FormatRaw, Bus: BusSATA, Target: "sda"})
		}, func(s *MachineSpec) { s.Disks = s.Disks[:2] }, []change{next("disks[2]")}},
		{"boot disk replaced", nil, func(s *MachineSpec) { s.Disks[0] = DiskSpec{Path: "/other.qcow2", Format: FormatQCOW2} },
			[]change{next("disks[0]"), next("disks[0]")}},
		{"boot and data disk swap", nil, func(s *MachineSpec) { s.Disks[0], s.Disks[1] = s.Disks[1], s.Disks[0] },
			[]change{next("disks[0]")}},
		{"first data disk removed: the next keeps its target", func(s *MachineSpec) {
			s.Disks = append(s.Disks, DiskSpec{Path: "/d2.raw", Format: FormatRaw, Target: "vdc"})
		}, func(s *MachineSpec) { s.Disks = []DiskSpec{s.Disks[0], s.Disks[2]} }, []change{live("disks[1]")}},
		{"disk properties", nil, func(s *MachineSpec) { s.Disks[1].ReadOnly, s.Disks[1].Format = true, FormatRaw },
			[]change{next("disks[1].readonly"), next("disks[1].format")}},
		{"disk bus", nil, func(s *MachineSpec) { s.Disks[1].Bus, s.Disks[1].Target = BusSATA, "" },
			[]change{next("disks[1].bus"), next("disks[1].target")}},
		{"format left open", nil, func(s *MachineSpec) { s.Disks[1].Format = "" }, nil},
		{"attach nic", nil, func(s *MachineSpec) { s.Interfaces = append(s.Interfaces, InterfaceSpec{Bridge: "br0"}) },
			[]change{live("interfaces[2]")}},
		{"detach last nic", nil, func(s *MachineSpec) { s.Interfaces = s.Interfaces[:1] }, []change{live("interfaces[1]")}},
		{"nic model", nil, func(s *MachineSpec) { s.Interfaces[1].Model = "e1000" }, []change{next("interfaces[1].model")}},
		{"nic moves to another network: a new nic", nil, func(s *MachineSpec) { s.Interfaces[1].Network = "wan" },
			[]change{live("interfaces[1]"), live("interfaces[1]")}},
		{"console", nil, func(s *MachineSpec) { s.Console = ConsoleSpec{} }, []change{next("console.type"), next("console.path")}},
		{"graphics", nil, func(s *MachineSpec) { s.Graphics = GraphicsSpec{Type: GraphicsVNC} },
			[]change{next("graphics.type"), next("graphics.listen")}},
		{"agent and rng", nil, func(s *MachineSpec) { s.QemuAgent, s.RNG = true, true }, []change{next("qemu_agent"), next("rng")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := updateBase()
			if tc.old != nil {
				tc.old(&old)
				old = old.WithDefaults()
			}
			// Twice: once as the user writes it (host-assigned values
			// left open), once as a front end that kept them.
			for _, form := range []struct {
				name string
				spec MachineSpec
			}{{"user", asUser(old)}, {"full", old}} {
				newSpec := form.spec
				newSpec.Disks = slices.Clone(newSpec.Disks)
				newSpec.Interfaces = slices.Clone(newSpec.Interfaces)
				if newSpec.Boot != nil {
					b := *newSpec.Boot
					newSpec.Boot = &b
				}
				tc.modify(&newSpec)
				u, err := PlanMachineUpdate(old, newSpec)
				if err != nil {
					t.Fatalf("%s: PlanMachineUpdate: %v", form.name, err)
				}
				var got []change
				for _, c := range u.Changes {
					got = append(got, change{c.Field, c.Class})
					if c.Class != UpdateLive && c.Field != "" && c.Reason == "" && needsReason(c) {
						t.Errorf("%s: %s is %s without a reason", form.name, c.Field, c.Class)
					}
				}
				want := tc.want
				if w, ok := wantFull[tc.name]; ok && form.name == "full" {
					want = w
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: changes = %v, want %v", form.name, got, want)
				}
				if u.Spec.UUID != old.UUID && tc.name != "uuid" {
					t.Errorf("%s: UUID not kept: %q", form.name, u.Spec.UUID)
				}
			}
		})
	}
}

// needsReason: changes whose class depends on the values carry a reason.
func needsReason(c Change) bool {
	return c.Field == "memory" || c.Field == "vcpu" || c.Action != ChangeSet
}

// Host-assigned values are carried over to the spec to define, so that a
// plan from user input does not read unchanged NICs and disks as new.
func TestPlanMachineUpdateAdoptsIdentity(t *testing.T) {
	old := updateBase()
	old.Disks = append(old.Disks, DiskSpec{Path: "/d2.raw", Format: FormatRaw, Target: "vdc"})
	old = old.WithDefaults()

	in := asUser(old)
	// Drop the first data disk, add a NIC, and give the second NIC a MAC
	// of its own.
	in.Disks = []DiskSpec{in.Disks[0], in.Disks[2], {Path: "/d3.raw", Format: FormatRaw}}
	in.Interfaces[1].MAC = "52:54:00:00:00:99"
	in.Interfaces = append(in.Interfaces, InterfaceSpec{Type: InterfaceUser})

	u, err := PlanMachineUpdate(old, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{u.Spec.Disks[0].Target, u.Spec.Disks[1].Target, u.Spec.Disks[2].Target}; !slices.Equal(got, []string{"vda", "vdc", "vdb"}) {
		t.Errorf("targets = %v: the disk that stays keeps vdc, the new one takes the free vdb", got)
	}
	if got := []string{u.Spec.Interfaces[0].MAC, u.Spec.Interfaces[1].MAC, u.Spec.Interfaces[2].MAC}; !slices.Equal(got, []string{"52:54:00:00:00:01", "52:54:00:00:00:99", ""}) {
		t.Errorf("MACs = %v", got)
	}
	want := []Change{
		{Field: "disks[1]", Class: UpdateLive, Action: ChangeDetach, Old: 1, New: -1},
		{Field: "disks[2]", Class: UpdateLive, Action: ChangeAttach, Old: -1, New: 2},
		{Field: "interfaces[1]", Class: UpdateLive, Action: ChangeDetach, Old: 1, New: -1},
		{Field: "interfaces[1]", Class: UpdateLive, Action: ChangeAttach, Old: -1, New: 1},
		{Field: "interfaces[2]", Class: UpdateLive, Action: ChangeAttach, Old: -1, New: 2},
	}
	if !reflect.DeepEqual(u.Changes, want) {
		t.Errorf("changes:\n got %+v\nwant %+v", u.Changes, want)
	}
	if !u.Has(UpdateLive) || u.Has(UpdateNextBoot, UpdateReplace) || u.Empty() {
		t.Errorf("Has/Empty disagree with %+v", u.Changes)
	}

	// An explicit MAC elsewhere in the list is not adopted twice.
	in = asUser(old)
	in.Interfaces[1].MAC = old.Interfaces[0].MAC
	u, err = PlanMachineUpdate(old, in)
	if err != nil {
		t.Fatal(err)
	}
	if u.Spec.Interfaces[0].MAC != "" {
		t.Errorf("interfaces[0] adopted MAC %s that interfaces[1] claims", u.Spec.Interfaces[0].MAC)
	}
}

func TestPlanMachineUpdateFields(t *testing.T) {
	old := updateBase()
	in := asUser(old)
	in.Type, in.MemoryMiB, in.Boot.Cmdline, in.QemuAgent = DomainKVM, 300, "quiet", true
	u, err := PlanMachineUpdate(old, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		classes []UpdateClass
		want    []string
	}{
		{[]UpdateClass{UpdateReplace}, []string{"type"}},
		{[]UpdateClass{UpdateNextBoot}, []string{"boot.cmdline", "qemu_agent"}},
		{[]UpdateClass{UpdateLive}, []string{"memory"}},
		{[]UpdateClass{UpdateNextBoot, UpdateReplace}, []string{"type", "boot.cmdline", "qemu_agent"}},
	} {
		if got := u.Fields(tc.classes...); !slices.Equal(got, tc.want) {
			t.Errorf("Fields(%v) = %v, want %v", tc.classes, got, tc.want)
		}
	}
}

func TestPlanMachineUpdateInvalid(t *testing.T) {
	in := asUser(updateBase())
	in.VCPU = 3
	_, err := PlanMachineUpdate(updateBase(), in)
	var errs SpecErrors
	if !errors.As(err, &errs) || errs[0].Field != "vcpu" {
		t.Fatalf("PlanMachineUpdate = %v, want a SpecError on vcpu", err)
	}
}

func TestUpdateClassString(t *testing.T) {
	for c, want := range map[UpdateClass]string{UpdateLive: "live", UpdateNextBoot: "next-boot", UpdateReplace: "replace", 0: "UpdateClass(0)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(c), got, want)
		}
	}
}
