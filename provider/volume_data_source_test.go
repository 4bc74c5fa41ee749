package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

// The data source finds a template and a clone made in the same
// configuration, and says which is backed by which.
func TestAccVolumeDataSource(t *testing.T) {
	testAccPreCheck(t)
	_, pool := testAccStoragePool(t, "")
	image := testAccImage(t, "16M", 3)
	baseName, cloneName := testenv.Name(t, "tf-vol"), testenv.Name(t, "tf-vol")
	config := providerConfig() + pool + fmt.Sprintf(`
resource "virt_volume" "base" {
  name   = %q
  pool   = virt_pool.test.name
  source = %q
}

resource "virt_volume" "clone" {
  name           = %q
  pool           = virt_pool.test.name
  base_volume_id = virt_volume.base.id
}

data "virt_volume" "base" {
  pool = virt_pool.test.name
  name = virt_volume.base.name
}

data "virt_volume" "clone" {
  pool = virt_pool.test.name
  name = virt_volume.clone.name
}
`, baseName, image, cloneName)
	same := func(attr string, res, ds string) statecheck.StateCheck {
		return statecheck.CompareValuePairs(res, tfjsonpath.New(attr), ds, tfjsonpath.New(attr), compare.ValuesSame())
	}
	checks := []statecheck.StateCheck{
		statecheck.ExpectKnownValue("data.virt_volume.base", tfjsonpath.New("base_volume_id"), knownvalue.Null()),
		statecheck.ExpectKnownValue("data.virt_volume.clone", tfjsonpath.New("size"), knownvalue.Int64Exact(16*mib)),
		statecheck.CompareValuePairs("data.virt_volume.clone", tfjsonpath.New("base_volume_id"),
			"virt_volume.base", tfjsonpath.New("id"), compare.ValuesSame()),
	}
	for _, kind := range []string{"base", "clone"} {
		for _, attr := range []string{"id", "path", "format", "size", "allocation", "pool", "name"} {
			checks = append(checks, same(attr, "virt_volume."+kind, "data.virt_volume."+kind))
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckStorageDestroyed(t),
		Steps: []resource.TestStep{{
			Config:            config,
			ConfigStateChecks: checks,
		}},
	})
}

// A volume that is not there is an error that names it and its pool.
func TestAccVolumeDataSource_missing(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-vol")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      providerConfig() + fmt.Sprintf("data \"virt_volume\" \"missing\" {\n  name = %q\n}\n", name),
			ExpectError: regexp.MustCompile(`(?s)Volume not found.*` + regexp.QuoteMeta(name) + `.*"default"`),
		}},
	})
}
