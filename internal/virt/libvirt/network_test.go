package libvirt

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// The -update flag rewrites golden files; whichever test file of the package
// initialises first defines it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata/")
	}
}

// compareNetworkGolden compares got with testdata/name, or rewrites the file
// under -update.
func compareNetworkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if string(want) != string(got) {
		t.Fatalf("%s differs (run with -update to accept):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestDHCPRanges(t *testing.T) {
	for _, tc := range []struct {
		host string
		want []string // start-end
	}{
		{"10.251.17.1/24", []string{"10.251.17.2-10.251.17.254"}},
		{"10.251.17.254/24", []string{"10.251.17.1-10.251.17.253"}},
		{"10.251.17.100/24", []string{"10.251.17.1-10.251.17.99", "10.251.17.101-10.251.17.254"}},
		{"10.0.0.1/30", []string{"10.0.0.2-10.0.0.2"}},
		{"10.0.0.2/30", []string{"10.0.0.1-10.0.0.1"}},
		{"10.250.0.1/16", []string{"10.250.0.2-10.250.255.254"}},
		// Wider than libvirt's 65535-address cap: the host's /16 only.
		{"10.0.0.1/8", []string{"10.0.0.2-10.0.255.255"}},
		{"10.7.3.1/8", []string{"10.7.0.0-10.7.3.0", "10.7.3.2-10.7.255.255"}},
		{"10.255.9.9/8", []string{"10.255.0.0-10.255.9.8", "10.255.9.10-10.255.255.254"}},
		{"fd00:251:17::1/64", []string{"fd00:251:17::2-fd00:251:17::ffff"}},
		{"fd00:251:17::1:5/64", []string{"fd00:251:17::1:0-fd00:251:17::1:4", "fd00:251:17::1:6-fd00:251:17::1:ffff"}},
		{"fd00::1/120", []string{"fd00::2-fd00::ff"}},
		{"fd00::ff/120", []string{"fd00::1-fd00::fe"}},
	} {
		t.Run(tc.host, func(t *testing.T) {
			var got []string
			for _, r := range dhcpRanges(netip.MustParsePrefix(tc.host)) {
				got = append(got, r[0].String()+"-"+r[1].String())
				size := rangeSize(r[0], r[1])
				if size > 65535 {
					t.Errorf("range %v holds %d addresses; libvirt allows 65535", r, size)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("dhcpRanges(%s) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
}

// rangeSize counts the addresses from a to b when both sit in one
// 65536-address block, and reports more than 65535 when they do not.
func rangeSize(a, b netip.Addr) int {
	x, y := a.AsSlice(), b.AsSlice()
	n := len(x)
	if !slices.Equal(x[:n-2], y[:n-2]) {
		return 1 << 20
	}
	return int(y[n-2])<<8 | int(y[n-1]) - (int(x[n-2])<<8 | int(x[n-1])) + 1
}

var goldenNetworks = []struct {
	file string
	spec virt.NetworkSpec
}{
	{"network-nat-dual.xml", virt.NetworkSpec{Name: "vt-golden-nat", Mode: virt.NetworkNAT, Bridge: "vtbr0",
		Addresses: []string{"10.17.3.1/24", "fd00:17:3::1/64"}, DHCP: true, Domain: "vt.example"}},
	{"network-isolated.xml", virt.NetworkSpec{Name: "vt-golden-isolated", Mode: virt.NetworkIsolated,
		Addresses: []string{"10.17.4.100/24"}, DHCP: true}},
	{"network-route-nodhcp.xml", virt.NetworkSpec{Name: "vt-golden-route", Mode: virt.NetworkRoute,
		Addresses: []string{"10.17.5.1/24"}}},
	{"network-bridge.xml", virt.NetworkSpec{Name: "vt-golden-bridge", Mode: virt.NetworkBridge, Bridge: "br0"}},
}

func TestNetworkDocGolden(t *testing.T) {
	for _, g := range goldenNetworks {
		t.Run(g.file, func(t *testing.T) {
			if err := g.spec.Validate(); err != nil {
				t.Fatalf("golden spec is invalid: %v", err)
			}
			doc, err := networkDoc(g.spec).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			compareNetworkGolden(t, g.file, []byte(doc+"\n"))
		})
	}
}

// What is rendered reads back as the spec it came from.
func TestSpecFromNetworkRoundTrip(t *testing.T) {
	for _, g := range goldenNetworks {
		t.Run(g.file, func(t *testing.T) {
			got, err := specFromNetwork(networkDoc(g.spec))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, g.spec) {
				t.Fatalf("read back %+v\nwant      %+v", *got, g.spec)
			}
		})
	}
}

// Networks made by other tools use forms this package never writes.
func TestSpecFromNetworkForeign(t *testing.T) {
	for _, tc := range []struct {
		name, xml string
		want      virt.NetworkSpec
		wantErr   string
	}{
		{"libvirt default", `<network><name>default</name><uuid>u</uuid><forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
			<bridge name='virbr0' stp='on' delay='0'/><mac address='52:54:00:1d:3e:ba'/>
			<ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>`,
			virt.NetworkSpec{Name: "default", UUID: "u", Mode: "nat", Bridge: "virbr0", Addresses: []string{"192.168.122.1/24"}, DHCP: true}, ""},
		{"forward without mode", `<network><name>n</name><forward/><ip address='10.1.2.3'/></network>`,
			virt.NetworkSpec{Name: "n", Mode: "nat", Addresses: []string{"10.1.2.3/8"}}, ""},
		{"passthrough", `<network><name>n</name><forward mode='passthrough'><interface dev='eth1'/></forward></network>`,
			virt.NetworkSpec{Name: "n", Mode: "passthrough"}, ""},
		{"static hosts only", `<network><name>n</name><ip family='ipv6' address='fd00::1' prefix='64'><dhcp><host id='0:1' ip='fd00::5'/></dhcp></ip></network>`,
			virt.NetworkSpec{Name: "n", Mode: "isolated", Addresses: []string{"fd00::1/64"}}, ""},
		{"bad netmask", `<network><name>n</name><ip address='10.0.0.1' netmask='255.0.255.0'/></network>`, virt.NetworkSpec{}, "not contiguous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x libvirtxml.Network
			if err := x.Unmarshal(tc.xml); err != nil {
				t.Fatal(err)
			}
			got, err := specFromNetwork(&x)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("specFromNetwork = %+v, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("specFromNetwork = %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// --- against libvirtd ---

// freeSubnet picks a 10.251.N.0/24 that no interface of this host is in, so
// that the test network does not collide with the host's or another test's.
func freeSubnet(t *testing.T) (netip.Prefix, byte) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	for tries := 0; tries < 64; tries++ {
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 251, b[0], 0}), 24)
		inUse := slices.ContainsFunc(addrs, func(a net.Addr) bool {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				return false
			}
			ip, _ := netip.AddrFromSlice(ipn.IP)
			return p.Contains(ip.Unmap())
		})
		if !inUse && b[0] != 0 && b[0] != 255 {
			return p, b[0]
		}
	}
	t.Fatal("no free 10.251.N.0/24 subnet")
	return netip.Prefix{}, 0
}

// bridgeName is a kernel-sized name (15 bytes at most) with the test prefix.
func bridgeName(t *testing.T) string {
	t.Helper()
	return testenv.Prefix + strings.TrimPrefix(testenv.Name(t, "b"), testenv.Prefix+"b-")
}

// removeNetworkAtEnd deletes a test network, if it is there, when the test
// ends however it ends.
func removeNetworkAtEnd(t *testing.T, c *Client, name string) {
	t.Helper()
	t.Cleanup(func() {
		if err := c.DeleteNetwork(context.Background(), name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: delete network %s: %v", name, err)
		}
	})
}

type ipAddrInfo struct {
	IfName   string `json:"ifname"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// hostAddrs lists the addresses the host has on a link, in CIDR form, or
// reports that the link does not exist.
func hostAddrs(t *testing.T, link string) ([]string, bool) {
	t.Helper()
	out, err := exec.Command("ip", "-j", "addr", "show", "dev", link).Output()
	if err != nil {
		return nil, false
	}
	var infos []ipAddrInfo
	if err := json.Unmarshal(out, &infos); err != nil {
		t.Fatalf("ip -j addr: %v\n%s", err, out)
	}
	var addrs []string
	for _, i := range infos {
		for _, a := range i.AddrInfo {
			addrs = append(addrs, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
		}
	}
	return addrs, true
}

func TestNetworkLifecycle(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name  string
		build func(n byte) virt.NetworkSpec
	}{
		{"isolated dual-stack", func(n byte) virt.NetworkSpec {
			return virt.NetworkSpec{Mode: virt.NetworkIsolated, DHCP: true, Domain: "vt.test",
				Addresses: []string{fmt.Sprintf("10.251.%d.1/24", n), fmt.Sprintf("fd00:251:%x::1/64", n)}}
		}},
		{"nat named bridge", func(n byte) virt.NetworkSpec {
			return virt.NetworkSpec{Mode: virt.NetworkNAT, DHCP: true, Autostart: true,
				Addresses: []string{fmt.Sprintf("10.251.%d.7/24", n)}}
		}},
		{"route without dhcp", func(n byte) virt.NetworkSpec {
			return virt.NetworkSpec{Mode: virt.NetworkRoute, Addresses: []string{fmt.Sprintf("10.251.%d.1/24", n)}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, n := freeSubnet(t)
			want := tc.build(n)
			want.Name = testenv.Name(t, "lv-net")
			if strings.Contains(tc.name, "named bridge") {
				want.Bridge = bridgeName(t)
			}
			removeNetworkAtEnd(t, c, want.Name)

			got, err := c.CreateNetwork(ctx, want)
			if err != nil {
				t.Fatal(err)
			}
			if got.UUID == "" || !got.Active || got.Bridge == "" {
				t.Errorf("created network lacks read-back facts: %+v", *got)
			}
			if want.Bridge == "" {
				want.Bridge = got.Bridge // libvirt names it
			}
			want.UUID, want.Active = got.UUID, true
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("created %+v\nasked    %+v", *got, want)
			}
			again, err := c.Network(ctx, want.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*again, want) {
				t.Errorf("read back %+v\nasked     %+v", *again, want)
			}

			// The host really has the bridge, with the addresses asked for.
			addrs, ok := hostAddrs(t, got.Bridge)
			if !ok {
				t.Fatalf("bridge %s is not on the host", got.Bridge)
			}
			for _, a := range want.Addresses {
				if !slices.Contains(addrs, a) {
					t.Errorf("bridge %s has %v, lacks %s", got.Bridge, addrs, a)
				}
			}

			leases, err := c.Leases(ctx, want.Name)
			if err != nil {
				t.Fatal(err)
			}
			if leases == nil || len(leases) != 0 {
				t.Errorf("leases on an empty network = %#v, want an empty list", leases)
			}

			if _, err := c.CreateNetwork(ctx, want); !errors.Is(err, virt.ErrExists) {
				t.Errorf("create again: %v, want virt.ErrExists", err)
			}

			if err := c.DeleteNetwork(ctx, want.Name); err != nil {
				t.Fatal(err)
			}
			if _, ok := hostAddrs(t, got.Bridge); ok {
				t.Errorf("bridge %s is still on the host after delete", got.Bridge)
			}
			_, err = c.Network(ctx, want.Name)
			checkNotFound(t, "read deleted network", err)
			_, err = c.Leases(ctx, want.Name)
			checkNotFound(t, "leases of deleted network", err)
			checkNotFound(t, "delete deleted network", c.DeleteNetwork(ctx, want.Name))
		})
	}
}

// Bridge mode plugs guests into a bridge the host already has; libvirt
// neither creates nor removes it.
func TestNetworkBridgeMode(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	br := bridgeName(t)
	runTool(t, "ip", "link", "add", br, "type", "bridge")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", br).CombinedOutput(); err != nil {
			t.Errorf("cleanup: remove bridge %s: %v: %s", br, err, out)
		}
	})
	want := virt.NetworkSpec{Name: testenv.Name(t, "lv-net"), Mode: virt.NetworkBridge, Bridge: br}
	removeNetworkAtEnd(t, c, want.Name)

	got, err := c.CreateNetwork(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	want.UUID, want.Active = got.UUID, true
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("created %+v\nasked    %+v", *got, want)
	}
	leases, err := c.Leases(ctx, want.Name)
	if err != nil || leases == nil || len(leases) != 0 {
		t.Errorf("leases of a bridge-mode network = %#v, %v; want an empty list", leases, err)
	}
	if err := c.DeleteNetwork(ctx, want.Name); err != nil {
		t.Fatal(err)
	}
	if _, ok := hostAddrs(t, br); !ok {
		t.Errorf("deleting the network removed the host bridge %s", br)
	}
	_, err = c.Network(ctx, want.Name)
	checkNotFound(t, "read deleted network", err)
}

// A network that cannot start is not left defined: here its subnet is
// already another network's.
func TestCreateNetworkStartFailureUndefines(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	_, n := freeSubnet(t)
	first := virt.NetworkSpec{Name: testenv.Name(t, "lv-net"), Mode: virt.NetworkIsolated, Addresses: []string{fmt.Sprintf("10.251.%d.1/24", n)}}
	removeNetworkAtEnd(t, c, first.Name)
	if _, err := c.CreateNetwork(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := first
	second.Name = testenv.Name(t, "lv-net")
	second.Addresses = []string{fmt.Sprintf("10.251.%d.2/24", n)}
	removeNetworkAtEnd(t, c, second.Name)
	_, err := c.CreateNetwork(ctx, second)
	if err == nil {
		t.Fatal("a second network on the same subnet started")
	}
	if !strings.Contains(err.Error(), second.Name) {
		t.Errorf("error %q does not name the network", err)
	}
	_, err = c.Network(ctx, second.Name)
	checkNotFound(t, "network after failed start", err)
}

func TestCreateNetworkRejectsBadSpec(t *testing.T) {
	c := newTestClient(t)
	_, err := c.CreateNetwork(context.Background(), virt.NetworkSpec{Name: testenv.Name(t, "lv-net"), Mode: virt.NetworkBridge})
	checkSpecField(t, "bridge mode without bridge", err, "bridge")
}

func TestParseNetworkUUID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c11", true},
		{"0B3E1C1E-4B5A-4C7E-9D33-0A8F2F3E6C11", true},
		{"0b3e1c1e4b5a4c7e9d330a8f2f3e6c11", true}, // as libvirt takes it; lookups try the name first
		{"0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c1", false},
		{"0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c1g", false},
		{"0b3e1c1e-4b5a4-c7e-9d33-0a8f2f3e6c11", false},
		{"default", false},
	} {
		u, err := parseUUID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseUUID(%q) = %x, %v; want ok=%v", tc.in, u, err, tc.ok)
		}
		if tc.ok && u[0] != 0x0b || tc.ok && u[15] != 0x11 {
			t.Errorf("parseUUID(%q) = %x", tc.in, u)
		}
	}
}

// A network stopped and its autostart changed out of band is brought back
// by StartNetwork and SetNetworkAutostart, each without touching the other;
// NetworkByUUID and ListNetworks find it.
func TestNetworkStartAutostartLookup(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	_, n := freeSubnet(t)
	want := virt.NetworkSpec{Name: testenv.Name(t, "lv-net"), Mode: virt.NetworkIsolated,
		Addresses: []string{fmt.Sprintf("10.251.%d.1/24", n)}, DHCP: true}
	removeNetworkAtEnd(t, c, want.Name)
	got, err := c.CreateNetwork(ctx, want)
	if err != nil {
		t.Fatal(err)
	}

	byUUID, err := c.NetworkByUUID(ctx, got.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byUUID, got) {
		t.Errorf("by UUID %+v\nby name %+v", *byUUID, *got)
	}
	_, err = c.NetworkByUUID(ctx, "00000000-0000-4000-8000-00000000f00d")
	checkNotFound(t, "network with unknown UUID", err)
	if _, err := c.NetworkByUUID(ctx, want.Name); err == nil || errors.Is(err, virt.ErrNotFound) {
		t.Errorf("NetworkByUUID(name) = %v; want an error that is not ErrNotFound", err)
	}

	names, err := c.ListNetworks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, want.Name) || !slices.IsSorted(names) {
		t.Errorf("ListNetworks = %v; want it sorted and holding %s", names, want.Name)
	}

	runTool(t, "virsh", "-c", testenv.URI(), "net-destroy", want.Name)
	if s, err := c.Network(ctx, want.Name); err != nil || s.Active {
		t.Fatalf("after net-destroy: %+v, %v; want inactive", s, err)
	}
	// Leases of a stopped network are an empty list, not an error: the
	// data source reads networks such as libvirt's inactive default.
	if leases, err := c.Leases(ctx, want.Name); err != nil || leases == nil || len(leases) != 0 {
		t.Errorf("leases of a stopped network = %#v, %v; want an empty list", leases, err)
	}
	if err := c.SetNetworkAutostart(ctx, want.Name, true); err != nil {
		t.Fatal(err)
	}
	s, err := c.Network(ctx, want.Name)
	if err != nil || !s.Autostart || s.Active {
		t.Fatalf("after autostart on: %+v, %v; want autostart and still stopped", s, err)
	}
	if err := c.StartNetwork(ctx, want.Name); err != nil {
		t.Fatal(err)
	}
	if err := c.StartNetwork(ctx, want.Name); err != nil {
		t.Errorf("starting a running network: %v", err)
	}
	if err := c.SetNetworkAutostart(ctx, want.Name, false); err != nil {
		t.Fatal(err)
	}
	s, err = c.Network(ctx, want.Name)
	if err != nil || s.Autostart || !s.Active {
		t.Fatalf("after start, autostart off: %+v, %v; want running without autostart", s, err)
	}
	if _, ok := hostAddrs(t, s.Bridge); !ok {
		t.Errorf("bridge %s is not on the host after start", s.Bridge)
	}

	if err := c.DeleteNetwork(ctx, want.Name); err != nil {
		t.Fatal(err)
	}
	checkNotFound(t, "start deleted network", c.StartNetwork(ctx, want.Name))
	checkNotFound(t, "autostart of deleted network", c.SetNetworkAutostart(ctx, want.Name, true))
}

// Ten networks created at once over one connection, as Terraform's default
// parallelism does, each get a bridge of their own: libvirt alone hands
// the same virbrN to concurrent definitions.
func TestCreateNetworksConcurrently(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	subnets := map[byte]bool{}
	for len(subnets) < 10 {
		_, n := freeSubnet(t)
		subnets[n] = true
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	bridges := map[string]string{}
	for n := range subnets {
		name := testenv.Name(t, "lv-net")
		removeNetworkAtEnd(t, c, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.CreateNetwork(ctx, virt.NetworkSpec{Name: name, Mode: virt.NetworkIsolated,
				Addresses: []string{fmt.Sprintf("10.251.%d.1/24", n)}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, ok := bridges[got.Bridge]; ok {
				t.Errorf("networks %s and %s both have bridge %s", other, name, got.Bridge)
			}
			bridges[got.Bridge] = name
		}()
	}
	wg.Wait()
}

func TestIsInterfaceExists(t *testing.T) {
	exists := golibvirt.Error{Code: uint32(golibvirt.ErrSystemError), Message: "error creating bridge interface virbr3: File exists"}
	if !isInterfaceExists(fmt.Errorf("start network %q: %w", "n", exists)) {
		t.Error("libvirt's EEXIST on a bridge is not recognised")
	}
	other := golibvirt.Error{Code: uint32(golibvirt.ErrInternalError), Message: "Network is already in use by interface virbr1"}
	if isInterfaceExists(other) {
		t.Error("a subnet clash is taken for a bridge name clash")
	}
}
