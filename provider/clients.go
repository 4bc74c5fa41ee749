package provider

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/lxc"
)

// clients holds the provider's connections. Each host's libvirt client is
// made on first use and then shared by every resource and data source that
// names the same host, so a configuration that only manages containers never
// needs libvirtd, and one that manages fifty machines opens a few
// connections (as many as its calls at once need; see libvirt.Client), not
// fifty.
type clients struct {
	defaultURI string
	// hosts maps the names used in resources' host attribute to URIs.
	hosts   map[string]string
	lxcPath string
	log     hclog.Logger

	mu      sync.Mutex
	libvirt map[string]*lazyLibvirt // by URI: two names for one URI share it

	lxcOnce sync.Once
	lxc     *lxc.Client
	lxcErr  error
}

type lazyLibvirt struct {
	once   sync.Once
	client *libvirt.Client
	err    error
}

func newClients(defaultURI string, hosts map[string]string, lxcPath string, log hclog.Logger) *clients {
	return &clients{
		defaultURI: defaultURI,
		hosts:      hosts,
		lxcPath:    lxcPath,
		log:        log,
		libvirt:    map[string]*lazyLibvirt{},
	}
}

// HostURI resolves a resource's host attribute: empty means the provider's
// uri, anything else must be a key of the provider's hosts map.
func (c *clients) HostURI(host string) (string, error) {
	if host == "" {
		return c.defaultURI, nil
	}
	if uri, ok := c.hosts[host]; ok {
		return uri, nil
	}
	names := make([]string, 0, len(c.hosts))
	for name := range c.hosts {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "", fmt.Errorf("host %q is not defined: the provider configuration has no hosts map", host)
	}
	return "", fmt.Errorf("host %q is not defined in the provider's hosts (defined: %s)", host, strings.Join(names, ", "))
}

// Libvirt returns the shared libvirt client for a host (see HostURI). A
// failed connection is remembered: every resource on that host reports the
// same clear error instead of each waiting out its own timeout.
func (c *clients) Libvirt(ctx context.Context, host string) (*libvirt.Client, error) {
	uri, err := c.HostURI(host)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	l, ok := c.libvirt[uri]
	if !ok {
		l = &lazyLibvirt{}
		c.libvirt[uri] = l
	}
	c.mu.Unlock()
	l.once.Do(func() {
		l.client, l.err = libvirt.New(ctx, libvirt.Options{URI: uri, Logger: c.log})
	})
	return l.client, l.err
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

// pluginStderr is this process's stderr as it was when the program
// started. go-plugin's Serve then points os.Stderr at a pipe that it
// forwards over the plugin protocol's stdio stream, and Terraform files
// nothing of that stream in its log: lines written to os.Stderr after
// Serve began (the logger is made at Configure) were lost. The real stderr
// is the one Terraform parses JSON log lines from, as it does the SDK's.
var pluginStderr = os.Stderr

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
