package container

import (
	"context"
	"io"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/lxc"
)

// driver is what the steps need of the LXC layer; *lxc.Client is the real
// one, unit tests give a fake.
type driver interface {
	LXCPath() string
	CheckHost(spec virt.ContainerSpec) error
	CreateContainer(ctx context.Context, spec virt.ContainerSpec) (*virt.ContainerSpec, error)
	Container(ctx context.Context, name string) (*virt.ContainerSpec, error)
	StartContainer(ctx context.Context, name string) error
	StopContainer(ctx context.Context, name string, grace time.Duration) error
	DestroyContainer(ctx context.Context, name string) error
	UpdateContainer(ctx context.Context, name string, want virt.ContainerSpec) (*virt.ContainerSpec, error)
	Exec(ctx context.Context, name string, cmd virt.ExecSpec) (int, error)
	ExportContainer(ctx context.Context, name string, w io.Writer) error
}

var _ driver = (*lxc.Client)(nil)

// State bag keys shared between steps.
const (
	stateConfig        = "config"
	stateDriver        = "driver"
	stateUI            = "ui"
	stateHook          = "hook"
	stateCommunicator  = "communicator"
	stateSourceArchive = "source_archive"
	stateStandInInit   = "stand_in_init"
	stateMetadata      = "metadata"
	stateArchiveFiles  = "archive_files"
	stateError         = "error"
)
