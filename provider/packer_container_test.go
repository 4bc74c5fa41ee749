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

// packerBuildContainerTemplate builds templates/container/debian-12, the
// Debian container template users are given, as the template container
// name, with openssh-server added (so that the test can see its host keys
// removed) and en_US.UTF-8 as the locale (so that locale generation runs),
// with the real packer binary and a plugin built from this checkout in a
// plugin directory of the test's own.
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
	template, err := filepath.Abs("../templates/container/debian-12")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	build := exec.Command(packer, "build", "-color=false",
		"-var", "name="+name,
		"-var", `packages=["openssh-server"]`,
		"-var", "locale=en_US.UTF-8",
		"-var", `metadata={built_by="virt provider acceptance test"}`,
		template)
	build.Env = env
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, out)
	}
	t.Logf("TIMING packer build of templates/container/debian-12: %s", time.Since(start).Round(100*time.Millisecond))
}

// TestAccPackerContainerTemplate: templates/container/debian-12, built by
// the Packer builder, is what virt_container clones, and it keeps what its
// README promises: the template has no machine-id and no SSH host keys;
// a clone takes its own hostname, has the locale, runs a getty on
// /dev/console and makes its own host keys; and
// virt_container_template lists the metadata the build recorded.
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

	// The template itself: what every clone must not share.
	rootfs := filepath.Join(lx.LXCPath(), tmpl, "rootfs")
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc", "machine-id")); err == nil && len(b) > 0 {
		t.Errorf("the template's /etc/machine-id is %q, want empty or absent", b)
	}
	if keys, _ := filepath.Glob(filepath.Join(rootfs, "etc", "ssh", "ssh_host_*")); len(keys) > 0 {
		t.Errorf("the template keeps SSH host keys: %v", keys)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "usr", "sbin", "sshd")); err != nil {
		t.Errorf("openssh-server (packages variable) is not in the template: %v", err)
	}

	config := providerConfig() + fmt.Sprintf(`
resource "virt_container" "test" {
  name     = %q
  template = %q
}

data "virt_container_template" "built" {
  name_regex = "^%s$"
}
`, name, tmpl, regexp.QuoteMeta(tmpl))

	metadata := func(key, want string) statecheck.StateCheck {
		return statecheck.ExpectKnownValue("data.virt_container_template.built",
			tfjsonpath.New("templates").AtSliceIndex(0).AtMapKey("metadata").AtMapKey(key), knownvalue.StringExact(want))
	}
	inClone := func(script string) string {
		return commandOutput(t, "lxc-attach", "-n", name, "--", "/bin/sh", "-c", script)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckContainerDestroyed(lx, name),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("virt_container.test", tfjsonpath.New("template"), knownvalue.StringExact(tmpl)),
					statecheck.ExpectKnownValue("virt_container.test", tfjsonpath.New("state"), knownvalue.StringExact("RUNNING")),
					metadata("os", "debian"),
					metadata("release", "12"),
					metadata("template", "container/debian-12"),
					metadata("init", "sysvinit-core"),
					metadata("built_by", "virt provider acceptance test"),
				},
				Check: func(*terraform.State) error {
					if got := inClone("hostname"); got != name {
						return fmt.Errorf("the clone's hostname is %q, want its name %q", got, name)
					}
					if got := inClone("test -e /etc/hostname && echo present || echo absent"); got != "absent" {
						return fmt.Errorf("the clone has an /etc/hostname, which would override LXC's hostname at boot")
					}
					if got := inClone(". /etc/default/locale && echo $LANG"); got != "en_US.UTF-8" {
						return fmt.Errorf("the clone's LANG is %q, want en_US.UTF-8", got)
					}
					if !strings.Contains(inClone("locale -a"), "en_US.utf8") {
						return fmt.Errorf("en_US.UTF-8 was not generated in the clone")
					}
					inittab := inClone("cat /etc/inittab")
					for _, want := range []string{"co:2345:respawn:/sbin/getty --noclear 38400 console", "p0::powerfail:/sbin/init 0"} {
						if !strings.Contains(inittab, want) {
							return fmt.Errorf("the clone's inittab lacks %q:\n%s", want, inittab)
						}
					}
					// The getty runs, not merely configured: init starts it once
					// the runlevel's scripts (ssh among them) have finished, so
					// this also waits for the boot, up to a minute.
					if got := inClone(`getty() { for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' 2>/dev/null <"$f"; echo; done | grep -q '^/sbin/getty .*console'; }
i=0; until getty; do i=$((i+1)); [ $i -gt 600 ] && { echo none; exit 0; }; sleep 0.1; done; echo running`); got != "running" {
						return fmt.Errorf("no getty runs on the clone's console")
					}
					// The clone made host keys of its own at boot (ssh init script).
					if got := inClone("ls /etc/ssh/ssh_host_ed25519_key 2>/dev/null || echo none"); got == "none" {
						return fmt.Errorf("the clone made no SSH host keys of its own")
					}
					return nil
				},
			},
		},
	})
}
