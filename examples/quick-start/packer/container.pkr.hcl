# The quick start's container template: Debian 12 from debootstrap, with a
# message of the day written by a provisioner. The result is a stopped
# template container named var.name, which main.tf clones copy-on-write.
packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "name" {
  type    = string
  default = "quickstart-debian-12"
}

variable "mirror" {
  type    = string
  default = "http://deb.debian.org/debian"
}

source "virt-container" "debian" {
  bootstrap {
    release = "bookworm"
    mirror  = var.mirror
    variant = "minbase"
    # An init, so that clones boot.
    packages = ["sysvinit-core"]
  }
  output_template = var.name
  # sysvinit's inittab does not halt on LXC's SIGPWR: a clean stop would
  # only wait for the kill.
  stop_timeout = "2s"
  metadata = {
    built_by = "examples/quick-start"
  }
}

build {
  sources = ["source.virt-container.debian"]

  provisioner "shell" {
    inline = ["echo 'Debian 12, baked by Packer for the virt quick start' > /etc/motd"]
  }
}
