# Windows 2000 machine template (winnt.sif, IDE disk, emulated rtl8139 NIC).
# Installed from the Microsoft CD with the shared winnt.sif
# (templates/shared/windows) on a floppy. No virtio
# driver exists for Windows 2000 (virtio-win starts at XP), so the disk is
# IDE and the NIC an emulated RTL8139, which Windows 2000 drives itself.
# These versions ship no SSH or WinRM, so the build has no communicator:
# GuiRunOnce powers the machine off when setup is done, and the builder keeps
# the disk. Known limit: without a communicator the builder presses the ACPI
# power button while it waits (shutdown_timeout); setup ignores it in text
# mode, and it has not been observed during GUI-mode setup.
# Verified: packer validate and the answer-file checks of templates_test.go
# (no Windows CD in CI, so this template is not built there).
variable "arch" {
  type        = string
  default     = "x86"
  description = "Architecture of the CD: x86."
}

variable "product_key" {
  type        = string
  sensitive   = true
  description = "Product key (Setup of these versions requires one)."
}

variable "disk_size" {
  type    = string
  default = "8G"
}

variable "boot_wait" {
  type        = string
  default     = "3s"
  description = "Wait after power-on before the boot command; slower hosts (TCG) need more."
}

locals {
  drivers = local.virtio_win_map.os[local.template_name][var.arch]
  answer_files = { "winnt.sif" = templatefile("${local.shared_dir}/windows/winnt.sif.pkrtpl", {
    product_key      = var.product_key
    computer_name    = "WIN2000"
    username         = var.admin_username
    password         = var.admin_password
    f6_driver        = local.drivers.viostor != null
    shutdown_command = "rundll32.exe user.exe,ExitWindows"
  }) }
}

source "virt-machine" "iso" {
  uri         = var.uri
  type        = var.type
  vcpu        = 1
  memory      = 512
  network     = var.network
  output_pool = var.output_pool

  iso_url      = var.iso_url
  iso_checksum = var.iso_checksum
  disk_size    = var.disk_size
  disk_bus     = "ide"
  nic_model    = "rtl8139"
  # No AHCI driver in these versions.
  cdrom_bus = "ide"

  floppy_content = local.answer_files

  boot_wait    = var.boot_wait
  boot_command = []

  communicator     = "none"
  shutdown_timeout = "4h"

  output_volume = local.output_volume
}

build {
  sources = ["source.virt-machine.iso"]
}
