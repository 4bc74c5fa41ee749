# FreeBSD 14 machine template (bsdinstall script). The disc1 ISO
# (FreeBSD-14.1-RELEASE-amd64-disc1.iso) boots to its loader; the boot
# command starts a shell, fetches installerconfig from Packer's HTTP server
# and runs `bsdinstall script` with it.
# Verified: packer validate and the answer-file checks of templates_test.go
# (the ISO cannot be downloaded in CI, so this template is not built there).
variable "disk_size" {
  type    = string
  default = "10G"
}

locals {
  # templates_test.go renders and checks every template's answer_files.
  answer_files = { "installerconfig" = templatefile("${abspath(path.root)}/installerconfig.pkrtpl", {
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

  http_content = { for f, c in local.answer_files : "/${f}" => c }
  boot_wait    = "10s"
  # At the loader menu: single-user boot, a memory /tmp, DHCP on the virtio
  # NIC, then the scripted install.
  boot_command = [
    "<esc><wait>",
    "boot -s<enter><wait20s>",
    "/bin/sh<enter><wait>",
    "mdmfs -s 100m md1 /tmp<enter><wait>",
    "dhclient -p /tmp/dhclient.pid -l /tmp/dhclient.lease vtnet0<enter><wait10s>",
    "fetch -o /tmp/installerconfig http://{{ .HTTPIP }}:{{ .HTTPPort }}/installerconfig<enter><wait>",
    "bsdinstall script /tmp/installerconfig<enter>",
  ]

  ssh_username     = var.ssh_username
  ssh_password     = var.ssh_password
  ssh_timeout      = "120m"
  shutdown_command = "sudo poweroff"

  # clean_for_clone speaks Linux (machine-id, fstrim); the FreeBSD cleanup
  # script does the same work.
  clean_for_clone = false
  output_volume   = local.output_volume
}

build {
  sources = ["source.virt-machine.iso"]

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E {{ .Path }}"
    scripts         = ["${local.shared_dir}/scripts/cleanup-freebsd.sh"]
  }
}
