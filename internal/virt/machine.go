package virt

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// MinMemoryMiB is the least memory a machine may have: below it no kernel
// gets far enough to say what is wrong, so the mistake would surface as a
// silent hang.
const MinMemoryMiB = 16

// DefaultListen is where VNC and SPICE listen unless told otherwise: local
// only, because neither is encrypted by default.
const DefaultListen = "127.0.0.1"

// DefaultNetwork is the libvirt network an interface joins when it names no
// network or bridge.
const DefaultNetwork = "default"

// WithDefaults returns a copy of s with every unset field given its default,
// so that a spec read back from the host compares equal to the spec that was
// asked for. It is idempotent and never fails; Validate reports what is wrong.
//
// QemuAgent, RNG, Balloon and Autostart are plain bools whose zero value is a
// meaningful "off", so they are left as they are: a default of true here
// would make false impossible to ask for. Front ends that want them on by
// default set them in their own schema.
func (s MachineSpec) WithDefaults() MachineSpec {
	if s.Type == "" {
		s.Type = DomainKVM
	}
	if s.VCPU == 0 {
		s.VCPU = 1
	}
	if s.MaxVCPU == 0 {
		s.MaxVCPU = s.VCPU
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = 512
	}
	if s.MaxMemoryMiB == 0 {
		s.MaxMemoryMiB = s.MemoryMiB
	}
	if s.Firmware == "" {
		s.Firmware = FirmwareBIOS
	}
	if uuidRE.MatchString(s.UUID) {
		// libvirt reads UUIDs back lower-case and dashed.
		u := strings.ToLower(strings.ReplaceAll(s.UUID, "-", ""))
		s.UUID = u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:32]
	}
	if s.Boot != nil {
		b := *s.Boot
		s.Boot = &b
	}

	s.Disks = slices.Clone(s.Disks)
	for i := range s.Disks {
		d := &s.Disks[i]
		if d.Device == "" {
			d.Device = DeviceDisk
		}
		if d.Bus == "" {
			d.Bus = BusVirtio
			switch d.Device {
			case DeviceCDROM:
				// Neither libvirt nor QEMU offer a virtio CD-ROM.
				d.Bus = BusSATA
			case DeviceFloppy:
				d.Bus = BusFDC
			}
		}
		if d.Device == DeviceCDROM {
			// A CD-ROM is read-only media; libvirt forces it anyway and
			// would read back true.
			d.ReadOnly = true
		}
	}
	assignDiskTargets(s.Disks)

	s.Interfaces = slices.Clone(s.Interfaces)
	for i := range s.Interfaces {
		n := &s.Interfaces[i]
		if n.Type == "" {
			switch {
			case n.Network != "":
				n.Type = InterfaceNetwork
			case n.Bridge != "":
				n.Type = InterfaceBridge
			default:
				n.Type = InterfaceNetwork
			}
		}
		if n.Type == InterfaceNetwork && n.Network == "" && n.Bridge == "" {
			n.Network = DefaultNetwork
		}
		if n.Model == "" {
			n.Model = ModelVirtio
		}
		// libvirt stores MACs in lower case; normalising here keeps an
		// upper-case MAC from reading back as a change.
		n.MAC = strings.ToLower(n.MAC)
	}

	if s.Console.Type == "" {
		s.Console.Type = ConsolePTY
		if s.Console.Path != "" {
			s.Console.Type = ConsoleFile
		}
	}
	if s.Graphics.Type == "" {
		s.Graphics.Type = GraphicsNone
	}
	if s.Graphics.Listen == "" && (s.Graphics.Type == GraphicsVNC || s.Graphics.Type == GraphicsSpice) {
		s.Graphics.Listen = DefaultListen
	}
	return s
}

// diskPrefix is the guest device name stem libvirt expects for a bus. SATA
// and SCSI share sd*, so targets are numbered per prefix, not per bus.
func diskPrefix(bus string) string {
	switch bus {
	case BusVirtio:
		return "vd"
	case BusSATA, BusSCSI:
		return "sd"
	case BusIDE:
		return "hd"
	case BusFDC:
		return "fd"
	}
	return ""
}

// diskSuffix numbers disks the way libvirt and Linux do: a..z, aa..az, ...
func diskSuffix(i int) string {
	s := ""
	for i++; i > 0; i = (i - 1) / 26 {
		s = string(rune('a'+(i-1)%26)) + s
	}
	return s
}

// assignDiskTargets gives every disk without a target the next free name of
// its bus's prefix, in spec order, skipping names that other disks claim
// explicitly.
func assignDiskTargets(disks []DiskSpec) {
	used := map[string]bool{}
	for _, d := range disks {
		if d.Target != "" {
			used[d.Target] = true
		}
	}
	next := map[string]int{}
	for i := range disks {
		d := &disks[i]
		prefix := diskPrefix(d.Bus)
		if d.Target != "" || prefix == "" {
			continue
		}
		for {
			name := prefix + diskSuffix(next[prefix])
			next[prefix]++
			if !used[name] {
				d.Target = name
				used[name] = true
				break
			}
		}
	}
}

// machineNameRE is stricter than libvirt (which forbids only '/' and
// newlines): the name ends up in file names (logs, NVRAM, sockets) and in
// QEMU's command line, where anything else invites quoting bugs.
var machineNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

var (
	uuidRE       = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)
	macRE        = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)
	diskTargetRE = regexp.MustCompile(`^(vd|sd|hd|fd)[a-z]+$`)
)

// Validate reports every problem of the spec at once, as SpecErrors whose
// field names are the spec's in snake_case ("disks[1].bus"). It judges the
// spec with its defaults applied, so front ends can validate raw input.
func (s MachineSpec) Validate() error {
	s = s.WithDefaults()
	var errs SpecErrors

	if !machineNameRE.MatchString(s.Name) {
		errs.add("name", "%q is not a valid machine name: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit", s.Name)
	}
	if s.UUID != "" && !uuidRE.MatchString(s.UUID) {
		errs.add("uuid", "%q is not a UUID", s.UUID)
	}
	if !slices.Contains(DomainTypes, s.Type) {
		errs.add("type", "%q is not one of %s", s.Type, joinQuoted(DomainTypes))
	}
	if s.MaxVCPU < s.VCPU {
		errs.add("vcpu", "%d is more than max_vcpu (%d)", s.VCPU, s.MaxVCPU)
	}
	if s.MemoryMiB < MinMemoryMiB {
		errs.add("memory", "%d MiB is less than the minimum of %d MiB", s.MemoryMiB, MinMemoryMiB)
	}
	if s.MaxMemoryMiB < s.MemoryMiB {
		errs.add("max_memory", "%d MiB is less than memory (%d MiB)", s.MaxMemoryMiB, s.MemoryMiB)
	} else if s.MaxMemoryMiB > s.MemoryMiB && !s.Balloon {
		// Only the balloon holds a guest below its boot memory; without one
		// it would silently get max_memory.
		errs.add("max_memory", "%d MiB above memory (%d MiB) needs balloon", s.MaxMemoryMiB, s.MemoryMiB)
	}
	if !slices.Contains(Firmwares, s.Firmware) {
		errs.add("firmware", "%q is not one of %s", s.Firmware, joinQuoted(Firmwares))
	}
	if s.Boot != nil {
		s.Boot.validate(&errs)
	}

	targets := map[string]int{}
	for i, d := range s.Disks {
		d.validate(&errs, fmt.Sprintf("disks[%d]", i))
		if d.Target == "" {
			continue
		}
		if j, dup := targets[d.Target]; dup {
			errs.add(fmt.Sprintf("disks[%d].target", i), "%q is already the target of disks[%d]", d.Target, j)
		} else {
			targets[d.Target] = i
		}
	}
	macs := map[string]int{}
	for i, n := range s.Interfaces {
		field := fmt.Sprintf("interfaces[%d]", i)
		n.validate(&errs, field)
		if n.MAC == "" {
			continue
		}
		if j, dup := macs[n.MAC]; dup {
			errs.add(field+".mac", "%s is already the MAC of interfaces[%d]", n.MAC, j)
		} else {
			macs[n.MAC] = i
		}
	}
	s.Console.validate(&errs)
	s.Graphics.validate(&errs)
	return errs.err()
}

func (b DirectBoot) validate(errs *SpecErrors) {
	switch {
	case b.Kernel == "":
		errs.add("boot.kernel", "required for direct kernel boot (initrd and cmdline need a kernel)")
	case !filepath.IsAbs(b.Kernel):
		errs.add("boot.kernel", "%q is not an absolute path on the host", b.Kernel)
	}
	if b.Initrd != "" && !filepath.IsAbs(b.Initrd) {
		errs.add("boot.initrd", "%q is not an absolute path on the host", b.Initrd)
	}
}

func (d DiskSpec) validate(errs *SpecErrors, field string) {
	sources := 0
	if d.VolumeKey != "" {
		sources++
	}
	if d.Pool != "" || d.Volume != "" {
		sources++
		if d.Pool == "" {
			errs.add(field+".pool", "required with volume %q", d.Volume)
		}
		if d.Volume == "" {
			errs.add(field+".volume", "required with pool %q", d.Pool)
		}
	}
	if d.Path != "" {
		sources++
		if !filepath.IsAbs(d.Path) {
			errs.add(field+".path", "%q is not an absolute path on the host", d.Path)
		}
	}
	if sources != 1 {
		errs.add(field, "set exactly one of volume_key, pool and volume, or path (%d given)", sources)
	}
	if d.Format != "" && !slices.Contains(VolumeFormats, d.Format) {
		errs.add(field+".format", "%q is not one of %s", d.Format, joinQuoted(VolumeFormats))
	}
	if !slices.Contains(DiskBuses, d.Bus) {
		errs.add(field+".bus", "%q is not one of %s", d.Bus, joinQuoted(DiskBuses))
	} else if d.Device == DeviceCDROM && d.Bus == BusVirtio {
		errs.add(field+".bus", "a cdrom cannot be on the virtio bus; use sata, scsi or ide")
	} else if (d.Device == DeviceFloppy) != (d.Bus == BusFDC) {
		errs.add(field+".bus", "a floppy goes on the fdc bus, and only a floppy does")
	}
	if !slices.Contains(DiskDevices, d.Device) {
		errs.add(field+".device", "%q is not one of %s", d.Device, joinQuoted(DiskDevices))
	}
	if d.Target != "" {
		if !diskTargetRE.MatchString(d.Target) {
			errs.add(field+".target", "%q is not a disk name such as vda, sda or hda", d.Target)
		} else if p := diskPrefix(d.Bus); p != "" && !strings.HasPrefix(d.Target, p) {
			errs.add(field+".target", "%q does not fit bus %s, whose disks are named %s*", d.Target, d.Bus, p)
		} else if d.Bus == BusFDC && d.Target != "fda" && d.Target != "fdb" {
			// The controller has two drives.
			errs.add(field+".target", "%q: a machine has two floppy drives, fda and fdb", d.Target)
		}
	}
}

func (n InterfaceSpec) validate(errs *SpecErrors, field string) {
	switch n.Type {
	case InterfaceNetwork:
		if n.Bridge != "" {
			errs.add(field+".bridge", "not used by a network interface (set network, or type bridge)")
		}
	case InterfaceBridge:
		if n.Bridge == "" {
			errs.add(field+".bridge", "required for a bridge interface")
		}
		if n.Network != "" {
			errs.add(field+".network", "not used by a bridge interface")
		}
	case InterfaceUser:
		if n.Network != "" {
			errs.add(field+".network", "not used by a user-mode interface")
		}
		if n.Bridge != "" {
			errs.add(field+".bridge", "not used by a user-mode interface")
		}
	default:
		errs.add(field+".type", "%q is not one of %s", n.Type, joinQuoted(InterfaceTypes))
	}
	if !slices.Contains(InterfaceModels, n.Model) {
		errs.add(field+".model", "%q is not a NIC model offered here: use one of %s", n.Model, joinQuoted(InterfaceModels))
	}
	if n.MAC != "" {
		if !macRE.MatchString(n.MAC) {
			errs.add(field+".mac", "%q is not a MAC address (xx:xx:xx:xx:xx:xx)", n.MAC)
		} else if hw, err := net.ParseMAC(n.MAC); err == nil && hw[0]&1 == 1 {
			errs.add(field+".mac", "%s is a multicast address; a NIC needs a unicast one (even first octet)", n.MAC)
		}
	}
}

func (c ConsoleSpec) validate(errs *SpecErrors) {
	switch c.Type {
	case ConsolePTY:
		if c.Path != "" {
			errs.add("console.path", "only a file console has a path")
		}
	case ConsoleFile:
		if !filepath.IsAbs(c.Path) {
			errs.add("console.path", "a file console needs an absolute host path, got %q", c.Path)
		}
	default:
		errs.add("console.type", "%q is not one of \"pty\", \"file\"", c.Type)
	}
}

func (g GraphicsSpec) validate(errs *SpecErrors) {
	switch g.Type {
	case GraphicsNone:
		if g.Listen != "" {
			errs.add("graphics.listen", "only vnc and spice listen")
		}
	case GraphicsVNC, GraphicsSpice:
		if net.ParseIP(g.Listen) == nil {
			errs.add("graphics.listen", "%q is not an IP address", g.Listen)
		}
	default:
		errs.add("graphics.type", "%q is not one of \"none\", \"vnc\", \"spice\"", g.Type)
	}
}

// joinQuoted renders the valid values of an enum for an error message.
func joinQuoted[T ~string](values []T) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
