package provider

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

// packerBuildContainerTemplate builds the virt-container builder's Debian
// acceptance template (debootstrap, a shell provisioner that writes
// /etc/virt-packer-marker) as the template container name, with the real
// packer binary and a plugin built from this checkout into a plugin
// directory of the test's own.
func packerBuildContainerTemplate(t *testing.T, name string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "packer-plugin-virt")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/virtforge/terraform-provider-virt/packer/cmd/packer-plugin-virt").CombinedOutput(); err != nil {
		t.Fatalf("build the Packer plugin: %v\n%s", err, out)
	}
	env := append(os.Environ(), "PACKER_PLUGIN_PATH="+filepath.Join(dir, "plugins"), "CHECKPOINT_DISABLE=1", "PACKER_CONFIG_DIR="+dir)
	packer := testenv.PackerBinary(t)
	install := exec.Command(packer, "plugins", "install", "--path", bin, "github.com/virtforge/virt")
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("packer plugins install: %v\n%s", err, out)
	}
	template, err := filepath.Abs("../packer/builder/container/testdata/debian.pkr.hcl")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	build := exec.Command(packer, "build", "-color=false",
		"-var", "name="+name, "-var", "archive="+filepath.Join(dir, "debian.tar.gz"), template)
	build.Env = env
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, out)
	}
	t.Logf("TIMING packer build of the Debian container template: %s", time.Since(start).Round(100*time.Millisecond))
}

// TestAccPackerContainerTemplate: a template that the Packer builder
// baked is what virt_container clones, provisioned file included, and
// virt_container_template lists what the build recorded.
func TestAccPackerContainerTemplate(t *testing.T) {
	testAccPreCheck(t)
	lx := containerTestClient(t)
	tmpl := testenv.Name(t, "pk-ct")
	name := testenv.Name(t, "tf-ct")
	t.Cleanup(func() {
		if exec.Command("lxc-info", "-n", tmpl).Run() == nil {
			if out, err := exec.Command("lxc-destroy", "-f", "-n", tmpl).CombinedOutput(); err != nil {
				t.Errorf("remove template %s: %v\n%s", tmpl, err, out)
			}
		}
	})
	packerBuildContainerTemplate(t, tmpl)

	config := providerConfig() + fmt.Sprintf(`
resource "virt_container" "test" {
  name     = %q
  template = %q
}

data "virt_container_template" "built" {
  name_regex = "^%s$"
}
`, name, tmpl, regexp.QuoteMeta(tmpl))

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckContainerDestroyed(lx, name),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_container.test", tfjsonpath.New("template"), knownvalue.StringExact(tmpl)),
					statecheck.ExpectKnownValue("virt_container.test", tfjsonpath.New("state"), knownvalue.StringExact("RUNNING")),
					statecheck.ExpectKnownValue("data.virt_container_template.built",
						tfjsonpath.New("templates").AtSliceIndex(0).AtMapKey("metadata").AtMapKey("os"), knownvalue.StringExact("debian")),
					statecheck.ExpectKnownValue("data.virt_container_template.built",
						tfjsonpath.New("templates").AtSliceIndex(0).AtMapKey("metadata").AtMapKey("release"), knownvalue.StringExact("12")),
					statecheck.ExpectKnownValue("data.virt_container_template.built",
						tfjsonpath.New("templates").AtSliceIndex(0).AtMapKey("metadata").AtMapKey("built_by"), knownvalue.StringExact("virt-container acceptance test")),
				},
				Check: func(*terraform.State) error {
					out := commandOutput(t, "lxc-attach", "-n", name, "--", "cat", "/etc/virt-packer-marker")
					if out != "provisioned by packer" {
						return fmt.Errorf("the clone's /etc/virt-packer-marker says %q", out)
					}
					if !strings.Contains(commandOutput(t, "lxc-attach", "-n", name, "--", "cat", "/etc/os-release"), "(virt-packer)") {
						return fmt.Errorf("the clone's os-release lacks the provisioner's change")
					}
					return nil
				},
			},
		},
	})
}
