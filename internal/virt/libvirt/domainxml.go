package libvirt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// This file is the one place where a MachineSpec becomes domain XML and where
// domain XML becomes a MachineSpec again. Everything libvirt adds on define
// (controllers, addresses, default models, the <console> twin of the first
// serial port, input devices, a CPU model...) is ignored on the way back, so
// that reading a machine yields exactly what was asked for and nothing drifts.

// guestAgentChannel is the virtio-serial port name qemu-guest-agent opens.
const guestAgentChannel = "org.qemu.guest_agent.0"

// machineMetadataNS is the namespace of what the provider keeps in the
// domain's <metadata>: the disks in the order of the spec (libvirt groups a
// definition's disks by bus, so a virtio disk after a SATA one would read
// back before it) and how each was named (volume key or pool and volume),
// which the <source file=...> libvirt runs with cannot say.
const machineMetadataNS = "https://github.com/virtforge/terraform-provider-virt/xmlns/machine/1"

// diskSource is where a disk's data is once volume references are resolved
// to what QEMU opens.
type diskSource struct {
	Path   string
	Format string
	// Block marks a block device (<disk type='block'>) rather than a file.
	Block bool
}

// machineMetadata is the <virt:machine> element in <metadata>.
type machineMetadata struct {
	XMLName xml.Name       `xml:"virt:machine"`
	NS      string         `xml:"xmlns:virt,attr"`
	Disks   []diskMetadata `xml:"virt:disk"`
}

// diskMetadata records a disk's place in the spec and the volume it was
// defined from, if any. Source is the path it resolved to: when the disk's
// source no longer matches (someone edited the domain), the entry is stale:
// the path is reported instead of the volume, and the disks keep libvirt's
// order, so that the change shows up as drift.
type diskMetadata struct {
	Target    string `xml:"target,attr"`
	Source    string `xml:"source,attr"`
	VolumeKey string `xml:"volume_key,attr,omitempty"`
	Pool      string `xml:"pool,attr,omitempty"`
	Volume    string `xml:"volume,attr,omitempty"`
}

// parsedMachineMetadata reads <virt:machine> back; encoding/xml matches
// child elements by local name, and the namespace is checked by the caller.
type parsedMachineMetadata struct {
	XMLName xml.Name `xml:"machine"`
	Disks   []struct {
		Target    string `xml:"target,attr"`
		Source    string `xml:"source,attr"`
		VolumeKey string `xml:"volume_key,attr"`
		Pool      string `xml:"pool,attr"`
		Volume    string `xml:"volume,attr"`
	} `xml:"disk"`
}

// domainFromSpec renders a defaulted, validated spec. sources holds, for
// each disk of spec.Disks in order, the path and format QEMU is to open.
func domainFromSpec(spec virt.MachineSpec, sources []diskSource) *libvirtxml.Domain {
	dom := &libvirtxml.Domain{
		Type:          string(spec.Type),
		Name:          spec.Name,
		UUID:          spec.UUID,
		Description:   spec.Description,
		Memory:        &libvirtxml.DomainMemory{Value: uint(spec.MaxMemoryMiB), Unit: "MiB"},
		CurrentMemory: &libvirtxml.DomainCurrentMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		VCPU:          &libvirtxml.DomainVCPU{Value: spec.MaxVCPU},
		OS: &libvirtxml.DomainOS{
			// The machine type is left to libvirt, which picks the newest
			// its QEMU offers and writes it into the definition.
			Type: &libvirtxml.DomainOSType{Type: "hvm"},
		},
		Features: &libvirtxml.DomainFeatureList{
			// Without ACPI a guest's poweroff only halts it and a shutdown
			// from the host has nothing to talk to.
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices:    &libvirtxml.DomainDeviceList{},
	}
	if spec.VCPU < spec.MaxVCPU {
		dom.VCPU.Current = spec.VCPU
	}
	if spec.Firmware == virt.FirmwareEFI {
		// libvirt picks the OVMF code and variables template itself.
		dom.OS.Firmware = "efi"
	}
	if spec.Type == virt.DomainKVM {
		// TCG cannot emulate the host's CPU, so QEMU guests keep libvirt's
		// default model.
		dom.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	if spec.Boot != nil {
		dom.OS.Kernel = spec.Boot.Kernel
		dom.OS.Initrd = spec.Boot.Initrd
		dom.OS.Cmdline = spec.Boot.Cmdline
	}

	var meta []diskMetadata
	var bootOrder uint
	for i, d := range spec.Disks {
		src := diskSource{Path: d.Path, Format: d.Format}
		if i < len(sources) {
			src = sources[i]
		}
		disk := libvirtxml.DomainDisk{
			Device: d.Device,
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: src.Format},
			Target: &libvirtxml.DomainDiskTarget{Dev: d.Target, Bus: d.Bus},
		}
		if src.Block {
			disk.Source = &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: src.Path}}
		} else {
			disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: src.Path}}
		}
		if d.ReadOnly {
			disk.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		}
		if d.Device == virt.DeviceDisk && (d.Bus == virt.BusVirtio || d.Bus == virt.BusSCSI) {
			// The guest's TRIM (fstrim, discard mounts) then frees the
			// blocks in a qcow2 or sparse file: templates and clones stay
			// small. Read-back ignores it: it is not a spec field.
			disk.Driver.Discard = "unmap"
		}
		if spec.Boot == nil && (i == 0 || d.Device == virt.DeviceCDROM) {
			// A boot order on the device (not <boot dev='hd'/>) makes the
			// first disk of the spec the boot disk, whatever its bus. The
			// CD-ROMs after it come next, in order: firmware goes on to
			// them when the disk has nothing to boot, so a blank disk with
			// an installer ISO boots the installer, and the installed
			// system once the disk holds one. libvirt starts QEMU with
			// boot strict=on: a device without an order never boots.
			bootOrder++
			disk.Boot = &libvirtxml.DomainDeviceBoot{Order: bootOrder}
		}
		dom.Devices.Disks = append(dom.Devices.Disks, disk)
		meta = append(meta, diskMetadata{
			Target: d.Target, Source: src.Path,
			VolumeKey: d.VolumeKey, Pool: d.Pool, Volume: d.Volume,
		})
	}
	if slices.ContainsFunc(spec.Disks, func(d virt.DiskSpec) bool { return d.Bus == virt.BusSCSI }) {
		// libvirt would add an emulated LSI controller; guests that run on
		// virtio everywhere else want virtio-scsi.
		dom.Devices.Controllers = []libvirtxml.DomainController{{Type: "scsi", Model: "virtio-scsi"}}
	}
	if len(meta) > 0 {
		// Marshalling these plain structs cannot fail.
		b, _ := xml.Marshal(machineMetadata{NS: machineMetadataNS, Disks: meta})
		dom.Metadata = &libvirtxml.DomainMetadata{XML: string(b)}
	}

	for _, n := range spec.Interfaces {
		iface := libvirtxml.DomainInterface{
			Model: &libvirtxml.DomainInterfaceModel{Type: n.Model},
		}
		switch n.Type {
		case virt.InterfaceNetwork:
			iface.Source = &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}}
		case virt.InterfaceBridge:
			iface.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: n.Bridge}}
		case virt.InterfaceUser:
			iface.Source = &libvirtxml.DomainInterfaceSource{User: &libvirtxml.DomainInterfaceSourceUser{}}
		}
		if n.MAC != "" {
			iface.MAC = &libvirtxml.DomainInterfaceMAC{Address: n.MAC}
		}
		dom.Devices.Interfaces = append(dom.Devices.Interfaces, iface)
	}

	port := uint(0)
	var chardev *libvirtxml.DomainChardevSource
	switch spec.Console.Type {
	case virt.ConsoleFile:
		chardev = &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: spec.Console.Path, Append: "on"}}
	default:
		chardev = &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
	}
	dom.Devices.Serials = []libvirtxml.DomainSerial{{Source: chardev, Target: &libvirtxml.DomainSerialTarget{Port: &port}}}
	// The console is the same device as serial port 0; libvirt insists on
	// listing it twice, so render it the way libvirt would store it.
	dom.Devices.Consoles = []libvirtxml.DomainConsole{{Source: chardev, Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port}}}

	if spec.QemuAgent {
		dom.Devices.Channels = append(dom.Devices.Channels, libvirtxml.DomainChannel{
			Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: guestAgentChannel}},
		})
	}

	listen := []libvirtxml.DomainGraphicListener{{Address: &libvirtxml.DomainGraphicListenerAddress{Address: spec.Graphics.Listen}}}
	switch spec.Graphics.Type {
	case virt.GraphicsVNC:
		dom.Devices.Graphics = []libvirtxml.DomainGraphic{{VNC: &libvirtxml.DomainGraphicVNC{AutoPort: "yes", Listeners: listen}}}
	case virt.GraphicsSpice:
		dom.Devices.Graphics = []libvirtxml.DomainGraphic{{Spice: &libvirtxml.DomainGraphicSpice{AutoPort: "yes", Listeners: listen}}}
	}

	// libvirt adds a virtio balloon to every QEMU guest unless told "none".
	dom.Devices.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "none"}
	if spec.Balloon {
		dom.Devices.MemBalloon.Model = "virtio"
	}
	if spec.RNG {
		dom.Devices.RNGs = []libvirtxml.DomainRNG{{
			Model:   "virtio",
			Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
		}}
	}
	return dom
}

// specFromDomain maps a domain definition back to the spec that produces it.
// What libvirt keeps elsewhere (autostart, run state) is left for the caller.
func specFromDomain(dom *libvirtxml.Domain) (virt.MachineSpec, error) {
	return readSpec(dom, true)
}

// specFromDomainPaths reads a definition as specFromDomain does, but names
// every disk by the path QEMU opens, not by the volume it was defined from.
// The live definition keeps the metadata the machine started with, so a
// disk plugged in since reads back by path there; comparing the live and
// the persistent definition must name disks the same way in both.
func specFromDomainPaths(dom *libvirtxml.Domain) (virt.MachineSpec, error) {
	return readSpec(dom, false)
}

func readSpec(dom *libvirtxml.Domain, volumes bool) (virt.MachineSpec, error) {
	spec := virt.MachineSpec{
		Name:        dom.Name,
		UUID:        dom.UUID,
		Type:        virt.DomainType(dom.Type),
		Description: dom.Description,
		Firmware:    virt.FirmwareBIOS,
		Console:     virt.ConsoleSpec{},
		Graphics:    virt.GraphicsSpec{Type: virt.GraphicsNone},
	}

	var err error
	if dom.Memory != nil {
		if spec.MaxMemoryMiB, err = domainMemoryMiB(dom.Memory.Value, dom.Memory.Unit); err != nil {
			return spec, fmt.Errorf("domain %q <memory>: %w", dom.Name, err)
		}
	}
	spec.MemoryMiB = spec.MaxMemoryMiB
	if dom.CurrentMemory != nil {
		if spec.MemoryMiB, err = domainMemoryMiB(dom.CurrentMemory.Value, dom.CurrentMemory.Unit); err != nil {
			return spec, fmt.Errorf("domain %q <currentMemory>: %w", dom.Name, err)
		}
	}
	if dom.VCPU != nil {
		spec.MaxVCPU = dom.VCPU.Value
		spec.VCPU = dom.VCPU.Value
		if dom.VCPU.Current != 0 {
			spec.VCPU = dom.VCPU.Current
		}
	}

	if os := dom.OS; os != nil {
		if os.Firmware == "efi" || (os.Loader != nil && os.Loader.Type == "pflash") {
			spec.Firmware = virt.FirmwareEFI
		}
		if os.Kernel != "" || os.Initrd != "" || os.Cmdline != "" {
			spec.Boot = &virt.DirectBoot{Kernel: os.Kernel, Initrd: os.Initrd, Cmdline: os.Cmdline}
		}
	}

	meta, err := parseMachineMetadata(dom.Metadata)
	if err != nil {
		return spec, fmt.Errorf("domain %q: %w", dom.Name, err)
	}

	devs := dom.Devices
	if devs == nil {
		devs = &libvirtxml.DomainDeviceList{}
	}
	bootDisk := -1
	for i, d := range devs.Disks {
		if d.Boot != nil && d.Boot.Order == 1 {
			bootDisk = i
		}
		disk := virt.DiskSpec{Device: d.Device, ReadOnly: d.ReadOnly != nil}
		if disk.Device == "" {
			disk.Device = virt.DeviceDisk
		}
		if d.Driver != nil {
			disk.Format = d.Driver.Type
		}
		if d.Target != nil {
			disk.Target, disk.Bus = d.Target.Dev, d.Target.Bus
		}
		if s := d.Source; s != nil {
			switch {
			case s.File != nil:
				disk.Path = s.File.File
			case s.Block != nil:
				disk.Path = s.Block.Dev
			case s.Volume != nil:
				disk.Pool, disk.Volume = s.Volume.Pool, s.Volume.Volume
			}
		}
		spec.Disks = append(spec.Disks, disk)
	}
	spec.Disks = orderDisks(spec.Disks, meta, bootDisk)
	for i, disk := range spec.Disks {
		for _, m := range meta.Disks {
			if volumes && m.Target == disk.Target && m.Source == disk.Path && disk.Path != "" && (m.VolumeKey != "" || m.Volume != "") {
				d := &spec.Disks[i]
				d.Path = ""
				d.VolumeKey, d.Pool, d.Volume = m.VolumeKey, m.Pool, m.Volume
			}
		}
	}

	for _, n := range devs.Interfaces {
		iface := virt.InterfaceSpec{}
		if s := n.Source; s != nil {
			switch {
			case s.Network != nil:
				iface.Type, iface.Network = virt.InterfaceNetwork, s.Network.Network
			case s.Bridge != nil:
				iface.Type, iface.Bridge = virt.InterfaceBridge, s.Bridge.Bridge
			case s.User != nil:
				iface.Type = virt.InterfaceUser
			default:
				// A kind of NIC the spec cannot express (direct, hostdev...):
				// report libvirt's own word for it so it reads as a change
				// rather than vanishing.
				iface.Type = interfaceTypeName(s)
			}
		}
		if n.Model != nil {
			iface.Model = n.Model.Type
		}
		if n.MAC != nil {
			iface.MAC = strings.ToLower(n.MAC.Address)
		}
		if n.Target != nil {
			iface.Device = n.Target.Dev
		}
		spec.Interfaces = append(spec.Interfaces, iface)
	}

	// The first serial port is the console; the <console> elements libvirt
	// lists are views of it.
	if len(devs.Serials) > 0 && devs.Serials[0].Source != nil {
		switch src := devs.Serials[0].Source; {
		case src.File != nil:
			spec.Console = virt.ConsoleSpec{Type: virt.ConsoleFile, Path: src.File.Path}
		case src.Pty != nil:
			spec.Console = virt.ConsoleSpec{Type: virt.ConsolePTY}
		}
	}

	for _, ch := range devs.Channels {
		if ch.Target != nil && ch.Target.VirtIO != nil && ch.Target.VirtIO.Name == guestAgentChannel {
			spec.QemuAgent = true
		}
	}

	if len(devs.Graphics) > 0 {
		g := devs.Graphics[0]
		switch {
		case g.VNC != nil:
			spec.Graphics = virt.GraphicsSpec{Type: virt.GraphicsVNC, Listen: graphicsListen(g.VNC.Listen, g.VNC.Listeners)}
		case g.Spice != nil:
			spec.Graphics = virt.GraphicsSpec{Type: virt.GraphicsSpice, Listen: graphicsListen(g.Spice.Listen, g.Spice.Listeners)}
		default:
			spec.Graphics = virt.GraphicsSpec{Type: "other"}
		}
	}

	spec.Balloon = devs.MemBalloon != nil && devs.MemBalloon.Model == "virtio"
	for _, rng := range devs.RNGs {
		if rng.Model == "virtio" {
			spec.RNG = true
		}
	}
	return spec, nil
}

// orderDisks puts the disks, read in libvirt's order, back in the order of
// the spec that the metadata records, when the metadata accounts for every
// disk (matched by target and source). Otherwise (a disk plugged in or
// edited since, or a domain defined elsewhere) libvirt's order stays, but
// with the boot disk first: it is disks[0] of a spec.
func orderDisks(disks []virt.DiskSpec, meta parsedMachineMetadata, bootDisk int) []virt.DiskSpec {
	if len(meta.Disks) == len(disks) {
		ordered := make([]virt.DiskSpec, 0, len(disks))
		used := make([]bool, len(disks))
		for _, m := range meta.Disks {
			for i, d := range disks {
				if !used[i] && d.Target == m.Target && d.Path == m.Source && d.Path != "" {
					used[i] = true
					ordered = append(ordered, d)
					break
				}
			}
		}
		if len(ordered) == len(disks) {
			return ordered
		}
	}
	if bootDisk > 0 {
		boot := disks[bootDisk]
		disks = append(append([]virt.DiskSpec{boot}, disks[:bootDisk]...), disks[bootDisk+1:]...)
	}
	return disks
}

// parseMachineMetadata finds the provider's element among whatever other
// applications keep in <metadata>.
func parseMachineMetadata(m *libvirtxml.DomainMetadata) (parsedMachineMetadata, error) {
	var out parsedMachineMetadata
	if m == nil || strings.TrimSpace(m.XML) == "" {
		return out, nil
	}
	dec := xml.NewDecoder(strings.NewReader(m.XML))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read <metadata>: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Space != machineMetadataNS || start.Name.Local != "machine" {
			if err := dec.Skip(); err != nil {
				return out, fmt.Errorf("read <metadata>: %w", err)
			}
			continue
		}
		if err := dec.DecodeElement(&out, &start); err != nil {
			return out, fmt.Errorf("read <metadata> %s: %w", machineMetadataNS, err)
		}
		return out, nil
	}
}

// domainMemoryMiB converts a libvirt memory amount (KiB unless a unit says
// otherwise) to MiB.
func domainMemoryMiB(value uint, unit string) (uint64, error) {
	if unit == "" {
		unit = "KiB" // libvirt's default for memory, unlike sizes elsewhere
	}
	bytes, err := sizeBytes(uint64(value), unit)
	if err != nil {
		return 0, err
	}
	return bytes >> 20, nil
}

func graphicsListen(attr string, listeners []libvirtxml.DomainGraphicListener) string {
	for _, l := range listeners {
		if l.Address != nil && l.Address.Address != "" {
			return l.Address.Address
		}
	}
	return attr
}

// interfaceTypeName recovers libvirt's type attribute for an interface
// source the spec has no field for.
func interfaceTypeName(s *libvirtxml.DomainInterfaceSource) string {
	b, err := xml.Marshal(&libvirtxml.DomainInterface{Source: s})
	if err != nil {
		return "unknown"
	}
	var probe struct {
		Type string `xml:"type,attr"`
	}
	if err := xml.NewDecoder(bytes.NewReader(b)).Decode(&probe); err != nil || probe.Type == "" {
		return "unknown"
	}
	return probe.Type
}

// keepDeviceAddresses gives the disks and NICs of a freshly rendered
// definition the addresses they have in the definition it replaces (disks
// matched by target, NICs by MAC). libvirt would otherwise number the PCI
// slots anew on every define, and the guest names NICs by slot (ens3,
// ens4...): removing one NIC would rename the ones after it at the next
// boot. Devices without a match get whatever libvirt assigns.
func keepDeviceAddresses(dst, old *libvirtxml.Domain) {
	if dst.Devices == nil || old == nil || old.Devices == nil {
		return
	}
	for i := range dst.Devices.Disks {
		d := &dst.Devices.Disks[i]
		if d.Address != nil || d.Target == nil {
			continue
		}
		for _, o := range old.Devices.Disks {
			if o.Target != nil && o.Target.Dev == d.Target.Dev && o.Target.Bus == d.Target.Bus && o.Address != nil {
				d.Address = o.Address
			}
		}
	}
	for i := range dst.Devices.Interfaces {
		n := &dst.Devices.Interfaces[i]
		if n.Address != nil || n.MAC == nil {
			continue
		}
		for _, o := range old.Devices.Interfaces {
			if o.MAC != nil && strings.EqualFold(o.MAC.Address, n.MAC.Address) && o.Address != nil {
				n.Address = o.Address
			}
		}
	}
}

// diskAlias and interfaceAlias return the alias libvirt gave the i-th disk
// or NIC of a running domain ("virtio-disk1", "net0"), by which it can be
// detached and by which the DEVICE_REMOVED event names it.
func diskAlias(live *libvirtxml.Domain, i int) string {
	if live.Devices == nil || i >= len(live.Devices.Disks) || live.Devices.Disks[i].Alias == nil {
		return ""
	}
	return live.Devices.Disks[i].Alias.Name
}

func interfaceAlias(live *libvirtxml.Domain, i int) string {
	if live.Devices == nil || i >= len(live.Devices.Interfaces) || live.Devices.Interfaces[i].Alias == nil {
		return ""
	}
	return live.Devices.Interfaces[i].Alias.Name
}

// hasAlias reports whether a running domain has a disk or NIC with alias.
func hasAlias(live *libvirtxml.Domain, alias string) bool {
	if live.Devices == nil {
		return false
	}
	for _, d := range live.Devices.Disks {
		if d.Alias != nil && d.Alias.Name == alias {
			return true
		}
	}
	for _, n := range live.Devices.Interfaces {
		if n.Alias != nil && n.Alias.Name == alias {
			return true
		}
	}
	return false
}

// agentConnected reports whether a running domain's guest agent channel is
// there and a guest agent holds it open: asking an agent that is not
// there costs libvirt's agent timeout (5 s) per call.
func agentConnected(live *libvirtxml.Domain) bool {
	if live == nil || live.Devices == nil {
		return false
	}
	for _, ch := range live.Devices.Channels {
		if t := ch.Target; t != nil && t.VirtIO != nil && t.VirtIO.Name == guestAgentChannel {
			return t.VirtIO.State == "connected"
		}
	}
	return false
}

// hotplugDiskXML and hotplugInterfaceXML render the i-th disk or NIC of a
// persistent definition as the device XML to plug into the running domain.
// The definition is libvirt's own reading of what domainFromSpec rendered
// (so there is one renderer), taken after the define because only then
// does a new NIC have the MAC libvirt generated for it: the live device
// must get the same one. withAddress keeps the slot the definition gave the
// device, so that it keeps its name in the guest across the next boot;
// without it the running domain picks a free slot.
func hotplugDiskXML(def *libvirtxml.Domain, i int, withAddress bool) (string, error) {
	d := def.Devices.Disks[i]
	if !withAddress {
		d.Address = nil
	}
	return d.Marshal()
}

func hotplugInterfaceXML(def *libvirtxml.Domain, i int, withAddress bool) (string, error) {
	n := def.Devices.Interfaces[i]
	if !withAddress {
		n.Address = nil
	}
	return n.Marshal()
}
