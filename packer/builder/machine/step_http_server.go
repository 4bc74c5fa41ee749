package machine

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
)

// stepHTTPServer runs Packer's HTTP server (http_directory, http_content)
// on the address the guest reaches this machine at, not on all of this
// machine's addresses: what it serves, answer files, carries passwords.
// Unless http_bind_address is set, that is the host's address on the build
// network, from the network's definition (192.168.122.1 on libvirt's
// default network), which is also what {{ .HTTPIP }} gives.
type stepHTTPServer struct {
	server *commonsteps.StepHTTPServer
}

func (s *stepHTTPServer) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	s.server = commonsteps.HTTPServerFromHTTPConfig(&c.HTTPConfig)
	switch {
	case !c.servesHTTP():
	case c.httpBindDefault:
		addr, err := httpBindAddress(ctx, state.Get(stateDriver).(Driver), c)
		if err != nil {
			return halt(state, err)
		}
		s.server.HTTPAddress = addr
		state.Put(stateHTTPIP, addr)
	case !isWildcard(c.HTTPAddress):
		// Where the server is, is where the guest must go.
		state.Put(stateHTTPIP, c.HTTPAddress)
	}
	return s.server.Run(ctx, state)
}

func (s *stepHTTPServer) Cleanup(state multistep.StateBag) {
	if s.server != nil {
		s.server.Cleanup(state)
	}
}

// servesHTTP reports whether the build runs Packer's HTTP server.
func (c *Config) servesHTTP() bool {
	return c.HTTPDir != "" || len(c.HTTPContent) > 0
}

// httpBindAddress is the host's address on the build network, for an HTTP
// server on this machine: only when the libvirt host is this machine is
// that address one of this machine's.
func httpBindAddress(ctx context.Context, d Driver, c *Config) (string, error) {
	if !isLocalURI(c.URI) {
		return "", fmt.Errorf("http_bind_address: set it to the address of this machine that the guest reaches: the libvirt host %s is another machine, so the HTTP server cannot bind to its address on network %q", c.URI, c.Network)
	}
	n, err := d.Network(ctx, c.Network)
	if err != nil {
		return "", fmt.Errorf("http_bind_address: unset, and the host's address on network %q (where the HTTP server binds then) is unknown: %w", c.Network, err)
	}
	if !n.Active {
		return "", fmt.Errorf("http_bind_address: network %q is not active, so the host has no address on it to bind the HTTP server to: start it (virsh net-start %s)", c.Network, c.Network)
	}
	addr, err := hostAddress(n)
	if err != nil {
		return "", fmt.Errorf("http_bind_address: unset, and %w: set it to the address of this machine that the guest reaches", err)
	}
	return addr, nil
}

// isWildcard reports whether a bind address means all of the machine's
// addresses.
func isWildcard(addr string) bool {
	if addr == "" {
		return true
	}
	a, err := netip.ParseAddr(addr)
	return err == nil && a.IsUnspecified()
}
