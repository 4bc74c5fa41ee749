package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// A template baked by the virt-machine Packer builder (real packer, the
// plugin built from this tree, a Debian image booted under TCG, a shell
// provisioner over SSH) is cloned copy-on-write by virt_volume and booted
// by virt_machine, which shows the provisioner's change: a unit it
// installed prints a marker on the serial console.
func TestAccPackerMachineTemplate(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "pk-vm")
	marker := "VT-PACKER-MARKER-" + name
	lv := testLibvirtClient(t)

	key, took := packerBuildMachine(t, name, marker)
	t.Logf("virt-machine template build took %s", took)
	t.Cleanup(func() {
		if err := lv.DeleteVolume(context.Background(), key); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("delete the template %s: %v", key, err)
		}
	})

	console := filepath.Join(t.TempDir(), "console.log")
	clone, vm := name+"-clone", name+"-vm"
	config := providerConfig() + fmt.Sprintf(`
resource "virt_volume" "clone" {
  name           = %q
  pool           = "default"
  base_volume_id = %q
}

resource "virt_machine" "vm" {
  name   = %q
  type   = "qemu"
  vcpu   = 2
  memory = 512

  boot {
    kernel  = %q
    initrd  = %q
    cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  }

  disk {
    volume_id = virt_volume.clone.id
  }

  console {
    type = "file"
    path = %q
  }
}
`, clone, key, vm, testenv.File(t, "debian/vmlinuz"), testenv.File(t, "debian/initrd.img"), console)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy: func(s *terraform.State) error {
			if err := testAccCheckMachineDestroyed(t, lv, "default", vm)(s); err != nil {
				return err
			}
			switch _, err := lv.Volume(context.Background(), "default", clone); {
			case err == nil:
				return fmt.Errorf("clone volume %s still exists", clone)
			case !errors.Is(err, virt.ErrNotFound):
				return fmt.Errorf("clone volume %s: %w", clone, err)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeTestCheckFunc(
				resource.TestCheckResourceAttr("virt_volume.clone", "base_volume_id", key),
				awaitConsole(console, marker, 3*time.Minute),
			),
		}},
	})
}

// awaitConsole waits for want in a guest's console log file (QEMU appends
// to a plain file; nothing signals a write, so it is read again).
func awaitConsole(path, want string, within time.Duration) resource.TestCheckFunc {
	return func(*terraform.State) error {
		deadline := time.Now().Add(within)
		for {
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte(want)) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no %q on the console within %s; the log ends:\n%s", want, within, tail(string(b), 2000))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// packerBuildMachine builds the plugin from this tree, installs it where
// only this test's packer looks, and bakes the template volume name from
// the cached Debian test image; it returns the artifact's id (the volume
// key) and how long the build took.
func packerBuildMachine(t *testing.T, name, marker string) (string, time.Duration) {
	t.Helper()
	packer := testenv.PackerBinary(t)
	dir := t.TempDir()
	run := func(cmd *exec.Cmd) []byte {
		t.Helper()
		cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+filepath.Join(dir, "plugins"), "CHECKPOINT_DISABLE=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		return out
	}
	plugin := filepath.Join(dir, "packer-plugin-virt")
	run(exec.Command("go", "build", "-o", plugin, "github.com/virtforge/terraform-provider-virt/packer/cmd/packer-plugin-virt"))
	run(exec.Command(packer, "plugins", "install", "--path", plugin, "github.com/virtforge/virt"))

	// Each command is rendered with %q, whose escapes HCL reads alike.
	writeUnit := `printf '%s\n' '[Service]' 'Type=oneshot' 'ExecStart=/bin/sh -c "echo ` + marker +
		` > /dev/ttyS0"' '[Install]' 'WantedBy=multi-user.target' > /etc/systemd/system/vt-marker.service`
	template := fmt.Sprintf(`
source "virt-machine" "test" {
  disk_image = %q
  boot {
    kernel  = %q
    initrd  = %q
    cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  }
  type                 = "qemu"
  vcpu                 = 2
  memory               = 1024
  output_volume        = %q
  ssh_username         = "root"
  ssh_private_key_file = %q
  ssh_timeout          = "5m"
  shutdown_command     = "systemctl poweroff"
  clean_for_clone      = true
}

build {
  sources = ["source.virt-machine.test"]
  provisioner "shell" {
    inline = [
      %q,
      "systemctl enable vt-marker.service",
    ]
  }
}
`, testenv.File(t, "debian/disk.qcow2"), testenv.File(t, "debian/vmlinuz"), testenv.File(t, "debian/initrd.img"),
		name, testenv.DebianImageKey(t), writeUnit)
	tpl := filepath.Join(dir, "machine.pkr.hcl")
	if err := os.WriteFile(tpl, []byte(template), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := run(exec.Command(packer, "build", "-machine-readable", tpl))
	took := time.Since(start)
	for _, line := range strings.Split(string(out), "\n") {
		// timestamp,target,artifact,0,id,<key>
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) >= 6 && f[2] == "artifact" && f[4] == "id" {
			return f[5], took
		}
	}
	t.Fatalf("packer build printed no artifact id:\n%s", out)
	return "", took
}
