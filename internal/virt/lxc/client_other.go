//go:build !(linux && cgo)

package lxc

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var _ virt.ContainerBackend = (*Client)(nil)

// errNoLXC is what every call of this build says.
var errNoLXC = fmt.Errorf("containers need a Linux host with liblxc (this build has no cgo/liblxc): %w", virt.ErrUnsupported)

// Client stands in for the liblxc backend in builds without cgo or for
// other systems; New refuses to make one.
type Client struct{}

// New reports that this build cannot manage containers.
func New(lxcPath string, log hclog.Logger) (*Client, error) { return nil, errNoLXC }

func (*Client) Version() string { return "" }

func (*Client) LXCPath() string { return "" }

func (*Client) CreateContainer(context.Context, virt.ContainerSpec) (*virt.ContainerSpec, error) {
	return nil, errNoLXC
}

func (*Client) Container(context.Context, string) (*virt.ContainerSpec, error) { return nil, errNoLXC }

func (*Client) ListContainers(context.Context) ([]string, error) { return nil, errNoLXC }

func (*Client) StartContainer(context.Context, string) error { return errNoLXC }

func (*Client) StopContainer(context.Context, string, time.Duration) error { return errNoLXC }

func (*Client) DestroyContainer(context.Context, string) error { return errNoLXC }

func (*Client) Exec(context.Context, string, virt.ExecSpec) (int, error) { return 0, errNoLXC }

func (*Client) UpdateContainer(context.Context, string, virt.ContainerSpec) (*virt.ContainerSpec, error) {
	return nil, errNoLXC
}

func (*Client) CheckHost(virt.ContainerSpec) error { return errNoLXC }

func (*Client) ContainerTemplates(context.Context) ([]virt.ContainerTemplate, error) {
	return nil, errNoLXC
}
