# The quick start's machine template: a bootable Debian 12 disk image (the one
# `make setup` builds: debootstrap, the cloud kernel, sshd), provisioned over
# SSH and cleaned for cloning (machine-id, SSH host keys). The result is a
# volume in the default pool, which main.tf clones copy-on-write.
packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "output_volume" {
  type    = string
  default = "quickstart-debian-12.qcow2"
}

variable "disk_image" {
  type        = string
  description = "A bootable disk image whose root filesystem is the whole disk (booted with the kernel and initrd below)."
}

variable "kernel" {
  type = string
}

variable "initrd" {
  type = string
}

variable "ssh_private_key_file" {
  type        = string
  description = "A key that root in the image accepts."
}

variable "type" {
  type        = string
  default     = "kvm"
  description = "Domain type: kvm, or qemu (emulation) on hosts without usable KVM."
}

source "virt-machine" "debian" {
  disk_image = var.disk_image
  boot {
    kernel  = var.kernel
    initrd  = var.initrd
    cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  }
  type   = var.type
  vcpu   = 2
  memory = 1024

  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "10m"
  shutdown_command     = "poweroff"

  clean_for_clone = true
  output_volume   = var.output_volume
}

build {
  sources = ["source.virt-machine.debian"]

  provisioner "shell" {
    inline = ["echo 'Debian 12, baked by Packer for the virt quick start' > /etc/motd"]
  }
}
