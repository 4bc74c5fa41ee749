// Package virt is the hypervisor layer that both the Terraform provider and the
// Packer plugin call. It speaks in specs: plain structs that say what a guest,
// volume, pool, network or container should be, and that the backends
// (package libvirt for machines, package lxc for containers) both take and
// return, so that what the host really holds can be compared with what was
// asked for. Nothing here knows about Terraform or Packer.
package virt

import "time"

// DomainType is libvirt's domain type: the accelerator a machine runs on.
type DomainType string

const (
	// DomainKVM runs the guest with hardware virtualization; the default.
	DomainKVM DomainType = "kvm"
	// DomainQEMU runs the guest under QEMU's TCG emulator, for hosts (or
	// nested guests) where KVM is not usable.
	DomainQEMU DomainType = "qemu"
)

// DomainTypes lists the valid domain types, for validators and docs.
var DomainTypes = []DomainType{DomainKVM, DomainQEMU}

// Firmware selects how a machine boots.
type Firmware string

const (
	FirmwareBIOS Firmware = "bios"
	FirmwareEFI  Firmware = "efi"
)

// Firmwares lists the valid firmware values.
var Firmwares = []Firmware{FirmwareBIOS, FirmwareEFI}

// MachineState is a machine's run state as libvirt reports it.
type MachineState string

const (
	StateRunning  MachineState = "running"
	StateShutoff  MachineState = "shutoff"
	StatePaused   MachineState = "paused"
	StateCrashed  MachineState = "crashed"
	StateBlocked  MachineState = "blocked"
	StateShutdown MachineState = "shutting-down"
	StateSuspend  MachineState = "pmsuspended"
	StateUnknown  MachineState = "unknown"
)

// MachineSpec describes a full (KVM) guest. Fields marked "read back" are
// filled in by the backend and ignored on define.
type MachineSpec struct {
	Name string
	// UUID is read back; when set on define it is used as the domain's UUID.
	UUID        string
	Type        DomainType
	Description string
	// VCPU is the number of vCPUs at boot; MaxVCPU (0: same as VCPU) is the
	// ceiling up to which vCPUs can be added live.
	VCPU    uint
	MaxVCPU uint
	// MemoryMiB is the memory at boot; MaxMemoryMiB (0: same) the ceiling the
	// balloon can grow it to live.
	MemoryMiB    uint64
	MaxMemoryMiB uint64
	Firmware     Firmware
	// Boot, when set, boots a kernel and initrd from host paths directly.
	Boot       *DirectBoot
	Disks      []DiskSpec
	Interfaces []InterfaceSpec
	Console    ConsoleSpec
	Graphics   GraphicsSpec
	// QemuAgent adds the virtio-serial channel the qemu guest agent uses.
	QemuAgent bool
	// RNG adds a virtio-rng device fed from /dev/urandom. Plain bools
	// cannot tell "unset" from "false", so the layer takes them as given and
	// the front ends default RNG and Balloon to true.
	RNG bool
	// Balloon adds a virtio memory balloon (needed to change memory live).
	Balloon bool
	// Autostart starts the machine when libvirtd starts.
	Autostart bool

	// State is read back.
	State MachineState
	// PendingRestart is read back: the fields (named as in Change.Field)
	// whose persistent value the running machine does not have yet because
	// only a restart applies them. Empty for a stopped machine.
	PendingRestart []string
}

// DirectBoot boots a kernel from the host without a boot loader.
type DirectBoot struct {
	Kernel  string
	Initrd  string
	Cmdline string
}

// Disk buses and devices.
const (
	BusVirtio = "virtio"
	BusSATA   = "sata"
	BusSCSI   = "scsi"
	BusIDE    = "ide"
	// BusFDC is the floppy controller: floppies only, fda and fdb.
	BusFDC = "fdc"

	DeviceDisk  = "disk"
	DeviceCDROM = "cdrom"
	// DeviceFloppy is a floppy drive (Windows installers read F6 drivers
	// and answer files from one).
	DeviceFloppy = "floppy"
)

// DiskBuses and DiskDevices list valid values.
var (
	DiskBuses   = []string{BusVirtio, BusSATA, BusSCSI, BusIDE, BusFDC}
	DiskDevices = []string{DeviceDisk, DeviceCDROM, DeviceFloppy}
)

// DiskSpec attaches storage to a machine: a volume (by key or by pool and
// name) or a host path.
type DiskSpec struct {
	// VolumeKey is the libvirt volume key (its path for dir pools).
	VolumeKey string
	// Pool and Volume name a volume when VolumeKey is empty.
	Pool   string
	Volume string
	// Path is a host file or block device, for storage outside any pool.
	Path string
	// Format is the image format (qcow2, raw); read back from the volume
	// when empty.
	Format   string
	Bus      string // default virtio (sata for a cdrom, fdc for a floppy)
	Device   string // default disk
	ReadOnly bool
	// Target is the guest device name (vda, sda...); assigned in order when empty.
	Target string
}

// Interface types.
const (
	InterfaceNetwork = "network"
	InterfaceBridge  = "bridge"
	// InterfaceUser is QEMU's user-mode network: no host set-up, no inbound.
	InterfaceUser = "user"
)

// InterfaceTypes lists the valid interface types.
var InterfaceTypes = []string{InterfaceNetwork, InterfaceBridge, InterfaceUser}

// NIC models: libvirt's names for the emulated network cards.
const (
	// ModelVirtio is the paravirtual NIC (QEMU's virtio-net-pci); the default.
	ModelVirtio  = "virtio"
	ModelE1000   = "e1000"
	ModelE1000E  = "e1000e"
	ModelRTL8139 = "rtl8139"
	ModelVMXNET3 = "vmxnet3"
)

// InterfaceModels lists the valid NIC models. libvirt passes whatever model
// it is given on to QEMU, which fails only at start for one it lacks; these
// are the x86 models QEMU has (7.2 onwards, and long before) that common
// guests have drivers for: virtio, the Intel and Realtek cards most
// operating systems know without extra drivers, and VMware's, for images
// made on VMware.
var InterfaceModels = []string{ModelVirtio, ModelE1000, ModelE1000E, ModelRTL8139, ModelVMXNET3}

// InterfaceSpec is one NIC.
type InterfaceSpec struct {
	Type    string // network, bridge or user; inferred from Network/Bridge when empty
	Network string
	Bridge  string
	Model   string // one of InterfaceModels; default virtio
	// MAC is generated by libvirt when empty and read back.
	MAC string
	// Device is the host-side tap name, read back (vnetN).
	Device string
	// Addresses are read back while the machine runs: the guest's IP
	// addresses on this NIC (plain addresses, no prefix length; IPv4 before
	// IPv6), from the network's DHCP leases, the qemu guest agent when it
	// answers, and the host's ARP table for NICs nothing else knows about.
	// Link-local addresses are left out.
	Addresses []string
}

// Console types.
const (
	ConsolePTY  = "pty"
	ConsoleFile = "file"
)

// ConsoleSpec is the machine's first serial port.
type ConsoleSpec struct {
	Type string // pty (default) or file
	Path string // for file: where the serial output is written (appended)
}

// Graphics types.
const (
	GraphicsNone  = "none"
	GraphicsVNC   = "vnc"
	GraphicsSpice = "spice"
)

// GraphicsSpec is the machine's display.
type GraphicsSpec struct {
	Type   string // none (default), vnc, spice
	Listen string // address; default 127.0.0.1
}

// Volume formats.
const (
	FormatQCOW2 = "qcow2"
	FormatRaw   = "raw"
)

// VolumeFormats lists the valid volume formats.
var VolumeFormats = []string{FormatQCOW2, FormatRaw}

// VolumeSpec is a storage volume in a pool.
type VolumeSpec struct {
	Pool   string
	Name   string
	Format string // default qcow2
	// CapacityBytes is the virtual size. For a clone, 0 means the backing
	// volume's size, and a larger value grows the clone.
	CapacityBytes uint64
	// BackingVolumeKey makes the volume a copy-on-write clone of another
	// volume (qcow2 backing store): creating it costs the same whatever the
	// template's size.
	BackingVolumeKey string

	// Read back.
	Key             string
	Path            string
	AllocationBytes uint64
	BackingPath     string
	BackingFormat   string
}

// PoolSpec is a storage pool. Only directory pools are managed for now.
type PoolSpec struct {
	Name      string
	Type      string // dir
	Path      string
	Autostart bool

	// Read back.
	UUID            string
	Active          bool
	CapacityBytes   uint64
	AllocationBytes uint64
	AvailableBytes  uint64
}

// Pool types.
const PoolDir = "dir"

// Network modes.
const (
	NetworkNAT      = "nat"
	NetworkRoute    = "route"
	NetworkIsolated = "isolated"
	NetworkBridge   = "bridge"
)

// NetworkModes lists the valid network modes.
var NetworkModes = []string{NetworkNAT, NetworkRoute, NetworkIsolated, NetworkBridge}

// NetworkSpec is a libvirt virtual network.
type NetworkSpec struct {
	Name string
	Mode string // nat (default), route, isolated, bridge
	// Bridge is the host bridge: created by libvirt for nat/route/isolated
	// (named by libvirt when empty), an existing one for bridge mode.
	Bridge string
	// Addresses are the host's addresses on the network in CIDR form
	// (10.17.3.1/24); at most one IPv4 and one IPv6.
	Addresses []string
	// DHCP serves each address range except the host's own address; libvirt
	// caps a range at 65536 addresses, so wider subnets get the block around
	// the host's address.
	DHCP      bool
	Domain    string
	Autostart bool

	// Read back.
	UUID   string
	Active bool
}

// Lease is a DHCP lease handed out on a libvirt network.
type Lease struct {
	MAC      string
	IP       string
	Prefix   uint
	Hostname string
	Expiry   time.Time
}

// ContainerState is an LXC container's run state.
type ContainerState string

const (
	ContainerRunning  ContainerState = "RUNNING"
	ContainerStopped  ContainerState = "STOPPED"
	ContainerStarting ContainerState = "STARTING"
	ContainerStopping ContainerState = "STOPPING"
	ContainerFrozen   ContainerState = "FROZEN"
)

// ContainerSpec describes an LXC system container. Exactly one source is set:
// Template (a snapshot clone of a stopped template container), Archive (a
// rootfs tarball) or LXCTemplate (an LXC template script).
type ContainerSpec struct {
	Name     string
	Hostname string // default: Name

	Template    string
	Archive     string
	LXCTemplate *LXCTemplate

	// Unprivileged maps the container's ids to the host's subordinate ranges
	// for root (/etc/subuid, /etc/subgid).
	Unprivileged bool
	// IDMap is read back (and may be given to override the host's ranges).
	IDMap []IDMapEntry

	MemoryMiB uint64 // 0: no limit
	// SwapMiB is swap allowed on top of MemoryMiB (needs a memory limit);
	// 0 leaves swap unlimited.
	SwapMiB uint64
	// CPUs is a cpuset ("0-1", "0,2"); empty: all host CPUs.
	CPUs string
	// CPUWeight is the relative CPU share on cgroup v2's cpu.weight scale
	// (1-10000, default 100); on a v1 host it is converted to cpu.shares as
	// systemd does. 0 leaves the default.
	CPUWeight uint64

	Interfaces []ContainerInterfaceSpec
	Mounts     []MountSpec
	Nesting    bool
	// StartOnBoot sets lxc.start.auto.
	StartOnBoot bool
	// Config holds extra raw lxc.* keys that no other field manages.
	Config map[string]string

	// Read back.
	State         ContainerState
	PID           int
	IPv4Addresses []string
	// PendingRestart names the fields (snake_case, as in SpecErrors) whose
	// saved value differs from what the running container uses: they take
	// effect at its next start. Empty when it is stopped.
	PendingRestart []string
}

// ContainerTemplate is a stopped container that snapshot clones can be made
// from, with what is known of its contents. Metadata comes from the file a
// template build leaves in the container's directory (OS, release, arch,
// build time); it is empty for containers made otherwise.
type ContainerTemplate struct {
	Name string
	// Clones are the snapshot clones whose root filesystems lie on it.
	Clones   []string
	Metadata map[string]string
}

// LXCTemplate is an LXC template script (busybox, download, debian...) and
// its arguments.
type LXCTemplate struct {
	Name string
	Args []string
}

// IDMapEntry is one lxc.idmap line: Kind u or g, container id, host id, count.
type IDMapEntry struct {
	Kind        string
	ContainerID uint32
	HostID      uint32
	Count       uint32
}

// ContainerInterfaceSpec is one veth NIC on a host bridge.
type ContainerInterfaceSpec struct {
	Bridge      string // default lxcbr0
	Name        string // default eth0, eth1...
	HWAddr      string // generated when empty, read back
	IPv4Address string // CIDR, static
	IPv4Gateway string
	MTU         uint
}

// MountSpec bind-mounts a host path into a container.
type MountSpec struct {
	Source    string // absolute host path
	Target    string // absolute path in the container
	ReadOnly  bool
	CreateDir bool // create the target in the container when missing
}

// HostInfo is what a host says about itself.
type HostInfo struct {
	Hostname          string
	Arch              string
	CPUs              uint
	MemoryBytes       uint64
	KVMAvailable      bool
	DomainTypes       []string
	LibvirtVersion    string
	HypervisorVersion string
	LXCVersion        string
}
