# Debian 12 (bookworm) machine template. Two sources, one set of provisioners:
# - virt-machine.iso: the netinst ISO; the boot command starts the automated
#   install with a preseed served by Packer's HTTP server. For
#   users: packer build -only=virt-machine.iso -var iso_url=... .
# - virt-machine.image: a bootable Debian disk image (root filesystem on the
#   whole disk, booted with its own kernel and initrd), such as the one
#   make setup makes with debootstrap. CI builds this one: the installer
#   ISO cannot be downloaded there, the Debian archive can.
variable "disk_size" {
  type    = string
  default = "8G"
}

variable "image" {
  type = object({
    disk    = string
    kernel  = string
    initrd  = string
    ssh_key = string
  })
  default     = { disk = "", kernel = "", initrd = "", ssh_key = "" }
  description = "virt-machine.image only: the disk image, its kernel and initrd on the build host, and a private key root accepts."
}

locals {
  # Every template names its rendered answer files answer_files (file name
  # to content): templates_test.go renders and checks them through it.
  answer_files = { "preseed.cfg" = templatefile("${abspath(path.root)}/preseed.cfg.pkrtpl", {
    username = var.ssh_username
    password = var.ssh_password
    mirror   = var.mirror != "" ? var.mirror : "deb.debian.org"
  }) }
}

source "virt-machine" "iso" {
  uri         = var.uri
  type        = var.type
  vcpu        = var.vcpu
  memory      = var.memory
  network     = var.network
  output_pool = var.output_pool

  iso_url      = var.iso_url
  iso_checksum = var.iso_checksum
  disk_size    = var.disk_size
  # Typed (libvirt send-key) at the ISO's BIOS isolinux menu: leave it for the "boot:" prompt and start the
  # automated install (the "auto" label) with the preseed.
  # The ISO's own boot menu, as a person would use it; iso_kernel with
  # boot.cmdline would skip the menu (when the installer reboots, the
  # builder boots the machine from its disk, not that kernel again).
  boot_wait = "5s"
  boot_command = [
    "<esc><wait>",
    "auto priority=critical url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg",
    " console=ttyS0,115200n8<enter>",
  ]
  http_content = { for f, c in local.answer_files : "/${f}" => c }

  ssh_username     = var.ssh_username
  ssh_password     = var.ssh_password
  ssh_timeout      = "90m"
  shutdown_command = "sudo poweroff"

  clean_for_clone = true
  output_volume   = local.output_volume
}

source "virt-machine" "image" {
  uri         = var.uri
  type        = var.type
  vcpu        = var.vcpu
  memory      = var.memory
  network     = var.network
  output_pool = var.output_pool

  disk_image = var.image.disk
  boot {
    kernel  = var.image.kernel
    initrd  = var.image.initrd
    cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  }

  ssh_username         = "root"
  ssh_private_key_file = var.image.ssh_key
  ssh_timeout          = "10m"
  shutdown_command     = "poweroff"

  clean_for_clone = true
  output_volume   = local.output_volume
}

build {
  sources = ["source.virt-machine.iso", "source.virt-machine.image"]

  provisioner "shell" {
    # root in the image, the sudo-enabled user after the ISO install.
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} $(test \"$(id -u)\" = 0 || echo sudo -E) {{ .Path }}"
    scripts = [
      "${local.shared_dir}/scripts/install-guest-tools.sh",
      "${local.shared_dir}/scripts/cleanup-linux.sh",
    ]
  }
}
