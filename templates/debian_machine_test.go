package templates_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/provider"
)

// TestAccDebianMachineTemplate builds templates/machine/debian-12 for real
// (its image source: the Debian disk image scripts/testenv makes with
// debootstrap, booted under TCG; the provisioners install the guest agent
// and cloud-init from the Debian archive) and clones the template with
// terraform: the clone's cloud-init runs the provider's cloud_init user
// data, and its QEMU guest agent answers. The quick start builds from the
// same image but installs neither, so it does not prove this.
func TestAccDebianMachineTemplate(t *testing.T) {
	testenv.Integration(t)
	if os.Getenv("TF_ACC") == "" {
		t.Fatal("acceptance tests need TF_ACC=1 (make test sets it)")
	}
	if _, err := exec.LookPath("terraform"); err != nil && os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		t.Fatal("acceptance tests need the terraform binary on PATH")
	}
	name := testenv.Name(t, "tpl-deb")
	packer, env := packerEnv(t)
	key := buildDebianTemplate(t, packer, env, name)

	marker := "VT-TEMPLATE-CLOUD-INIT-" + name
	console := filepath.Join(t.TempDir(), "console.log")
	clone, vm := name+"-clone", name+"-vm"
	config := fmt.Sprintf(`
provider "virt" {
  uri = %q
}

resource "virt_volume" "clone" {
  name           = %q
  pool           = "default"
  base_volume_id = %q
}

resource "virt_machine" "vm" {
  name   = %q
  type   = "qemu"
  vcpu   = 2
  memory = 1024

  boot {
    kernel  = %q
    initrd  = %q
    cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
  }

  disk {
    volume_id = virt_volume.clone.id
  }

  network_interface {
    network = "default"
  }

  cloud_init {
    user_data = <<-EOT
      #cloud-config
      runcmd:
        - echo %s > /dev/ttyS0
    EOT
  }

  console {
    type = "file"
    path = %q
  }
}
`, testenv.URI(), clone, key, vm, testenv.File(t, "debian/vmlinuz"), testenv.File(t, "debian/initrd.img"), marker, console)

	start := time.Now()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"virt": providerserver.NewProtocol6WithError(provider.New("test")()),
		},
		CheckDestroy: func(*terraform.State) error {
			if out, err := virsh("dominfo", vm); err == nil {
				return fmt.Errorf("machine %s still exists:\n%s", vm, out)
			}
			if out, err := virsh("vol-info", "--pool", "default", clone); err == nil {
				return fmt.Errorf("clone volume %s still exists:\n%s", clone, out)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeTestCheckFunc(
				resource.TestCheckResourceAttr("virt_volume.clone", "base_volume_id", key),
				awaitConsole(console, marker, 8*time.Minute),
				awaitGuestAgent(vm, 3*time.Minute),
			),
		}},
	})
	t.Logf("clone, cloud-init and guest agent took %s", time.Since(start).Round(time.Second))
}

// buildDebianTemplate runs `packer build` on templates/machine/debian-12
// with its image source and returns the artifact's id (the volume's key).
func buildDebianTemplate(t *testing.T, packer string, env []string, name string) string {
	t.Helper()
	dir := filepath.Join(root(t), "templates", "machine", "debian-12")
	image := fmt.Sprintf(`{disk=%q,kernel=%q,initrd=%q,ssh_key=%q}`,
		testenv.File(t, "debian/disk.qcow2"), testenv.File(t, "debian/vmlinuz"),
		testenv.File(t, "debian/initrd.img"), testenv.DebianImageKey(t))
	start := time.Now()
	out, err := runErr(dir, env, "", packer, "build", "-machine-readable",
		"-only=virt-machine.image",
		"-var", "type=qemu",
		"-var", "memory=1024",
		"-var", "output_volume="+name+".qcow2",
		// The image source logs in with the key; the ISO source's
		// password is required all the same.
		"-var", "ssh_password=unused-by-the-image-source",
		"-var", "image="+image,
		".")
	t.Logf("packer build of templates/machine/debian-12 (image source) took %s", time.Since(start).Round(time.Second))
	t.Cleanup(func() {
		if out, err := virsh("vol-delete", "--pool", "default", name+".qcow2"); err != nil && !strings.Contains(string(out), "not found") {
			t.Errorf("delete the template volume: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		// timestamp,target,artifact,0,id,<key>
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) >= 6 && f[2] == "artifact" && f[4] == "id" {
			return f[5]
		}
	}
	t.Fatalf("packer build printed no artifact id:\n%s", out)
	return ""
}

func virsh(args ...string) ([]byte, error) {
	return exec.Command("virsh", append([]string{"-c", testenv.URI()}, args...)...).CombinedOutput()
}

// awaitConsole waits for want in a guest's console log (QEMU appends to a
// plain file; nothing signals a write, so it is read again).
func awaitConsole(path, want string, within time.Duration) resource.TestCheckFunc {
	return func(*terraform.State) error {
		deadline := time.Now().Add(within)
		for {
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte(want)) {
				return nil
			}
			if time.Now().After(deadline) {
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				return fmt.Errorf("no %q on the console within %s; the log ends:\n%s", want, within, b)
			}
			time.Sleep(time.Second)
		}
	}
}

// awaitGuestAgent waits until the clone's QEMU guest agent answers a ping
// (it starts with the guest; libvirt reports no event for it).
func awaitGuestAgent(vm string, within time.Duration) resource.TestCheckFunc {
	return func(*terraform.State) error {
		deadline := time.Now().Add(within)
		for {
			out, err := virsh("qemu-agent-command", vm, `{"execute":"guest-ping"}`)
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the guest agent of %s did not answer within %s: %w\n%s", vm, within, err, out)
			}
			time.Sleep(2 * time.Second)
		}
	}
}
