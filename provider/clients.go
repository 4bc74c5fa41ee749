package provider

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/lxc"
)

// clients holds the provider's connections to the host. Each is opened on
// first use and then shared by every resource and data source, so a
// configuration that only manages containers never needs libvirtd, and one
// that manages fifty machines opens one libvirt connection, not fifty.
type clients struct {
	uri     string
	lxcPath string
	log     hclog.Logger

	lvOnce sync.Once
	lv     *libvirt.Client
	lvErr  error

	lxcOnce sync.Once
	lxc     *lxc.Client
	lxcErr  error
}

func newClients(uri, lxcPath string, log hclog.Logger) *clients {
	return &clients{uri: uri, lxcPath: lxcPath, log: log}
}

// Libvirt returns the shared libvirt client. A failed connection is
// remembered: every resource in the run reports the same clear error instead
// of each waiting out its own timeout.
func (c *clients) Libvirt(ctx context.Context) (*libvirt.Client, error) {
	c.lvOnce.Do(func() {
		c.lv, c.lvErr = libvirt.New(ctx, libvirt.Options{URI: c.uri, Logger: c.log})
	})
	return c.lv, c.lvErr
}

// LXC returns the shared LXC client for lxc_path.
func (c *clients) LXC() (*lxc.Client, error) {
	c.lxcOnce.Do(func() {
		c.lxc, c.lxcErr = lxc.New(c.lxcPath, c.log)
		if c.lxcErr != nil {
			c.lxcErr = fmt.Errorf("LXC at %s: %w", c.lxcPath, c.lxcErr)
		}
	})
	return c.lxc, c.lxcErr
}

// newLogger writes internal/virt's logs as JSON lines on stderr: Terraform's
// plugin host parses those and files them under the provider's log level
// (TF_LOG_PROVIDER or TF_LOG), next to the framework's own logs.
func newLogger(w io.Writer) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv("TF_LOG_PROVIDER"))
	if level == hclog.NoLevel {
		level = hclog.LevelFromString(os.Getenv("TF_LOG"))
	}
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "virt",
		Level:      level,
		Output:     w,
		JSONFormat: true,
	})
}

// clientsFrom is what Configure methods of resources and data sources call.
func clientsFrom(data any) (*clients, error) {
	if data == nil {
		return nil, nil // provider not configured yet (validate)
	}
	c, ok := data.(*clients)
	if !ok {
		return nil, fmt.Errorf("unexpected provider data %T; this is a bug in the provider, please report it", data)
	}
	return c, nil
}
