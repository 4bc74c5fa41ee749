# A Debian 12 template volume from Debian's cloud image
# (https://cloud.debian.org/images/cloud/bookworm/latest/, the genericcloud
# qcow2): cloud-init reads the build's SSH key from a "cidata" CD, the guest
# is provisioned over SSH, cleaned for cloning and written as a compact
# qcow2 volume that virt_volume.base_volume_id clones.
packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "disk_image" {
  type        = string
  description = "The downloaded cloud image (qcow2)."
  default     = "debian-12-genericcloud-amd64.qcow2"
}

variable "ssh_private_key_file" {
  type    = string
  default = "~/.ssh/id_ed25519"
}

variable "ssh_public_key_file" {
  type    = string
  default = "~/.ssh/id_ed25519.pub"
}

source "virt-machine" "debian" {
  disk_image = var.disk_image
  # The cloud image's 2 GiB grown to 10 GiB (cloud-init grows the root file
  # system into it).
  disk_size = "10G"
  vcpu      = 2
  memory    = 2048

  cd_label = "cidata"
  cd_content = {
    "meta-data" = "instance-id: packer-build\nlocal-hostname: packer-build\n"
    "user-data" = <<-EOT
      #cloud-config
      users:
        - name: debian
          sudo: "ALL=(ALL) NOPASSWD:ALL"
          shell: /bin/bash
          ssh_authorized_keys:
            - ${trimspace(file(pathexpand(var.ssh_public_key_file)))}
      packages: [qemu-guest-agent]
    EOT
  }

  ssh_username         = "debian"
  ssh_private_key_file = pathexpand(var.ssh_private_key_file)
  ssh_timeout          = "10m"
  shutdown_command     = "sudo shutdown -P now"

  clean_for_clone = true
  compact         = true
  output_volume   = "debian-12-base.qcow2"
}

build {
  sources = ["source.virt-machine.debian"]

  provisioner "shell" {
    inline = [
      "cloud-init status --wait",
      "sudo apt-get update",
      "sudo DEBIAN_FRONTEND=noninteractive apt-get -y upgrade",
      "sudo apt-get clean",
    ]
  }
}
