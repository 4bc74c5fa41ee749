package virt

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

// WithDefaults returns the spec with empty fields set to their defaults. Call
// it before Validate: Validate checks the spec as it will be sent.
func (s NetworkSpec) WithDefaults() NetworkSpec {
	if s.Mode == "" {
		s.Mode = NetworkNAT
	}
	return s
}

// Validate reports every problem of the spec at once as SpecErrors.
func (s NetworkSpec) Validate() error {
	var es SpecErrors
	checkObjectName(&es, "name", s.Name)
	if !slices.Contains(NetworkModes, s.Mode) {
		es.add("mode", "must be one of %s, got %q", strings.Join(NetworkModes, ", "), s.Mode)
	}
	if s.Bridge != "" {
		checkInterfaceName(&es, "bridge", s.Bridge)
	}

	if s.Mode == NetworkBridge {
		// The host bridge belongs to the host's own network set-up: libvirt
		// only plugs guests into it, so it has no addresses, DHCP or DNS of
		// its own to offer.
		if s.Bridge == "" {
			es.add("bridge", "must name an existing host bridge in %s mode", NetworkBridge)
		}
		if len(s.Addresses) > 0 {
			es.add("addresses", "must be empty in %s mode (the host bridge's addresses are managed outside libvirt)", NetworkBridge)
		}
		if s.DHCP {
			es.add("dhcp", "is not available in %s mode", NetworkBridge)
		}
		if s.Domain != "" {
			es.add("domain", "is not available in %s mode", NetworkBridge)
		}
	} else {
		if len(s.Addresses) == 0 && (s.Mode == NetworkNAT || s.Mode == NetworkRoute) {
			// libvirt refuses to define it: what it forwards is the subnet.
			es.add("addresses", "must hold at least one address in %s mode: the network forwards that subnet", s.Mode)
		}
		checkNetworkAddresses(&es, s.Addresses)
		if s.DHCP && len(s.Addresses) == 0 {
			es.add("dhcp", "needs at least one address to serve leases from")
		}
	}

	if s.Domain != "" {
		if reason := dnsNameProblem(s.Domain); reason != "" {
			es.add("domain", "%s, got %q", reason, s.Domain)
		}
	}
	return es.err()
}

func checkNetworkAddresses(es *SpecErrors, addrs []string) {
	var seen4, seen6 bool
	for i, a := range addrs {
		field := fmt.Sprintf("addresses[%d]", i)
		p, err := netip.ParsePrefix(a)
		if err != nil {
			es.add(field, "must be an address in CIDR form such as 10.17.3.1/24: %v", err)
			continue
		}
		if p.Addr().Is4In6() {
			es.add(field, "must be a plain IPv4 or IPv6 address, not IPv4-mapped IPv6 %q", a)
			continue
		}
		if p.String() != a {
			// Read back gives the canonical form; anything else would show as
			// a change on every read.
			es.add(field, "must be in canonical form %q, got %q", p.String(), a)
			continue
		}
		if p.Addr().Is4() {
			if seen4 {
				es.add(field, "only one IPv4 address is allowed")
				continue
			}
			seen4 = true
		} else {
			if seen6 {
				es.add(field, "only one IPv6 address is allowed")
				continue
			}
			seen6 = true
		}
		network := p.Masked().Addr()
		switch {
		case p.Addr() == network:
			es.add(field, "%s is the network address of %s; give the host an address inside it", p.Addr(), p.Masked())
		case p.Addr().Is4() && p.Addr() == lastAddr(p):
			es.add(field, "%s is the broadcast address of %s; give the host an address inside it", p.Addr(), p.Masked())
		}
	}
}

// lastAddr is the highest address of the prefix: the broadcast address of an
// IPv4 network.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// checkInterfaceName applies the kernel's rules for network interface names.
func checkInterfaceName(es *SpecErrors, field, name string) {
	const maxLen = 15 // IFNAMSIZ less the terminating NUL
	switch {
	case len(name) > maxLen:
		es.add(field, "must be at most %d bytes long (a Linux interface name), got %q", maxLen, name)
	case name == "." || name == "..":
		es.add(field, "must not be %q", name)
	case strings.ContainsAny(name, "/:") || strings.IndexFunc(name, unicode.IsSpace) >= 0 ||
		strings.IndexFunc(name, unicode.IsControl) >= 0:
		es.add(field, "must not contain '/', ':', spaces or control characters, got %q", name)
	}
}

// isLDH reports the characters a DNS label may hold: letters, digits, hyphen.
func isLDH(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-'
}

// dnsNameProblem says what is wrong with a DNS domain name, or "" when
// nothing is.
func dnsNameProblem(name string) string {
	if len(name) > 253 {
		return "must be at most 253 characters long"
	}
	for _, label := range strings.Split(name, ".") {
		switch {
		case label == "":
			return "must be dot-separated labels without empty ones (no leading, trailing or double dots)"
		case len(label) > 63:
			return fmt.Sprintf("label %q is longer than 63 characters", label)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Sprintf("label %q must not start or end with '-'", label)
		}
		for _, r := range label {
			if !isLDH(r) {
				return fmt.Sprintf("label %q may hold only letters, digits and '-'", label)
			}
		}
	}
	return ""
}
