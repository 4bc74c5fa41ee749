# A template volume from a disk image that has no boot loader (a file
# system image made with debootstrap, say): the kernel and initrd are booted
# straight from files on the host. Built under TCG ("qemu") so that it also
# runs on hosts without KVM.
packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "disk_image" {
  type    = string
  default = "rootfs.qcow2"
}

variable "kernel" {
  type    = string
  default = "/boot/vmlinuz"
}

variable "initrd" {
  type    = string
  default = "/boot/initrd.img"
}

variable "ssh_private_key_file" {
  type    = string
  default = "~/.ssh/id_ed25519"
}

source "virt-machine" "rootfs" {
  disk_image = var.disk_image
  boot {
    kernel  = var.kernel
    initrd  = var.initrd
    cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
  }
  type   = "qemu"
  memory = 1024

  ssh_username         = "root"
  ssh_private_key_file = pathexpand(var.ssh_private_key_file)

  output_pool   = "default"
  output_volume = "rootfs-template.qcow2"
}

build {
  sources = ["source.virt-machine.rootfs"]

  provisioner "shell" {
    inline = ["echo 'built by packer' > /etc/motd"]
  }
}
