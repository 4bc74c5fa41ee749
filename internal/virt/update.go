package virt

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// UpdateClass says how a change to a machine reaches the guest.
type UpdateClass int

const (
	// UpdateLive changes are made to the running guest and to its persistent
	// definition at once; the guest keeps running.
	UpdateLive UpdateClass = iota + 1
	// UpdateNextBoot changes are written to the persistent definition only.
	// A running guest sees them once it is shut down and started again (a
	// reboot from inside the guest keeps the same QEMU process, and with it
	// the old definition).
	UpdateNextBoot
	// UpdateReplace changes cannot be made to an existing machine: it has
	// to be destroyed and created anew.
	UpdateReplace
)

func (c UpdateClass) String() string {
	switch c {
	case UpdateLive:
		return "live"
	case UpdateNextBoot:
		return "next-boot"
	case UpdateReplace:
		return "replace"
	}
	return fmt.Sprintf("UpdateClass(%d)", int(c))
}

// ChangeAction says what applying a change does.
type ChangeAction int

const (
	// ChangeSet gives a field a new value.
	ChangeSet ChangeAction = iota
	// ChangeAttach adds a disk or an interface.
	ChangeAttach
	// ChangeDetach removes a disk or an interface.
	ChangeDetach
)

// Change is one difference between two machine specs.
type Change struct {
	// Field names what changes in the spec's snake_case form, as SpecError
	// does: "memory", "boot.cmdline", "disks[2]", "interfaces[0].model".
	// An added disk or interface is named by its index in the new spec, a
	// removed one by its index in the old spec.
	Field  string
	Class  UpdateClass
	Action ChangeAction
	// Reason says why the change has its class where that depends on the
	// values (memory above max_memory, a disk on a bus without hot-plug),
	// in words for a plan warning; empty where the field alone decides.
	Reason string
	// Old and New are the disk's or interface's index in the old and the
	// new spec, -1 where it has none; both -1 for the other fields.
	Old, New int
}

// MachineUpdate is what it takes to turn one machine spec into another.
type MachineUpdate struct {
	// Spec is the new spec with its defaults and with what the host chose
	// for the old machine carried over wherever the new spec leaves it
	// open: the UUID, the MAC of an interface that stays, the target of a
	// disk that stays. It is the spec to define.
	Spec MachineSpec
	// Changes lists every difference, in the spec's field order.
	Changes []Change
}

// Empty reports whether the specs describe the same machine.
func (u MachineUpdate) Empty() bool { return len(u.Changes) == 0 }

// Has reports whether any change is of one of the classes.
func (u MachineUpdate) Has(classes ...UpdateClass) bool {
	return len(u.Of(classes...)) > 0
}

// Of returns the changes of the given classes.
func (u MachineUpdate) Of(classes ...UpdateClass) []Change {
	var out []Change
	for _, c := range u.Changes {
		for _, class := range classes {
			if c.Class == class {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// Fields returns the field names of the changes of the given classes, for
// a plan's replace paths and restart warnings.
func (u MachineUpdate) Fields(classes ...UpdateClass) []string {
	var out []string
	for _, c := range u.Of(classes...) {
		out = append(out, c.Field)
	}
	return out
}

// ErrNeedsReplace reports an update that changes what only a new machine
// can have; errors.Is finds it in UpdateMachine's error.
var ErrNeedsReplace = errors.New("the machine must be replaced")

// DefaultShutdownGrace is how long UpdateOptions give a guest to power off
// when they say nothing.
const DefaultShutdownGrace = time.Minute

// UpdateOptions steer MachineBackend.UpdateMachine.
type UpdateOptions struct {
	// Reboot restarts a running machine (ACPI shutdown within
	// ShutdownGrace, then start) when the update leaves it running with
	// something that only a restart applies. Without it such changes wait
	// for the next boot, and the machine reads back with PendingRestart.
	Reboot bool
	// ShutdownGrace bounds the wait for the guest to power off before the
	// plug is pulled; 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Running, when set, is the run state the machine ends in. A machine
	// to stop is shut down before it is redefined, so nothing is applied
	// live to a guest about to go; a machine to start is started after, so
	// it boots with the whole new definition. Nil keeps the run state.
	Running *bool
}

// Grace returns ShutdownGrace or its default.
func (o UpdateOptions) Grace() time.Duration {
	if o.ShutdownGrace > 0 {
		return o.ShutdownGrace
	}
	return DefaultShutdownGrace
}

// PlanMachineUpdate classifies every difference between old (a machine as
// read back) and new (what it is to become). new is judged with its
// defaults and must be valid (SpecErrors otherwise).
//
// The classes, and why (running is live too, but is not part of a spec:
// UpdateOptions.Running carries it):
//
//	name             replace    libvirt renames only stopped domains, and the name is the machine's
//	                            identity for the front ends and in host file names (logs, NVRAM)
//	uuid             replace    a domain's UUID never changes
//	type             replace    kvm and qemu guests see different CPUs (host-passthrough against
//	                            QEMU's emulated model); an installed system is not portable between them
//	firmware         replace    BIOS and EFI boot different things from the disk (MBR boot loader
//	                            against an EFI system partition) and EFI needs NVRAM: not the same machine
//	description      live       metadata, no device
//	autostart        live       a host setting, outside the definition
//	memory           live       through the balloon, up to the running machine's max_memory;
//	                 next-boot  without a balloon, or above max_memory
//	max_memory       next-boot  the memory a guest can ever use is fixed when QEMU starts (no DIMM hot-plug)
//	vcpu             live       adding vCPUs up to max_vcpu (ACPI CPU hot-plug);
//	                 next-boot  removing vCPUs (the guest has to release them, and many never do:
//	                            libvirt gives up after 5 s), or above max_vcpu
//	max_vcpu         next-boot  the vCPU slots are fixed when QEMU starts
//	boot.*           next-boot  the kernel, initrd and command line are read only at boot
//	disks[i]         live       adding or removing a data disk on virtio, or on scsi when the machine
//	                            already has its virtio-scsi controller (PCI and SCSI hot-plug);
//	                 next-boot  the boot disk (disks[0]: it cannot leave a running guest), SATA and
//	                            IDE disks and CD-ROMs (no hot-plug on those buses), and any property
//	                            of a disk that stays (bus, device, readonly, format, target)
//	interfaces[i]    live       adding or removing a NIC (PCI hot-plug)
//	interfaces[i].*  next-boot  the type, network, bridge or model of a NIC that stays
//	console.*        next-boot  the serial port's backend is fixed when QEMU starts
//	graphics.*       next-boot  libvirt cannot change the display type or listen address live
//	qemu_agent       next-boot  the agent channel's virtio-serial port is part of the boot layout
//	rng              next-boot  kept with the devices the guest discovers at boot
//	balloon          next-boot  a balloon cannot be hot-plugged
//
// A disk stays when the new spec has one with the same source (volume key,
// pool and volume, or path); an interface stays when the new spec has one
// with its MAC, or, without a MAC, at the same position on the same
// network or bridge.
func PlanMachineUpdate(old, new MachineSpec) (MachineUpdate, error) {
	old = old.WithDefaults()
	spec := adoptIdentity(old, new).WithDefaults()
	if err := spec.Validate(); err != nil {
		return MachineUpdate{Spec: spec}, err
	}
	p := planner{old: old, new: spec}
	p.scalars()
	p.disks()
	p.interfaces()
	p.devices()
	return MachineUpdate{Spec: spec, Changes: p.changes}, nil
}

// adoptIdentity copies onto new what the host assigned to old and new
// leaves unset, so that an unchanged disk or NIC does not read as a new one.
// It runs before defaults, since target assignment must skip the targets
// adopted here.
func adoptIdentity(old, new MachineSpec) MachineSpec {
	if new.UUID == "" {
		new.UUID = old.UUID
	}
	if new.Name == "" {
		new.Name = old.Name
	}

	// An explicit MAC belongs to the NIC that names it, wherever it is.
	claimed := map[string]bool{}
	for _, n := range new.Interfaces {
		if n.MAC != "" {
			claimed[strings.ToLower(n.MAC)] = true
		}
	}
	ifaces := make([]InterfaceSpec, len(new.Interfaces))
	copy(ifaces, new.Interfaces)
	defaulted := MachineSpec{Interfaces: new.Interfaces}.WithDefaults().Interfaces
	for i := range ifaces {
		if ifaces[i].MAC != "" || i >= len(old.Interfaces) {
			continue
		}
		o := old.Interfaces[i]
		if o.MAC == "" || claimed[o.MAC] || !sameAttachment(o, defaulted[i]) {
			continue
		}
		ifaces[i].MAC = o.MAC
		claimed[o.MAC] = true
	}
	new.Interfaces = ifaces

	// Targets of disks that stay are kept, so that removing a disk does
	// not rename the ones after it; explicit targets win.
	disks := make([]DiskSpec, len(new.Disks))
	copy(disks, new.Disks)
	defaultedDisks := MachineSpec{Disks: new.Disks}.WithDefaults().Disks
	taken := map[string]bool{}
	for _, d := range disks {
		if d.Target != "" {
			taken[d.Target] = true
		}
	}
	used := make([]bool, len(old.Disks))
	for i := range disks {
		if disks[i].Target != "" {
			continue
		}
		j := matchDisk(old.Disks, used, disks[i])
		if j < 0 {
			continue
		}
		used[j] = true
		t := old.Disks[j].Target
		if t == "" || taken[t] || !strings.HasPrefix(t, diskPrefix(defaultedDisks[i].Bus)) {
			continue
		}
		disks[i].Target = t
		taken[t] = true
	}
	new.Disks = disks
	return new
}

// sameAttachment reports whether two NICs plug into the same place.
func sameAttachment(a, b InterfaceSpec) bool {
	return a.Type == b.Type && a.Network == b.Network && a.Bridge == b.Bridge
}

// diskIdentity is what makes a disk the same disk: where its data is.
func diskIdentity(d DiskSpec) string {
	switch {
	case d.VolumeKey != "":
		return "volume_key:" + d.VolumeKey
	case d.Volume != "":
		return "volume:" + d.Pool + "/" + d.Volume
	}
	return "path:" + d.Path
}

// matchDisk finds the first disk of disks not yet used with d's source.
func matchDisk(disks []DiskSpec, used []bool, d DiskSpec) int {
	id := diskIdentity(d)
	for j, o := range disks {
		if !used[j] && diskIdentity(o) == id {
			return j
		}
	}
	return -1
}

// planner collects the changes between two defaulted specs.
type planner struct {
	old, new MachineSpec
	changes  []Change
}

func (p *planner) add(field string, class UpdateClass, reason string) {
	p.changes = append(p.changes, Change{Field: field, Class: class, Reason: reason, Old: -1, New: -1})
}

// set records a scalar change when the values differ.
func set[T comparable](p *planner, field string, old, new T, class UpdateClass) {
	if old != new {
		p.add(field, class, "")
	}
}

func (p *planner) scalars() {
	o, n := p.old, p.new
	set(p, "name", o.Name, n.Name, UpdateReplace)
	set(p, "uuid", o.UUID, n.UUID, UpdateReplace)
	set(p, "type", o.Type, n.Type, UpdateReplace)
	set(p, "firmware", o.Firmware, n.Firmware, UpdateReplace)
	set(p, "description", o.Description, n.Description, UpdateLive)
	set(p, "autostart", o.Autostart, n.Autostart, UpdateLive)

	if o.MemoryMiB != n.MemoryMiB {
		switch {
		case !o.Balloon:
			p.add("memory", UpdateNextBoot, "the machine has no memory balloon to change its memory with while it runs")
		case n.MemoryMiB > o.MaxMemoryMiB:
			p.add("memory", UpdateNextBoot, fmt.Sprintf("%d MiB is above the max_memory of %d MiB the machine runs with", n.MemoryMiB, o.MaxMemoryMiB))
		default:
			p.add("memory", UpdateLive, "")
		}
	}
	set(p, "max_memory", o.MaxMemoryMiB, n.MaxMemoryMiB, UpdateNextBoot)

	if o.VCPU != n.VCPU {
		switch {
		case n.VCPU < o.VCPU:
			p.add("vcpu", UpdateNextBoot, "removing vCPUs from a running guest needs the guest to release them, which it may never do")
		case n.VCPU > o.MaxVCPU:
			p.add("vcpu", UpdateNextBoot, fmt.Sprintf("%d is above the max_vcpu of %d the machine runs with", n.VCPU, o.MaxVCPU))
		default:
			p.add("vcpu", UpdateLive, "")
		}
	}
	set(p, "max_vcpu", o.MaxVCPU, n.MaxVCPU, UpdateNextBoot)

	switch {
	case (o.Boot == nil) != (n.Boot == nil):
		p.add("boot", UpdateNextBoot, "")
	case o.Boot != nil:
		set(p, "boot.kernel", o.Boot.Kernel, n.Boot.Kernel, UpdateNextBoot)
		set(p, "boot.initrd", o.Boot.Initrd, n.Boot.Initrd, UpdateNextBoot)
		set(p, "boot.cmdline", o.Boot.Cmdline, n.Boot.Cmdline, UpdateNextBoot)
	}
}

// diskHotplug says whether QEMU on a PC machine can add or remove a disk
// while the guest runs, and if not, why. hasSCSI tells whether the running
// machine has its virtio-scsi controller (libvirt would otherwise plug in a
// controller of its own choosing, not the one the definition gets).
func diskHotplug(d DiskSpec, hasSCSI bool) (bool, string) {
	switch {
	case d.Device != DeviceDisk:
		return false, fmt.Sprintf("a %s cannot be plugged in or out while the machine runs", d.Device)
	case d.Bus == BusVirtio:
		return true, ""
	case d.Bus == BusSCSI && hasSCSI:
		return true, ""
	case d.Bus == BusSCSI:
		return false, "the machine runs without a SCSI controller"
	}
	return false, fmt.Sprintf("the %s bus has no hot-plug", d.Bus)
}

func hasSCSIDisk(disks []DiskSpec) bool {
	for _, d := range disks {
		if d.Bus == BusSCSI {
			return true
		}
	}
	return false
}

func (p *planner) disks() {
	o, n := p.old.Disks, p.new.Disks
	used := make([]bool, len(o))
	match := make([]int, len(n))
	for i, d := range n {
		match[i] = matchDisk(o, used, d)
		if match[i] >= 0 {
			used[match[i]] = true
		}
	}
	hasSCSI := hasSCSIDisk(o)

	for j := range o {
		if used[j] {
			continue
		}
		c := Change{Field: fmt.Sprintf("disks[%d]", j), Action: ChangeDetach, Old: j, New: -1, Class: UpdateLive}
		if ok, why := diskHotplug(o[j], true); j == 0 {
			c.Class, c.Reason = UpdateNextBoot, "the boot disk cannot leave a running machine"
		} else if !ok {
			c.Class, c.Reason = UpdateNextBoot, why
		}
		p.changes = append(p.changes, c)
	}
	for i, d := range n {
		j := match[i]
		field := fmt.Sprintf("disks[%d]", i)
		if j < 0 {
			c := Change{Field: field, Action: ChangeAttach, Old: -1, New: i, Class: UpdateLive}
			if ok, why := diskHotplug(d, hasSCSI); i == 0 {
				c.Class, c.Reason = UpdateNextBoot, "the boot disk changes"
			} else if !ok {
				c.Class, c.Reason = UpdateNextBoot, why
			}
			p.changes = append(p.changes, c)
			continue
		}
		if i == 0 && j != 0 {
			p.changes = append(p.changes, Change{Field: field, Class: UpdateNextBoot, Reason: "another disk becomes the boot disk", Old: j, New: i})
		}
		od := o[j]
		for _, f := range []struct {
			name     string
			old, new any
		}{
			{"bus", od.Bus, d.Bus},
			{"device", od.Device, d.Device},
			{"readonly", od.ReadOnly, d.ReadOnly},
			{"format", od.Format, d.Format},
			{"target", od.Target, d.Target},
		} {
			// An empty format reads back as the volume's; only a format
			// asked for differently is a change.
			if f.name == "format" && d.Format == "" {
				continue
			}
			if f.old != f.new {
				p.changes = append(p.changes, Change{Field: field + "." + f.name, Class: UpdateNextBoot, Old: j, New: i})
			}
		}
	}
}

func (p *planner) interfaces() {
	o, n := p.old.Interfaces, p.new.Interfaces
	used := make([]bool, len(o))
	match := make([]int, len(n))
	for i, nic := range n {
		match[i] = -1
		if nic.MAC == "" {
			continue
		}
		for j, on := range o {
			if !used[j] && on.MAC == nic.MAC {
				match[i] = j
				used[j] = true
				break
			}
		}
	}
	for j := range o {
		if !used[j] {
			p.changes = append(p.changes, Change{Field: fmt.Sprintf("interfaces[%d]", j), Class: UpdateLive, Action: ChangeDetach, Old: j, New: -1})
		}
	}
	for i, nic := range n {
		j := match[i]
		field := fmt.Sprintf("interfaces[%d]", i)
		if j < 0 {
			p.changes = append(p.changes, Change{Field: field, Class: UpdateLive, Action: ChangeAttach, Old: -1, New: i})
			continue
		}
		on := o[j]
		for _, f := range []struct{ name, old, new string }{
			{"type", on.Type, nic.Type},
			{"network", on.Network, nic.Network},
			{"bridge", on.Bridge, nic.Bridge},
			{"model", on.Model, nic.Model},
		} {
			if f.old != f.new {
				p.changes = append(p.changes, Change{Field: field + "." + f.name, Class: UpdateNextBoot, Old: j, New: i})
			}
		}
	}
}

func (p *planner) devices() {
	o, n := p.old, p.new
	set(p, "console.type", o.Console.Type, n.Console.Type, UpdateNextBoot)
	set(p, "console.path", o.Console.Path, n.Console.Path, UpdateNextBoot)
	set(p, "graphics.type", o.Graphics.Type, n.Graphics.Type, UpdateNextBoot)
	set(p, "graphics.listen", o.Graphics.Listen, n.Graphics.Listen, UpdateNextBoot)
	set(p, "qemu_agent", o.QemuAgent, n.QemuAgent, UpdateNextBoot)
	set(p, "rng", o.RNG, n.RNG, UpdateNextBoot)
	set(p, "balloon", o.Balloon, n.Balloon, UpdateNextBoot)
}
