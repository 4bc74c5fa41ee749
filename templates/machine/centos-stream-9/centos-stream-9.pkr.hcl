# CentOS Stream 9 machine template (kickstart).
# The DVD ISO (CentOS-Stream-9-latest-x86_64-dvd1.iso); the boot command adds the kickstart (over HTTP) to anaconda's command line at the ISO's menu.
# Verified: packer validate and the answer-file checks of templates_test.go
# (the ISO cannot be downloaded in CI, so this template is not built there).
variable "disk_size" {
  type    = string
  default = "10G"
}

locals {
  # templates_test.go renders and checks every template's answer_files.
  answer_files = { "ks.cfg" = templatefile("${abspath(path.root)}/ks.cfg.pkrtpl", {
    username = var.ssh_username
    password = var.ssh_password
    mirror   = var.mirror
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
  # Typed (libvirt send-key) at the ISO's isolinux: "Install" (above the default media test), then <tab> to
  # add the kickstart to its kernel command line.
  # The ISO's own boot menu, as a person would use it; iso_kernel with
  # boot.cmdline would skip the menu (when the installer reboots, the
  # builder boots the machine from its disk, not that kernel again).
  boot_wait = "5s"
  boot_command = [
    "<up><wait><tab><wait>",
    " inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg console=ttyS0,115200n8<enter>",
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
