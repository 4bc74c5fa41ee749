package virt

import (
	"context"
	"io"
	"time"
)

// The interfaces below are what front ends program against. Each operation
// blocks until the host has done what it says (a started machine is running, a
// stopped container is stopped) or ctx ends; none returns before that, so
// callers never poll.

// HostBackend reports facts about the host.
type HostBackend interface {
	HostInfo(ctx context.Context) (*HostInfo, error)
}

// MachineBackend manages full guests.
type MachineBackend interface {
	// DefineMachine validates spec, fills in defaults and defines a
	// persistent domain (not started). It returns ErrExists when the name is
	// taken and a SpecErrors for bad input.
	DefineMachine(ctx context.Context, spec MachineSpec) (*MachineSpec, error)
	// CreateMachine is DefineMachine and, when start is set, a boot, as one
	// operation: a start that fails undefines the machine again.
	CreateMachine(ctx context.Context, spec MachineSpec, start bool) (*MachineSpec, error)
	// Machine reads the persistent definition and the run state back into a
	// spec, with what only a running machine knows (tap names, addresses,
	// PendingRestart); ErrNotFound when there is no such domain.
	Machine(ctx context.Context, name string) (*MachineSpec, error)
	// MachineByUUID is Machine for the machine with that UUID.
	MachineByUUID(ctx context.Context, uuid string) (*MachineSpec, error)
	// UpdateMachine turns the machine into spec, live where it can (see
	// PlanMachineUpdate), and returns it as read back; ErrNeedsReplace when
	// spec changes what only a new machine can have.
	UpdateMachine(ctx context.Context, name string, spec MachineSpec, opts UpdateOptions) (*MachineSpec, error)
	// WaitForAddress waits until the running machine's NIC with the given
	// MAC has an IP address and returns its addresses.
	WaitForAddress(ctx context.Context, name, mac string) ([]string, error)
	ListMachines(ctx context.Context) ([]string, error)
	StartMachine(ctx context.Context, name string) error
	// ShutdownMachine asks the guest to power off (ACPI) and waits up to
	// grace for it, then pulls the plug. A machine that is not running is
	// left as it is.
	ShutdownMachine(ctx context.Context, name string, grace time.Duration) error
	// DestroyMachine pulls the plug at once.
	DestroyMachine(ctx context.Context, name string) error
	// UndefineMachine removes the definition, its NVRAM and managed save. A
	// running machine is destroyed first.
	UndefineMachine(ctx context.Context, name string) error
	// DeleteMachine is ShutdownMachine then UndefineMachine, returning the
	// definition removed.
	DeleteMachine(ctx context.Context, name string, grace time.Duration) (*MachineSpec, error)
}

// StorageBackend manages pools and volumes.
type StorageBackend interface {
	CreatePool(ctx context.Context, spec PoolSpec) (*PoolSpec, error)
	Pool(ctx context.Context, name string) (*PoolSpec, error)
	PoolByUUID(ctx context.Context, uuid string) (*PoolSpec, error)
	ListPools(ctx context.Context) ([]string, error)
	// StartPool starts a stopped pool; SetPoolAutostart changes autostart
	// without touching the running pool.
	StartPool(ctx context.Context, name string) error
	SetPoolAutostart(ctx context.Context, name string, autostart bool) error
	DeletePool(ctx context.Context, name string) error
	ListVolumes(ctx context.Context, pool string) ([]string, error)

	// CreateVolume makes an empty volume, or a copy-on-write clone when
	// spec.BackingVolumeKey is set.
	CreateVolume(ctx context.Context, spec VolumeSpec) (*VolumeSpec, error)
	// UploadVolume makes a volume from a local image file, streamed to the
	// host; the volume's format and capacity come from the file.
	UploadVolume(ctx context.Context, spec VolumeSpec, source string) (*VolumeSpec, error)
	Volume(ctx context.Context, pool, name string) (*VolumeSpec, error)
	VolumeByKey(ctx context.Context, key string) (*VolumeSpec, error)
	ResizeVolume(ctx context.Context, key string, capacityBytes uint64) error
	DeleteVolume(ctx context.Context, key string) error
}

// NetworkBackend manages libvirt virtual networks.
type NetworkBackend interface {
	// CreateNetwork defines and starts a network and sets its autostart.
	CreateNetwork(ctx context.Context, spec NetworkSpec) (*NetworkSpec, error)
	Network(ctx context.Context, name string) (*NetworkSpec, error)
	NetworkByUUID(ctx context.Context, uuid string) (*NetworkSpec, error)
	ListNetworks(ctx context.Context) ([]string, error)
	// StartNetwork starts a stopped network; SetNetworkAutostart changes
	// autostart without touching the running network.
	StartNetwork(ctx context.Context, name string) error
	SetNetworkAutostart(ctx context.Context, name string, autostart bool) error
	DeleteNetwork(ctx context.Context, name string) error
	Leases(ctx context.Context, network string) ([]Lease, error)
}

// ExecSpec is a command to run inside a container.
type ExecSpec struct {
	Args   []string
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// ContainerBackend manages LXC containers.
type ContainerBackend interface {
	// Version is the liblxc version.
	Version() string
	// CreateContainer validates spec and creates the container (stopped).
	// A create that fails removes whatever it made.
	CreateContainer(ctx context.Context, spec ContainerSpec) (*ContainerSpec, error)
	Container(ctx context.Context, name string) (*ContainerSpec, error)
	ListContainers(ctx context.Context) ([]string, error)
	StartContainer(ctx context.Context, name string) error
	// StopContainer asks init to shut down and waits up to grace, then kills.
	StopContainer(ctx context.Context, name string, grace time.Duration) error
	// DestroyContainer stops and removes the container and its storage.
	DestroyContainer(ctx context.Context, name string) error
	// Exec runs a command in a running container and returns its exit code.
	Exec(ctx context.Context, name string, cmd ExecSpec) (int, error)
	// UpdateContainer brings an existing container to want (source fields
	// are ignored: a new source means a new container). Limits (memory,
	// swap, cpus, cpu_weight) change live on a running container and are
	// saved; everything else is saved for the next start and listed in the
	// returned spec's PendingRestart while it runs. It returns the container
	// as read back.
	UpdateContainer(ctx context.Context, name string, want ContainerSpec) (*ContainerSpec, error)
	// ContainerTemplates lists the stopped containers on the host that
	// clones can be made from.
	ContainerTemplates(ctx context.Context) ([]ContainerTemplate, error)
}
