package machine

import (
	"context"
	"io"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// Driver is what the steps need of the host; *libvirt.Client is the real
// one, and step tests use a fake.
type Driver interface {
	keySender
	MachineExists(ctx context.Context, name string) (bool, error)
	CreateMachine(ctx context.Context, spec virt.MachineSpec, start bool) (*virt.MachineSpec, error)
	MachineXML(ctx context.Context, name string) (string, error)
	WaitForAddress(ctx context.Context, name, mac string) ([]string, error)
	ShutdownMachine(ctx context.Context, name string, grace time.Duration) error
	WaitMachineStopped(ctx context.Context, name string) error
	WaitMachineReboot(ctx context.Context, name string, watching func()) error
	StreamConsole(ctx context.Context, name string, w io.Writer, ready func()) error
	Machine(ctx context.Context, name string) (*virt.MachineSpec, error)
	UpdateMachine(ctx context.Context, name string, want virt.MachineSpec, opts virt.UpdateOptions) (*virt.MachineSpec, error)
	PowerCycleMachine(ctx context.Context, name string) error
	StartMachine(ctx context.Context, name string) error
	UndefineMachine(ctx context.Context, name string) error
	Network(ctx context.Context, name string) (*virt.NetworkSpec, error)

	Volume(ctx context.Context, pool, name string) (*virt.VolumeSpec, error)
	VolumeByKey(ctx context.Context, key string) (*virt.VolumeSpec, error)
	CreateVolume(ctx context.Context, spec virt.VolumeSpec) (*virt.VolumeSpec, error)
	UploadVolume(ctx context.Context, spec virt.VolumeSpec, source string) (*virt.VolumeSpec, error)
	CopyVolume(ctx context.Context, srcKey, srcFormat string, dst virt.VolumeSpec) (*virt.VolumeSpec, error)
	ResizeVolume(ctx context.Context, key string, capacityBytes uint64) error
	DownloadVolume(ctx context.Context, key, path string) error
	DeleteVolume(ctx context.Context, key string) error
}

var _ Driver = (*libvirt.Client)(nil)

// State bag keys shared by the steps.
const (
	stateDriver      = "driver"
	stateConfig      = "config"
	stateTempDir     = "temp_dir"
	stateBuildVolume = "build_volume" // *virt.VolumeSpec: the disk the guest runs on
	stateBuildIsOut  = "build_is_output"
	stateISOVolume   = "iso_volume"
	stateCDVolume    = "cd_volume"
	stateFloppy      = "floppy_volume"
	stateKernel      = "kernel_boot" // *virt.DirectBoot
	stateMachine     = "machine"     // *virt.MachineSpec as created
	stateConsole     = "console"     // *consoleLog
	stateIP          = "ip"
	stateHTTPIP      = "http_ip"
	stateOutput      = "output_volume" // *virt.VolumeSpec
	stateDomainXML   = "domain_xml"
	stateOutputFiles = "output_files"
)
