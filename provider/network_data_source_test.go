package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// The data source reads a network made in the same configuration as the
// resource sees it, then one made outside Terraform and stopped (as
// libvirt's own default network often is), then fails on a missing name.
func TestAccNetworkDataSource(t *testing.T) {
	testAccPreCheck(t)
	name, foreign := testenv.Name(t, "tf-net"), testenv.Name(t, "tf-net")
	n, f := testAccNetworkSubnet(t), testAccNetworkSubnet(t)
	lv := testLibvirtClient(t)
	t.Cleanup(func() {
		if err := lv.DeleteNetwork(context.Background(), foreign); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: delete network %s: %v", foreign, err)
		}
	})
	const res, data = "virt_network.test", "data.virt_network.test"

	same := func(attr string) statecheck.StateCheck {
		return statecheck.CompareValuePairs(res, tfjsonpath.New(attr), data, tfjsonpath.New(attr), compare.ValuesSame())
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckNetworkDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: providerConfig() + fmt.Sprintf(`
resource "virt_network" "test" {
  name      = %q
  mode      = "isolated"
  addresses = ["10.252.%d.1/24"]
  domain    = "vt-data.test"
}

data "virt_network" "test" {
  name = virt_network.test.name
}
`, name, n),
				ConfigStateChecks: []statecheck.StateCheck{
					same("id"), same("name"), same("mode"), same("bridge"), same("addresses"),
					same("dhcp"), same("domain"), same("autostart"), same("active"),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("leases"), knownvalue.ListExact([]knownvalue.Check{})),
				},
			},
			{
				PreConfig: func() {
					_, err := lv.CreateNetwork(context.Background(), virt.NetworkSpec{Name: foreign, Mode: virt.NetworkRoute,
						Addresses: []string{fmt.Sprintf("10.252.%d.1/24", f)}})
					if err != nil {
						t.Fatalf("make network outside Terraform: %v", err)
					}
					virshNet(t, "net-destroy", foreign)
				},
				Config: providerConfig() + fmt.Sprintf(`
data "virt_network" "test" {
  name = %q
}
`, foreign),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(data, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(networkUUIDPattern))),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("mode"), knownvalue.StringExact("route")),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("bridge"), knownvalue.StringRegexp(regexp.MustCompile(`^virbr\d+$`))),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("addresses"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(fmt.Sprintf("10.252.%d.1/24", f))})),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("dhcp"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("domain"), knownvalue.Null()),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("autostart"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("active"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(data, tfjsonpath.New("leases"), knownvalue.ListExact([]knownvalue.Check{})),
				},
			},
			{
				Config: providerConfig() + fmt.Sprintf(`
data "virt_network" "test" {
  name = %q
}
`, name),
				ExpectError: spaced(fmt.Sprintf("No network named %q", name)),
			},
		},
	})
}
