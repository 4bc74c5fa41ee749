# Ubuntu 22.04 machine template (autoinstall).
# The live server ISO (ubuntu-22.04.5-live-server-amd64.iso); the boot command starts casper with autoinstall at GRUB's command line; the user-data is on a CD labelled cidata.
# Verified: packer validate and the answer-file checks of templates_test.go
# (the ISO cannot be downloaded in CI, so this template is not built there).
variable "disk_size" {
  type    = string
  default = "12G"
}

locals {
  # templates_test.go renders and checks every template's answer_files.
  answer_files = { "user-data" = templatefile("${abspath(path.root)}/user-data.pkrtpl", {
    username = var.ssh_username
    password = var.ssh_password
    mirror   = var.mirror != "" ? var.mirror : "http://archive.ubuntu.com/ubuntu"
    # autoinstall wants a crypt(3) hash; bcrypt is one that HCL can make.
    password_hash = bcrypt(var.ssh_password)
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
  # Typed (libvirt send-key) at the ISO's GRUB: its command line ("c"), the casper kernel with autoinstall
  # (the answers are on the cidata CD), then boot.
  # The ISO's own boot menu, as a person would use it; iso_kernel with
  # boot.cmdline would skip the menu (when the installer reboots, the
  # builder boots the machine from its disk, not that kernel again).
  boot_wait = "5s"
  boot_command = [
    "c<wait>",
    "linux /casper/vmlinuz autoinstall console=ttyS0,115200n8 ---<enter><wait>",
    "initrd /casper/initrd<enter><wait>",
    "boot<enter>",
  ]
  cd_content = merge(local.answer_files, { "meta-data" = "" })
  cd_label   = "cidata"

  ssh_username     = var.ssh_username
  ssh_password     = var.ssh_password
  ssh_timeout      = "120m"
  shutdown_command = "sudo poweroff"

  clean_for_clone = true
  output_volume   = local.output_volume
}

build {
  sources = ["source.virt-machine.iso"]

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E {{ .Path }}"
    scripts = [
      "${local.shared_dir}/scripts/install-guest-tools.sh",
      "${local.shared_dir}/scripts/cleanup-linux.sh",
    ]
  }
}
