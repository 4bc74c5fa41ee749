# A Debian 12 (bookworm) template container from debootstrap, provisioned
# inside the container (no SSH), left on the host for virt_container.template
# and also written as a root file system archive for virt_container.archive.
packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "template_name" {
  type    = string
  default = "debian-12-base"
}

variable "output_archive" {
  type    = string
  default = "/tmp/debian-12-base.tar.gz"
}

source "virt-container" "debian" {
  bootstrap {
    release = "bookworm"
    variant = "minbase"
    # An init, so that clones of the template boot.
    packages = ["systemd-sysv", "ca-certificates"]
  }

  output_template = var.template_name
  output_archive  = var.output_archive
  metadata = {
    description = "Debian 12 base image"
  }
}

build {
  sources = ["source.virt-container.debian"]

  provisioner "shell" {
    inline = [
      "echo 'built by packer' > /etc/motd",
      "apt-get clean",
    ]
  }
}
