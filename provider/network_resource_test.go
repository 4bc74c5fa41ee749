package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

func init() {
	resource.AddTestSweepers("virt_network", &resource.Sweeper{
		Name: "virt_network",
		F:    sweepNetworks,
	})
}

// sweepNetworks removes every network a test left behind (names starting
// with testenv.Prefix), stopped or running.
func sweepNetworks(string) error { return sweepNetworksNamed(testenv.Prefix) }

func sweepNetworksNamed(prefix string) error {
	ctx := context.Background()
	lv, err := libvirt.New(ctx, libvirt.Options{URI: testenv.URI()})
	if err != nil {
		return err
	}
	defer func() { _ = lv.Close() }()
	names, err := lv.ListNetworks(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		if err := lv.DeleteNetwork(ctx, n); err != nil && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// --- unit tests (no daemon) ---

func TestNetworkResourceSchema(t *testing.T) {
	ctx := context.Background()
	var resp fwresource.SchemaResponse
	newNetworkResource().Schema(ctx, fwresource.SchemaRequest{}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	if diags := resp.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatal(diags)
	}
	for _, m := range virt.NetworkModes {
		if networkModeDescriptions[m] == "" {
			t.Errorf("mode %q has no description", m)
		}
	}
	for m := range networkModeDescriptions {
		if !slices.Contains(virt.NetworkModes, m) {
			t.Errorf("description for %q, which is not one of virt.NetworkModes", m)
		}
	}
	for name, a := range resp.Schema.Attributes {
		if a.GetMarkdownDescription() == "" {
			t.Errorf("attribute %s has no description", name)
		}
	}
	if _, ok := resp.Schema.Attributes["leases"]; ok {
		t.Error("the resource has leases: they change all the time and would show as drift; they belong to the data source")
	}
}

func TestNetworkSpecFieldPath(t *testing.T) {
	for field, want := range map[string]path.Path{
		"name":          path.Root("name"),
		"addresses":     path.Root("addresses"),
		"addresses[1]":  path.Root("addresses").AtListIndex(1),
		"addresses[12]": path.Root("addresses").AtListIndex(12),
		"dhcp":          path.Root("dhcp"),
	} {
		if got := networkSpecFieldPath(field); !got.Equal(want) {
			t.Errorf("networkSpecFieldPath(%q) = %s, want %s", field, got, want)
		}
	}
}

// ValidateConfig reports the layer's rules on the attribute they concern,
// and stays quiet while values are unknown (apply checks them again).
func TestNetworkResourceValidateConfig(t *testing.T) {
	ctx := context.Background()
	r := &networkResource{}
	var sr fwresource.SchemaResponse
	r.Schema(ctx, fwresource.SchemaRequest{}, &sr)
	typ := sr.Schema.Type().TerraformType(ctx).(tftypes.Object)
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
	list := func(vs ...tftypes.Value) tftypes.Value {
		return tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, vs)
	}
	unknownString := tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
	for _, tc := range []struct {
		name string
		set  map[string]tftypes.Value
		want []path.Path
	}{
		{"nat with address", map[string]tftypes.Value{"addresses": list(str("10.1.1.1/24"))}, nil},
		{"isolated bare", map[string]tftypes.Value{"mode": str("isolated")}, nil},
		{"nat bare", nil, []path.Path{path.Root("addresses")}},
		{"not cidr", map[string]tftypes.Value{"addresses": list(str("10.1.1.1"))}, []path.Path{path.Root("addresses").AtListIndex(0)}},
		{"two ipv4", map[string]tftypes.Value{"addresses": list(str("10.1.1.1/24"), str("10.2.1.1/24"))},
			[]path.Path{path.Root("addresses").AtListIndex(1)}},
		{"unknown address", map[string]tftypes.Value{"addresses": list(str("10.1.1.1"), unknownString)}, nil},
		{"unknown list", map[string]tftypes.Value{"addresses": tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, tftypes.UnknownValue)}, nil},
		{"bridge mode without bridge", map[string]tftypes.Value{"mode": str("bridge")}, []path.Path{path.Root("bridge")}},
		{"bridge mode with addresses", map[string]tftypes.Value{"mode": str("bridge"), "bridge": str("br0"),
			"addresses": list(str("10.1.1.1/24"))}, []path.Path{path.Root("addresses")}},
		{"dhcp without addresses", map[string]tftypes.Value{"mode": str("isolated"), "dhcp": tftypes.NewValue(tftypes.Bool, true)},
			[]path.Path{path.Root("dhcp")}},
		{"unknown mode left to its validator", map[string]tftypes.Value{"mode": str("macvtap")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := map[string]tftypes.Value{}
			for k, at := range typ.AttributeTypes {
				vals[k] = tftypes.NewValue(at, nil)
			}
			vals["name"] = str("vt-net")
			for k, v := range tc.set {
				vals[k] = v
			}
			var resp fwresource.ValidateConfigResponse
			r.ValidateConfig(ctx, fwresource.ValidateConfigRequest{
				Config: tfsdk.Config{Schema: sr.Schema, Raw: tftypes.NewValue(typ, vals)},
			}, &resp)
			var got []path.Path
			for _, d := range resp.Diagnostics {
				if wp, ok := d.(diag.DiagnosticWithPath); ok {
					got = append(got, wp.Path())
				} else {
					t.Errorf("diagnostic without a path: %v", d)
				}
			}
			if !slices.EqualFunc(got, tc.want, path.Path.Equal) {
				t.Errorf("paths %v, want %v (%v)", got, tc.want, resp.Diagnostics)
			}
		})
	}
}

// --- acceptance tests ---

const networkUUIDPattern = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`

// networkSubnets are the 10.252.N.0/24 subnets this test process has handed
// out, so that parallel tests never pick the same one.
var networkSubnets = struct {
	sync.Mutex
	taken map[int]bool
}{taken: map[int]bool{}}

// testAccNetworkSubnet picks N for a 10.252.N.0/24 that no route of the host
// touches and no other test of this process uses.
func testAccNetworkSubnet(t *testing.T) int {
	t.Helper()
	var used []netip.Prefix
	for _, line := range strings.Split(commandOutput(t, "ip", "route", "show", "table", "all"), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && slices.Contains([]string{"local", "broadcast", "unicast", "unreachable", "blackhole",
			"prohibit", "anycast", "multicast", "throw"}, f[0]) {
			f = f[1:]
		}
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			a, err := netip.ParseAddr(f[0])
			if err != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		used = append(used, p)
	}
	networkSubnets.Lock()
	defer networkSubnets.Unlock()
	for range 1000 {
		n := 1 + rand.IntN(254)
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 252, byte(n), 0}), 24)
		if networkSubnets.taken[n] || slices.ContainsFunc(used, cand.Overlaps) {
			continue
		}
		networkSubnets.taken[n] = true
		return n
	}
	t.Fatal("no free 10.252.N.0/24 subnet on this host")
	return 0
}

// testAccNetworkProviderConfig adds a second host name for the same daemon,
// so that tests exercise the host attribute and HOST/ID imports.
func testAccNetworkProviderConfig() string {
	return fmt.Sprintf(`provider "virt" {
  uri   = %[1]q
  hosts = { second = %[1]q }
}
`, testenv.URI())
}

// testAccCheckNetworkDestroyed asks libvirt, not the provider, whether the
// networks of the state are gone.
func testAccCheckNetworkDestroyed(t *testing.T) resource.TestCheckFunc {
	lv := testLibvirtClient(t)
	return func(s *terraform.State) error {
		for key, rs := range s.RootModule().Resources {
			if rs.Type != "virt_network" || strings.HasPrefix(key, "data.") {
				continue
			}
			name := rs.Primary.Attributes["name"]
			_, err := lv.Network(context.Background(), name)
			if err == nil {
				return fmt.Errorf("network %s still exists after destroy", name)
			}
			if !errors.Is(err, virt.ErrNotFound) {
				return fmt.Errorf("check network %s: %w", name, err)
			}
		}
		return nil
	}
}

// networkMatchesLibvirt compares a virt_network's state with what libvirt
// (and the host's own ip tool) says about the network.
type networkMatchesLibvirt struct {
	lv      *libvirt.Client
	address string
}

func expectNetworkMatchesLibvirt(lv *libvirt.Client, address string) statecheck.StateCheck {
	return networkMatchesLibvirt{lv: lv, address: address}
}

func (c networkMatchesLibvirt) CheckState(ctx context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	var attrs map[string]any
	if req.State != nil && req.State.Values != nil && req.State.Values.RootModule != nil {
		for _, r := range req.State.Values.RootModule.Resources {
			if r.Address == c.address {
				attrs = r.AttributeValues
			}
		}
	}
	if attrs == nil {
		resp.Error = fmt.Errorf("%s is not in the state", c.address)
		return
	}
	name, _ := attrs["name"].(string)
	spec, err := c.lv.Network(ctx, name)
	if err != nil {
		resp.Error = fmt.Errorf("%s: libvirt: %w", c.address, err)
		return
	}
	var problems []string
	same := func(attr string, want any) {
		got := attrs[attr]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			problems = append(problems, fmt.Sprintf("%s = %v in state, %v in libvirt", attr, got, want))
		}
	}
	orNil := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	same("id", spec.UUID)
	same("mode", spec.Mode)
	same("bridge", orNil(spec.Bridge))
	same("dhcp", spec.DHCP)
	same("domain", orNil(spec.Domain))
	same("autostart", spec.Autostart)
	same("active", spec.Active)
	var stateAddrs []string
	if list, ok := attrs["addresses"].([]any); ok {
		for _, a := range list {
			stateAddrs = append(stateAddrs, fmt.Sprint(a))
		}
	}
	if !slices.Equal(stateAddrs, spec.Addresses) {
		problems = append(problems, fmt.Sprintf("addresses = %v in state, %v in libvirt", stateAddrs, spec.Addresses))
	}
	if spec.Active && spec.Mode != virt.NetworkBridge {
		onHost, err := bridgeAddrs(spec.Bridge)
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, a := range spec.Addresses {
			if !slices.Contains(onHost, a) {
				problems = append(problems, fmt.Sprintf("host bridge %s has %v, lacks %s", spec.Bridge, onHost, a))
			}
		}
	}
	if len(problems) > 0 {
		resp.Error = fmt.Errorf("%s: %s", c.address, strings.Join(problems, "; "))
	}
}

// bridgeAddrs lists the addresses a host link has, in CIDR form.
func bridgeAddrs(link string) ([]string, error) {
	out, err := exec.Command("ip", "-j", "addr", "show", "dev", link).Output()
	if err != nil {
		return nil, fmt.Errorf("host link %s: %w", link, err)
	}
	var infos []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &infos); err != nil {
		return nil, fmt.Errorf("ip -j addr show dev %s: %w", link, err)
	}
	var addrs []string
	for _, i := range infos {
		for _, a := range i.AddrInfo {
			addrs = append(addrs, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
		}
	}
	return addrs, nil
}

func virshNet(t *testing.T, args ...string) {
	t.Helper()
	commandOutput(t, "virsh", append([]string{"-c", testenv.URI()}, args...)...)
}

func importIDFrom(address, prefix, attr string) resource.ImportStateIdFunc {
	return func(s *terraform.State) (string, error) {
		rs, ok := s.RootModule().Resources[address]
		if !ok {
			return "", fmt.Errorf("%s is not in the state", address)
		}
		return prefix + rs.Primary.Attributes[attr], nil
	}
}

// An isolated network on the provider's second host: create, read back
// without a diff, import by HOST/UUID and HOST/NAME, autostart in place,
// replace on an address change.
func TestAccNetworkResource_isolated(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-net")
	n, m := testAccNetworkSubnet(t), testAccNetworkSubnet(t)
	lv := testLibvirtClient(t)
	const addr = "virt_network.test"
	config := func(subnet int, autostart bool) string {
		return testAccNetworkProviderConfig() + fmt.Sprintf(`
resource "virt_network" "test" {
  host      = "second"
  name      = %q
  mode      = "isolated"
  addresses = ["10.252.%d.1/24"]
  autostart = %t
}
`, name, subnet, autostart)
	}
	sameID := statecheck.CompareValue(compare.ValuesSame())
	newID := statecheck.CompareValue(compare.ValuesDiffer())

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckNetworkDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: config(n, false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(networkUUIDPattern))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("host"), knownvalue.StringExact("second")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("mode"), knownvalue.StringExact("isolated")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("bridge"), knownvalue.StringRegexp(regexp.MustCompile(`^virbr\d+$`))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("addresses"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(fmt.Sprintf("10.252.%d.1/24", n))})),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("dhcp"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("domain"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("autostart"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(true)),
					expectNetworkMatchesLibvirt(lv, addr),
					sameID.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
			{
				Config: config(n, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: importIDFrom(addr, "second/", "id"),
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: importIDFrom(addr, "second/", "name"),
			},
			{
				Config: config(n, true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("autostart"), knownvalue.Bool(true)),
					expectNetworkMatchesLibvirt(lv, addr),
					sameID.AddStateValue(addr, tfjsonpath.New("id")),
					newID.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
			{
				Config: config(m, true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace),
						plancheck.ExpectUnknownValue(addr, tfjsonpath.New("id")),
						plancheck.ExpectUnknownValue(addr, tfjsonpath.New("bridge")),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("addresses"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(fmt.Sprintf("10.252.%d.1/24", m))})),
					expectNetworkMatchesLibvirt(lv, addr),
					newID.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
		},
	})
}

// A dual-stack NAT network on a bridge named in the configuration, with a
// domain and without DHCP; import by UUID and by name on the default host;
// turning DHCP on replaces it.
func TestAccNetworkResource_nat(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-net")
	bridge := testenv.Name(t, "b") // vt-b-xxxxxxxx: 13 bytes, within IFNAMSIZ
	n := testAccNetworkSubnet(t)
	lv := testLibvirtClient(t)
	const addr = "virt_network.test"
	v4, v6 := fmt.Sprintf("10.252.%d.1/24", n), fmt.Sprintf("fd00:252:%x::1/64", n)
	config := func(dhcp bool) string {
		return providerConfig() + fmt.Sprintf(`
resource "virt_network" "test" {
  name      = %q
  bridge    = %q
  addresses = [%q, %q]
  dhcp      = %t
  domain    = "vt-nat.test"
}
`, name, bridge, v4, v6, dhcp)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckNetworkDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: config(false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("host"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("mode"), knownvalue.StringExact("nat")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("bridge"), knownvalue.StringExact(bridge)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("addresses"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(v4), knownvalue.StringExact(v6)})),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("dhcp"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("domain"), knownvalue.StringExact("vt-nat.test")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("autostart"), knownvalue.Bool(true)),
					expectNetworkMatchesLibvirt(lv, addr),
				},
			},
			{
				Config: config(false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateId:     name,
			},
			{
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace),
						// The bridge is in the configuration: known, unlike a
						// bridge libvirt names.
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("bridge"), knownvalue.StringExact(bridge)),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("dhcp"), knownvalue.Bool(true)),
					expectNetworkMatchesLibvirt(lv, addr),
				},
			},
		},
	})
}

// Out-of-band changes: a deleted network is planned for creation, a stopped
// one (with autostart turned off) for an in-place update that starts it.
func TestAccNetworkResource_drift(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-net")
	n := testAccNetworkSubnet(t)
	const addr = "virt_network.test"
	config := providerConfig() + fmt.Sprintf(`
resource "virt_network" "test" {
  name      = %q
  mode      = "route"
  addresses = ["10.252.%d.1/24"]
}
`, name, n)
	lv := testLibvirtClient(t)
	ids := statecheck.CompareValue(compare.ValuesDiffer())
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckNetworkDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					expectNetworkMatchesLibvirt(lv, addr),
					ids.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
			{
				PreConfig: func() {
					if err := lv.DeleteNetwork(context.Background(), name); err != nil {
						t.Fatalf("delete network out of band: %v", err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					expectNetworkMatchesLibvirt(lv, addr),
					ids.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
			{
				PreConfig: func() {
					virshNet(t, "net-destroy", name)
					virshNet(t, "net-autostart", "--disable", name)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(true)),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("autostart"), knownvalue.Bool(true)),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(true)),
					expectNetworkMatchesLibvirt(lv, addr),
				},
			},
		},
	})
}

// Bridge mode plugs guests into a bridge the host already has; destroying
// the network leaves that bridge alone.
func TestAccNetworkResource_bridgeMode(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-net")
	bridge := testenv.Name(t, "b")
	commandOutput(t, "ip", "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil {
			t.Errorf("remove host bridge %s: %v: %s", bridge, err, out)
		}
	})
	lv := testLibvirtClient(t)
	const addr = "virt_network.test"
	config := providerConfig() + fmt.Sprintf(`
resource "virt_network" "test" {
  name   = %q
  mode   = "bridge"
  bridge = %q
}
`, name, bridge)
	destroyed := testAccCheckNetworkDestroyed(t)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy: func(s *terraform.State) error {
			if err := destroyed(s); err != nil {
				return err
			}
			if _, err := bridgeAddrs(bridge); err != nil {
				return fmt.Errorf("destroying a bridge-mode network removed the host's bridge: %w", err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("mode"), knownvalue.StringExact("bridge")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("bridge"), knownvalue.StringExact(bridge)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("addresses"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("dhcp"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(true)),
					expectNetworkMatchesLibvirt(lv, addr),
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
			},
		},
	})
}

// spaced matches words that Terraform may have wrapped onto several lines.
func spaced(words string) *regexp.Regexp {
	parts := strings.Fields(words)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, `\s+`))
}

// Each bad input fails at plan with the attribute and reason; nothing is
// made on the host.
func TestAccNetworkResource_badInputs(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-net")
	config := func(body string) string {
		return providerConfig() + fmt.Sprintf(`
resource "virt_network" "bad" {
  name = %q
%s
}
`, name, body)
	}
	steps := []resource.TestStep{}
	for _, tc := range []struct{ body, want string }{
		{`addresses = ["10.252.1.1"]`, `addresses[0]: must be an address in CIDR form`},
		{`addresses = ["10.252.1.300/24"]`, `addresses[0]: must be an address in CIDR form`},
		{`addresses = ["10.252.01.1/24"]`, `addresses[0]: must be an address in CIDR form`},
		{`addresses = ["10.252.1.1/24", "10.252.2.1/24"]`, `addresses[1]: only one IPv4 address is allowed`},
		{`addresses = ["10.252.1.0/24"]`, `is the network address of 10.252.1.0/24`},
		{`addresses = ["10.252.1.255/24"]`, `is the broadcast address of 10.252.1.0/24`},
		{`mode = "bridge"`, `bridge: must name an existing host bridge in bridge mode`},
		{"mode = \"bridge\"\n  bridge = \"br0\"\n  addresses = [\"10.252.1.1/24\"]", `addresses: must be empty in bridge mode`},
		{"mode = \"isolated\"\n  dhcp = true", `dhcp: needs at least one address to serve leases from`},
		{`mode = "macvtap"`, `value must be one of: ["nat" "route" "isolated" "bridge"], got: "macvtap"`},
		{``, `addresses: must hold at least one address in nat mode`},
		{"addresses = [\"10.252.1.1/24\"]\n  domain = \"a..b\"", `domain: must be dot-separated labels`},
		{"addresses = [\"10.252.1.1/24\"]\n  bridge = \"a-very-long-bridge\"", `at most 15 bytes long`},
	} {
		// PlanOnly: the error must come from the plan, before anything is made.
		steps = append(steps, resource.TestStep{Config: config(tc.body), PlanOnly: true, ExpectError: spaced(tc.want)})
	}
	steps = append(steps, resource.TestStep{
		Config:        config(`addresses = ["10.252.1.1/24"]`),
		ResourceName:  "virt_network.bad",
		ImportState:   true,
		ImportStateId: name,
		ExpectError:   spaced(fmt.Sprintf("No network is named %q", name)),
	})
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckNetworkDestroyed(t),
		Steps:                    steps,
	})
}

// testAccBridge makes a host bridge, with a test name, for bridge-mode
// networks and interfaces (the examples' br0 is the host's LAN bridge, which
// the test host does not have).
func testAccBridge(t *testing.T) string {
	t.Helper()
	name := testenv.Name(t, "br") // 14 bytes: under IFNAMSIZ
	commandOutput(t, "ip", "link", "add", name, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
	commandOutput(t, "ip", "link", "set", name, "up")
	return name
}

// The network examples of the documentation are applied, re-planned and
// destroyed, with the test's names, free subnets in place of theirs, a
// bridge of the test's in place of br0, and the data source reading a
// network the test made in place of libvirt's default.
func TestAccNetworkExamples(t *testing.T) {
	testAccPreCheck(t)
	lv := testLibvirtClient(t)
	run := func(t *testing.T, config string, checks ...statecheck.StateCheck) {
		resource.ParallelTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProtoV6ProviderFactories,
			CheckDestroy:             testAccCheckNetworkDestroyed(t),
			Steps:                    exampleSteps(config, checks...),
		})
	}
	t.Run("virt_network", func(t *testing.T) {
		name := testenv.Name(t, "tf-net")
		lab, backend := testAccNetworkSubnet(t), testAccNetworkSubnet(t)
		run(t, exampleConfig(t, "../examples/resources/virt_network/resource.tf",
			`name      = "lab"`, `name      = "`+name+`-lab"`,
			`name      = "backend"`, `name      = "`+name+`-backend"`,
			`name   = "lan"`, `name   = "`+name+`-lan"`,
			`"10.17.3.1/24"`, fmt.Sprintf(`"10.252.%d.1/24"`, lab),
			`"fd00:17:3::1/64"`, fmt.Sprintf(`"fd00:252:%d::1/64"`, lab),
			`"10.17.4.1/24"`, fmt.Sprintf(`"10.252.%d.1/24"`, backend),
			`"br0"`, strconv.Quote(testAccBridge(t)),
		), expectNetworkMatchesLibvirt(lv, "virt_network.lab"),
			expectNetworkMatchesLibvirt(lv, "virt_network.backend"),
			expectNetworkMatchesLibvirt(lv, "virt_network.lan"))
	})
	t.Run("data-source virt_network", func(t *testing.T) {
		name := testenv.Name(t, "tf-net")
		addr := fmt.Sprintf("10.252.%d.1/24", testAccNetworkSubnet(t))
		if _, err := lv.CreateNetwork(context.Background(), virt.NetworkSpec{Name: name, Mode: virt.NetworkNAT, Addresses: []string{addr}, DHCP: true}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lv.DeleteNetwork(context.Background(), name) })
		run(t, exampleConfig(t, "../examples/data-sources/virt_network/data-source.tf",
			`name = "default"`, "name = "+strconv.Quote(name),
		), statecheck.ExpectKnownOutputValueAtPath("default_network", tfjsonpath.New("addresses"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(addr)})),
			statecheck.ExpectKnownOutputValueAtPath("default_network", tfjsonpath.New("active"), knownvalue.Bool(true)))
	})
}

// The sweeper removes leftovers whether they run or not. It is run here on
// this test's own names only, so that it cannot pull networks from under
// tests running beside it.
func TestAccNetworkSweeper(t *testing.T) {
	testAccPreCheck(t)
	t.Parallel()
	lv := testLibvirtClient(t)
	ctx := context.Background()
	prefix := testenv.Name(t, "tf-netsweep")
	running, stopped := prefix+"-a", prefix+"-b"
	for _, name := range []string{running, stopped} {
		if _, err := lv.CreateNetwork(ctx, virt.NetworkSpec{Name: name, Mode: virt.NetworkIsolated}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lv.DeleteNetwork(ctx, name) })
	}
	virshNet(t, "net-destroy", stopped)
	if err := sweepNetworksNamed(prefix); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{running, stopped} {
		if _, err := lv.Network(ctx, name); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("network %s after the sweep: %v, want not found", name, err)
		}
	}
}

// A create that fails leaves nothing on the host for the next apply to trip
// on, and a name already taken outside Terraform is reported as such, with
// the way out.
func TestAccNetworkResource_failedCreate(t *testing.T) {
	testAccPreCheck(t)
	lv := testLibvirtClient(t)
	ctx := context.Background()
	first, clash, taken := testenv.Name(t, "tf-net"), testenv.Name(t, "tf-net"), testenv.Name(t, "tf-net")
	n := testAccNetworkSubnet(t)
	t.Cleanup(func() { _ = lv.DeleteNetwork(ctx, taken) })
	firstConfig := providerConfig() + fmt.Sprintf(`
resource "virt_network" "first" {
  name      = %q
  mode      = "isolated"
  addresses = ["10.252.%d.1/24"]
}
`, first, n)
	absent := func(name string) error {
		_, err := lv.Network(ctx, name)
		switch {
		case err == nil:
			return fmt.Errorf("network %s is defined; want nothing left behind", name)
		case !errors.Is(err, virt.ErrNotFound):
			return fmt.Errorf("check network %s: %w", name, err)
		}
		return nil
	}
	destroyed := testAccCheckNetworkDestroyed(t)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy: func(s *terraform.State) error {
			return errors.Join(destroyed(s), absent(first), absent(clash))
		},
		Steps: []resource.TestStep{
			{Config: firstConfig},
			{
				// Same subnet: libvirt defines it, then cannot start it.
				Config: firstConfig + fmt.Sprintf(`
resource "virt_network" "clash" {
  name      = %q
  mode      = "isolated"
  addresses = ["10.252.%d.2/24"]
}
`, clash, n),
				ExpectError: spaced(fmt.Sprintf("create network %q on %s", clash, testenv.URI())),
			},
			{
				PreConfig: func() {
					if err := absent(clash); err != nil {
						t.Fatalf("after the failed create: %v", err)
					}
					if _, err := lv.CreateNetwork(ctx, virt.NetworkSpec{Name: taken, Mode: virt.NetworkIsolated}); err != nil {
						t.Fatal(err)
					}
				},
				Config: firstConfig + fmt.Sprintf(`
resource "virt_network" "taken" {
  name = %q
  mode = "isolated"
}
`, taken),
				ExpectError: spaced(fmt.Sprintf("A network named %q already exists on %s", taken, testenv.URI())),
			},
		},
	})
}

// Terraform's default parallelism of 10 creates and destroys ten networks
// at once over the provider's one connection without lock errors.
func TestAccNetworkResource_parallel(t *testing.T) {
	testAccPreCheck(t)
	prefix := testenv.Name(t, "tf-net")
	var subnets []string
	for range 10 {
		subnets = append(subnets, fmt.Sprintf("%q", fmt.Sprintf("10.252.%d.1/24", testAccNetworkSubnet(t))))
	}
	config := providerConfig() + fmt.Sprintf(`
locals {
  subnets = [%s]
}

resource "virt_network" "many" {
  count     = length(local.subnets)
  name      = "%s-${count.index}"
  mode      = "isolated"
  addresses = [local.subnets[count.index]]
}
`, strings.Join(subnets, ", "), prefix)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckNetworkDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_network.many[9]", tfjsonpath.New("active"), knownvalue.Bool(true)),
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}
