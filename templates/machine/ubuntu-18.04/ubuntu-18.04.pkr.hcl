# Ubuntu 18.04 machine template (preseed).
# The debian-installer server ISO (ubuntu-18.04.6-server-amd64.iso, not the live ISO); the boot command starts the installer with the preseed (over HTTP) at the ISO's menu.
# Verified: packer validate and the answer-file checks of templates_test.go
# (the ISO cannot be downloaded in CI, so this template is not built there).
variable "disk_size" {
  type    = string
  default = "10G"
}

locals {
  # templates_test.go renders and checks every template's answer_files.
  answer_files = { "preseed.cfg" = templatefile("${abspath(path.root)}/preseed.cfg.pkrtpl", {
    username = var.ssh_username
    password = var.ssh_password
    mirror   = var.mirror != "" ? var.mirror : "archive.ubuntu.com"
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
  # Typed (libvirt send-key) at the ISO's isolinux: past the language menu to the "boot:" prompt, then the
  # installer kernel with the preseed.
  # The ISO's own boot menu, as a person would use it; iso_kernel with
  # boot.cmdline would skip the menu (when the installer reboots, the
  # builder boots the machine from its disk, not that kernel again).
  boot_wait = "5s"
  boot_command = [
    "<esc><wait><esc><wait><enter><wait>",
    "/install/vmlinuz auto=true priority=critical url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg",
    " initrd=/install/initrd.gz console=ttyS0,115200n8 ---<enter>",
  ]
  http_content = { for f, c in local.answer_files : "/${f}" => c }

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
