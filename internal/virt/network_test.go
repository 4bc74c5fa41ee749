package virt

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNetworkSpecWithDefaults(t *testing.T) {
	if got := (NetworkSpec{Name: "n"}).WithDefaults(); got.Mode != NetworkNAT {
		t.Fatalf("default mode = %q, want %q", got.Mode, NetworkNAT)
	}
	if got := (NetworkSpec{Name: "n", Mode: NetworkIsolated}).WithDefaults(); got.Mode != NetworkIsolated {
		t.Fatalf("defaults overwrote mode: %q", got.Mode)
	}
}

func TestNetworkSpecValidate(t *testing.T) {
	ok := NetworkSpec{Name: "vt-net", Mode: NetworkNAT, Addresses: []string{"10.17.3.1/24", "fd00:17:3::1/64"}, DHCP: true, Domain: "vt.example"}
	bridge := NetworkSpec{Name: "vt-br", Mode: NetworkBridge, Bridge: "br0"}
	for _, tc := range []struct {
		name string
		base NetworkSpec
		mut  func(*NetworkSpec)
		want []string
	}{
		{"valid", ok, func(s *NetworkSpec) {}, nil},
		{"isolated without addresses", ok, func(s *NetworkSpec) { s.Mode = NetworkIsolated; s.Addresses = nil; s.DHCP = false }, nil},
		{"nat without addresses", ok, func(s *NetworkSpec) { s.Addresses = nil; s.DHCP = false }, []string{"addresses"}},
		{"route without addresses", ok, func(s *NetworkSpec) { s.Mode = NetworkRoute; s.Addresses = nil; s.DHCP = false }, []string{"addresses"}},
		{"nat ipv6 only", ok, func(s *NetworkSpec) { s.Addresses = []string{"fd00:17:3::1/64"} }, nil},
		{"isolated", ok, func(s *NetworkSpec) { s.Mode = NetworkIsolated }, nil},
		{"route", ok, func(s *NetworkSpec) { s.Mode = NetworkRoute }, nil},
		{"named bridge", ok, func(s *NetworkSpec) { s.Bridge = "vtbr0" }, nil},
		{"ipv6 only", ok, func(s *NetworkSpec) { s.Addresses = []string{"fd00::1/64"} }, nil},
		{"slash31 has no host", ok, func(s *NetworkSpec) { s.Addresses = []string{"10.0.0.1/31"} }, []string{"addresses[0]"}},
		{"long name is fine", ok, func(s *NetworkSpec) { s.Name = strings.Repeat("n", 40) }, nil},
		{"bridge mode", bridge, func(s *NetworkSpec) {}, nil},
		{"empty name", ok, func(s *NetworkSpec) { s.Name = "" }, []string{"name"}},
		{"slash in name", ok, func(s *NetworkSpec) { s.Name = "a/b" }, []string{"name"}},
		{"bad mode", ok, func(s *NetworkSpec) { s.Mode = "macvtap" }, []string{"mode"}},
		{"bridge name too long", ok, func(s *NetworkSpec) { s.Bridge = "a-very-long-bridge" }, []string{"bridge"}},
		{"bridge name with space", ok, func(s *NetworkSpec) { s.Bridge = "br 0" }, []string{"bridge"}},
		{"not cidr", ok, func(s *NetworkSpec) { s.Addresses = []string{"10.17.3.1"} }, []string{"addresses[0]"}},
		{"garbage", ok, func(s *NetworkSpec) { s.Addresses = []string{"x"} }, []string{"addresses[0]"}},
		{"not canonical", ok, func(s *NetworkSpec) { s.Addresses = []string{"fd00:0017::1/64"} }, []string{"addresses[0]"}},
		{"mapped", ok, func(s *NetworkSpec) { s.Addresses = []string{"::ffff:10.0.0.1/120"} }, []string{"addresses[0]"}},
		{"two ipv4", ok, func(s *NetworkSpec) { s.Addresses = []string{"10.1.0.1/24", "10.2.0.1/24"} }, []string{"addresses[1]"}},
		{"two ipv6", ok, func(s *NetworkSpec) { s.Addresses = []string{"fd01::1/64", "10.2.0.1/24", "fd02::1/64"} }, []string{"addresses[2]"}},
		{"network address", ok, func(s *NetworkSpec) { s.Addresses = []string{"10.17.3.0/24"} }, []string{"addresses[0]"}},
		{"broadcast", ok, func(s *NetworkSpec) { s.Addresses = []string{"10.17.3.255/24"} }, []string{"addresses[0]"}},
		{"slash32", ok, func(s *NetworkSpec) { s.Addresses = []string{"10.17.3.1/32"} }, []string{"addresses[0]"}},
		{"v6 network address", ok, func(s *NetworkSpec) { s.Addresses = []string{"fd00:17:3::/64"} }, []string{"addresses[0]"}},
		{"v6 last address is a host", ok, func(s *NetworkSpec) { s.Addresses = []string{"fd00:17:3::ffff/112"} }, nil},
		{"dhcp without address", ok, func(s *NetworkSpec) { s.Mode = NetworkIsolated; s.Addresses = nil }, []string{"dhcp"}},
		{"domain trailing dot", ok, func(s *NetworkSpec) { s.Domain = "vt.example." }, []string{"domain"}},
		{"domain underscore", ok, func(s *NetworkSpec) { s.Domain = "v_t" }, []string{"domain"}},
		{"domain hyphen", ok, func(s *NetworkSpec) { s.Domain = "-vt" }, []string{"domain"}},
		{"domain long label", ok, func(s *NetworkSpec) { s.Domain = strings.Repeat("a", 64) + ".x" }, []string{"domain"}},
		{"bridge mode needs bridge", bridge, func(s *NetworkSpec) { s.Bridge = "" }, []string{"bridge"}},
		{"bridge mode extras", bridge, func(s *NetworkSpec) {
			s.Addresses = []string{"10.0.0.1/24"}
			s.DHCP = true
			s.Domain = "x"
		}, []string{"addresses", "dhcp", "domain"}},
		{"all at once", ok, func(s *NetworkSpec) {
			*s = NetworkSpec{Mode: "x", Addresses: []string{"1.2.3.0/24"}, DHCP: true, Domain: "a..b"}
		}, []string{"name", "mode", "addresses[0]", "domain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.base
			s.Addresses = slices.Clone(s.Addresses)
			tc.mut(&s)
			if got := specFields(t, s.Validate()); !slices.Equal(got, tc.want) {
				t.Fatalf("Validate(%+v) fields = %v, want %v (%v)", s, got, tc.want, s.Validate())
			}
		})
	}
}

func TestLastAddr(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"10.17.3.1/24", "10.17.3.255"},
		{"10.17.0.0/16", "10.17.255.255"},
		{"10.0.0.5/30", "10.0.0.7"},
		{"10.0.0.5/32", "10.0.0.5"},
		{"fd00::1/64", "fd00::ffff:ffff:ffff:ffff"},
		{"fd00::1/127", "fd00::1"},
	} {
		if got := lastAddr(netip.MustParsePrefix(tc.prefix)); got.String() != tc.want {
			t.Errorf("lastAddr(%s) = %s, want %s", tc.prefix, got, tc.want)
		}
	}
}
