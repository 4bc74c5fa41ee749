package libvirt

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var _ virt.NetworkBackend = (*Client)(nil)

// CreateNetwork defines the network, starts it and sets its autostart. A
// network that fails to start is undefined again, so that a failed create
// leaves nothing to import or collide with.
func (c *Client) CreateNetwork(ctx context.Context, spec virt.NetworkSpec) (*virt.NetworkSpec, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	doc, err := networkDoc(spec).Marshal()
	if err != nil {
		return nil, fmt.Errorf("render network %q: %w", spec.Name, err)
	}
	var out *virt.NetworkSpec
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		for attempt := 1; ; attempt++ {
			nw, err := defineNetwork(lv, spec.Name, doc)
			if err != nil {
				return err
			}
			err = startNetwork(lv, nw, spec.Autostart)
			if err == nil {
				c.log.Debug("network created", "network", spec.Name, "mode", spec.Mode)
				out, err = readNetwork(lv, nw)
				return err
			}
			c.undefineNetwork(lv, nw)
			// A bridge name libvirt chose can still be taken by a network
			// another client defined at the same moment; defining again
			// picks another.
			if spec.Bridge != "" || attempt == maxBridgeNameAttempts || !isInterfaceExists(err) {
				return err
			}
			c.log.Debug("bridge name libvirt chose was taken meanwhile; defining again", "network", spec.Name, "error", err)
		}
	})
	return out, err
}

// networkDefineMu serializes this process's network definitions. libvirt
// names the bridge of a network defined without one (virbrN) by looking at
// the networks already defined, and two definitions at once can get the
// same name, which the second start then fails on ("File exists").
var networkDefineMu sync.Mutex

// maxBridgeNameAttempts bounds the re-definitions when clients outside this
// process race for the same automatic bridge name.
const maxBridgeNameAttempts = 5

func defineNetwork(lv *golibvirt.Libvirt, name, doc string) (golibvirt.Network, error) {
	networkDefineMu.Lock()
	defer networkDefineMu.Unlock()
	// Define with a taken name fails with a generic code, and one with the
	// same UUID would silently redefine: ask first.
	if _, err := lv.NetworkLookupByName(name); err == nil {
		return golibvirt.Network{}, virt.ExistsError("network", name)
	} else if !isNotFoundCode(err) {
		return golibvirt.Network{}, wrap(err, "look up", "network", name)
	}
	nw, err := lv.NetworkDefineXML(doc)
	if err != nil {
		return golibvirt.Network{}, wrap(err, "define", "network", name)
	}
	return nw, nil
}

// isInterfaceExists reports libvirt's failure to create a host interface
// that is already there; libvirt passes on only the errno's text.
func isInterfaceExists(err error) bool {
	return golibvirt.ErrorNumber(libvirtCode(err)) == golibvirt.ErrSystemError &&
		strings.Contains(strings.ToLower(err.Error()), syscall.EEXIST.Error())
}

func startNetwork(lv *golibvirt.Libvirt, nw golibvirt.Network, autostart bool) error {
	if err := lv.NetworkCreate(nw); err != nil {
		return wrap(err, "start", "network", nw.Name)
	}
	if autostart {
		if err := lv.NetworkSetAutostart(nw, 1); err != nil {
			return wrap(err, "set autostart of", "network", nw.Name)
		}
	}
	return nil
}

// undefineNetwork undoes a half-made network; its own failures are only
// logged, as the caller reports the error that made the undo necessary.
func (c *Client) undefineNetwork(lv *golibvirt.Libvirt, nw golibvirt.Network) {
	if active, err := lv.NetworkIsActive(nw); err == nil && active == 1 {
		if err := lv.NetworkDestroy(nw); err != nil {
			c.log.Warn("undo network create: destroy failed", "network", nw.Name, "error", err)
		}
	}
	if err := lv.NetworkUndefine(nw); err != nil {
		c.log.Warn("undo network create: undefine failed", "network", nw.Name, "error", err)
	}
}

// networkDoc renders a spec that Validate accepted.
func networkDoc(spec virt.NetworkSpec) *libvirtxml.Network {
	doc := &libvirtxml.Network{Name: spec.Name}
	switch spec.Mode {
	case virt.NetworkNAT, virt.NetworkRoute, virt.NetworkBridge:
		doc.Forward = &libvirtxml.NetworkForward{Mode: spec.Mode}
	}
	if spec.Bridge != "" {
		doc.Bridge = &libvirtxml.NetworkBridge{Name: spec.Bridge}
	}
	if spec.Domain != "" {
		doc.Domain = &libvirtxml.NetworkDomain{Name: spec.Domain}
	}
	for _, a := range spec.Addresses {
		p := netip.MustParsePrefix(a)
		ip := libvirtxml.NetworkIP{Address: p.Addr().String(), Prefix: uint(p.Bits())}
		if p.Addr().Is6() {
			ip.Family = "ipv6"
		}
		if spec.DHCP {
			ip.DHCP = &libvirtxml.NetworkDHCP{}
			for _, r := range dhcpRanges(p) {
				ip.DHCP.Ranges = append(ip.DHCP.Ranges, libvirtxml.NetworkDHCPRange{Start: r[0].String(), End: r[1].String()})
			}
		}
		doc.IPs = append(doc.IPs, ip)
	}
	return doc
}

// maxRangeBits is the size of the largest block one libvirt DHCP range may
// span: libvirt refuses ranges of more than 65535 addresses.
const maxRangeBits = 16

// dhcpRanges are the addresses DHCP hands out for the host address p: its
// subnet without the network address, the IPv4 broadcast address and the
// host's own, as up to two ranges around the host. A subnet larger than
// 65536 addresses (wider than /16 for IPv4, /112 for IPv6, so every usual
// IPv6 /64) is served only in the 65536-address block that holds the host
// address, since libvirt caps the size of a range.
func dhcpRanges(p netip.Prefix) [][2]netip.Addr {
	host := p.Addr()
	block := netip.PrefixFrom(host, max(p.Bits(), host.BitLen()-maxRangeBits)).Masked()
	first, last := block.Addr(), lastAddr(block)
	if first == p.Masked().Addr() {
		first = first.Next()
	}
	if host.Is4() && last == lastAddr(p) {
		last = last.Prev()
	}
	var out [][2]netip.Addr
	if first.Less(host) {
		out = append(out, [2]netip.Addr{first, host.Prev()})
	}
	if host.Less(last) {
		out = append(out, [2]netip.Addr{host.Next(), last})
	}
	return out
}

// lastAddr is the highest address of the prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Network reads a network's definition and state back into a spec.
func (c *Client) Network(ctx context.Context, name string) (*virt.NetworkSpec, error) {
	var out *virt.NetworkSpec
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		nw, err := lv.NetworkLookupByName(name)
		if err != nil {
			return wrap(err, "look up", "network", name)
		}
		out, err = readNetwork(lv, nw)
		return err
	})
	return out, err
}

func readNetwork(lv *golibvirt.Libvirt, nw golibvirt.Network) (*virt.NetworkSpec, error) {
	doc, err := lv.NetworkGetXMLDesc(nw, 0)
	if err != nil {
		return nil, wrap(err, "read", "network", nw.Name)
	}
	active, err := lv.NetworkIsActive(nw)
	if err != nil {
		return nil, wrap(err, "get state of", "network", nw.Name)
	}
	autostart, err := lv.NetworkGetAutostart(nw)
	if err != nil {
		return nil, wrap(err, "get autostart of", "network", nw.Name)
	}
	var x libvirtxml.Network
	if err := x.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("parse network %q: %w", nw.Name, err)
	}
	spec, err := specFromNetwork(&x)
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", nw.Name, err)
	}
	spec.Active = active == 1
	spec.Autostart = autostart == 1
	return spec, nil
}

// specFromNetwork maps libvirt's network XML to a spec. Forward modes this
// package does not create (passthrough, open...) are passed on as libvirt
// names them, so that a front end can show what is there.
func specFromNetwork(x *libvirtxml.Network) (*virt.NetworkSpec, error) {
	spec := &virt.NetworkSpec{Name: x.Name, UUID: x.UUID, Mode: virt.NetworkIsolated}
	if x.Forward != nil {
		spec.Mode = x.Forward.Mode
		if spec.Mode == "" {
			spec.Mode = virt.NetworkNAT // libvirt's default forward mode
		}
	}
	if x.Bridge != nil {
		spec.Bridge = x.Bridge.Name
	}
	if x.Domain != nil {
		spec.Domain = x.Domain.Name
	}
	for _, ip := range x.IPs {
		addr, err := netip.ParseAddr(ip.Address)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", ip.Address, err)
		}
		bits := int(ip.Prefix)
		if ip.Netmask != "" {
			mask, err := netip.ParseAddr(ip.Netmask)
			if err != nil || !mask.Is4() {
				return nil, fmt.Errorf("netmask %q of %s is not an IPv4 mask", ip.Netmask, ip.Address)
			}
			ones, size := net.IPMask(mask.AsSlice()).Size()
			if size == 0 {
				return nil, fmt.Errorf("netmask %q of %s is not contiguous", ip.Netmask, ip.Address)
			}
			bits = ones
		} else if ip.Prefix == 0 {
			bits = defaultPrefix(addr)
		}
		spec.Addresses = append(spec.Addresses, netip.PrefixFrom(addr, bits).String())
		if ip.DHCP != nil && len(ip.DHCP.Ranges) > 0 {
			spec.DHCP = true
		}
	}
	return spec, nil
}

// defaultPrefix is the prefix libvirt assumes for an address given without
// prefix or netmask: the classful network for IPv4, /64 for IPv6.
func defaultPrefix(a netip.Addr) int {
	if a.Is6() {
		return 64
	}
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}

// NetworkByUUID reads the network with that UUID (in its usual 36-character
// form) back into a spec.
func (c *Client) NetworkByUUID(ctx context.Context, uuid string) (*virt.NetworkSpec, error) {
	u, err := parseUUID(uuid)
	if err != nil {
		return nil, err
	}
	var out *virt.NetworkSpec
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		nw, err := lv.NetworkLookupByUUID(u)
		if err != nil {
			return wrap(err, "look up", "network with UUID", uuid)
		}
		out, err = readNetwork(lv, nw)
		return err
	})
	return out, err
}

// ListNetworks names every network of the host, active or not, sorted.
func (c *Client) ListNetworks(ctx context.Context) ([]string, error) {
	var names []string
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		nets, _, err := lv.ConnectListAllNetworks(1, 0)
		if err != nil {
			return err
		}
		for _, n := range nets {
			names = append(names, n.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// StartNetwork starts a defined network; one that already runs is left as
// it is.
func (c *Client) StartNetwork(ctx context.Context, name string) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		nw, err := lv.NetworkLookupByName(name)
		if err != nil {
			return wrap(err, "look up", "network", name)
		}
		active, err := lv.NetworkIsActive(nw)
		if err != nil {
			return wrap(err, "get state of", "network", name)
		}
		if active == 1 {
			return nil
		}
		if err := lv.NetworkCreate(nw); err != nil {
			return wrap(err, "start", "network", name)
		}
		c.log.Debug("network started", "network", name)
		return nil
	})
}

// SetNetworkAutostart says whether libvirtd starts the network when it
// starts itself. It takes effect at once and needs no restart of the network.
func (c *Client) SetNetworkAutostart(ctx context.Context, name string, autostart bool) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		nw, err := lv.NetworkLookupByName(name)
		if err != nil {
			return wrap(err, "look up", "network", name)
		}
		var v int32
		if autostart {
			v = 1
		}
		return wrap(lv.NetworkSetAutostart(nw, v), "set autostart of", "network", name)
	})
}

// DeleteNetwork stops the network when it runs and removes its definition.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		nw, err := lv.NetworkLookupByName(name)
		if err != nil {
			return wrap(err, "look up", "network", name)
		}
		active, err := lv.NetworkIsActive(nw)
		if err != nil {
			return wrap(err, "get state of", "network", name)
		}
		persistent, err := lv.NetworkIsPersistent(nw)
		if err != nil {
			return wrap(err, "get persistence of", "network", name)
		}
		if active == 1 {
			if err := lv.NetworkDestroy(nw); err != nil {
				return wrap(err, "stop", "network", name)
			}
		}
		if persistent == 0 {
			return nil // a transient network is gone once stopped
		}
		return wrap(lv.NetworkUndefine(nw), "undefine", "network", name)
	})
}

// Leases lists the DHCP leases the network's dnsmasq has handed out; an
// empty list (not nil) when there are none.
func (c *Client) Leases(ctx context.Context, network string) ([]virt.Lease, error) {
	out := []virt.Lease{}
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		nw, err := lv.NetworkLookupByName(network)
		if err != nil {
			return wrap(err, "look up", "network", network)
		}
		leases, _, err := lv.NetworkGetDhcpLeases(nw, nil, 1, 0)
		if err != nil {
			return wrap(err, "get DHCP leases of", "network", network)
		}
		for _, l := range leases {
			out = append(out, virt.Lease{
				MAC:      optString(l.Mac),
				IP:       l.Ipaddr,
				Prefix:   uint(l.Prefix),
				Hostname: optString(l.Hostname),
				Expiry:   time.Unix(l.Expirytime, 0),
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func optString(s golibvirt.OptString) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
