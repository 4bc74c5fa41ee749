package provider

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// A machine installed from media, as on a Proxmox node: a blank volume as
// its disk and an installer ISO, uploaded as a volume, on a CD-ROM, with no
// direct kernel boot. The blank disk boots first and has nothing to boot,
// so the firmware goes on to the ISO, whose own boot loader (isolinux)
// starts the test guest with the ISO's command line. The re-plan is empty,
// and destroy removes the machine and both volumes.
func TestAccMachineResource_installFromISO(t *testing.T) {
	testAccPreCheck(t)
	env := newMachineTestEnv(t)
	name := testenv.Name(t, "tf-vm")
	iso := testenv.InstallerISO(t, env.dir, "VTINSTALL", "virt.boot=isolinux")
	console := filepath.Join(env.dir, name+".log")
	config := fmt.Sprintf(`
provider "virt" {
  uri = %[1]q
}

resource "virt_volume" "disk" {
  name = "%[2]s.qcow2"
  pool = %[3]q
  size = 16777216
}

resource "virt_volume" "installer" {
  name   = "%[2]s.iso"
  pool   = %[3]q
  format = "raw"
  source = %[4]q
}

resource "virt_machine" "test" {
  name   = %[2]q
  type   = "qemu"
  memory = 256

  disk {
    volume_id = virt_volume.disk.id
  }

  disk {
    volume_id = virt_volume.installer.id
    device    = "cdrom"
    bus       = "scsi" # the test guest's kernel has no AHCI driver
  }

  network_interface {
    network = "default"
  }

  console {
    type = "file"
    path = %[5]q
  }

  # A guest that never booted ignores ACPI: destroyed after 30 s, not 150.
  timeouts {
    delete = "1m"
  }
}
`, testenv.URI(), name, env.pool, iso, console)

	volumesGone := func(*terraform.State) error {
		for _, v := range []string{name + ".qcow2", name + ".iso"} {
			_, err := env.lv.Volume(context.Background(), env.pool, v)
			if err == nil {
				return fmt.Errorf("volume %s is still there after destroy", v)
			}
			if !errors.Is(err, virt.ErrNotFound) {
				return fmt.Errorf("volume %s after destroy: %w", v, err)
			}
		}
		return nil
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy: resource.ComposeTestCheckFunc(
			testAccCheckMachineDestroyed(t, env.lv, env.pool, name), volumesGone),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(*terraform.State) error {
					text, err := waitConsoleCount(console, testenv.Marker, 1)
					if err != nil {
						return err
					}
					const want = "VIRT-TESTENV-CMDLINE BOOT_IMAGE=/vmlinuz initrd=/initrd.gz console=ttyS0 virt.boot=isolinux"
					if !strings.Contains(text, want) {
						return fmt.Errorf("the guest did not boot through the ISO's isolinux (want %q); console:\n%s", want, text)
					}
					if !strings.Contains(text, "VIRT-TESTENV-CDROM sr0 VTINSTALL") {
						return fmt.Errorf("the guest does not see the ISO as its CD-ROM; console:\n%s", text)
					}
					return nil
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
