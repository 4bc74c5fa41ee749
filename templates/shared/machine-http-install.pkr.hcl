# Shared by the machine templates whose installer takes its answer file over
# HTTP from a boot command typed at the ISO's menu (centos-7,
# centos-stream-9, fedora-40, scientific-7, suse-leap-15, ubuntu-18.04): each folder links
# this file as http-install.pkr.hcl. Packer HCL has no include; see
# templates/README.md.
#
# Each folder declares what differs: the disk_size variable (its default
# differs, and a variable's default cannot come from a local), and the
# locals answer_file (the file's name: ks.cfg, autoinst.xml; the folder
# holds it as <name>.pkrtpl) and boot_command (what is typed at its ISO's
# menu).

locals {
  # templates_test.go renders and checks every template's answer_files.
  answer_files = { (local.answer_file) = templatefile("${abspath(path.root)}/${local.answer_file}.pkrtpl", {
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
  # The ISO's own boot menu, as a person would use it; iso_kernel with
  # boot.cmdline would skip the menu (when the installer reboots, the
  # builder boots the machine from its disk, not that kernel again).
  boot_wait    = "5s"
  boot_command = local.boot_command
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
