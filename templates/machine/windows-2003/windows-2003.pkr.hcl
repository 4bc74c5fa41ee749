# Windows Server 2003 machine template (winnt.sif, virtio disk from an F6 floppy).
# Installed from the Microsoft CD with the shared winnt.sif
# (templates/shared/windows) on a floppy. The virtio
# disk's driver (viostor, virtio-win 0.1.173: the last release with 2003
# drivers) is loaded from an F6 floppy the template builds (txtsetup.oem).
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
  description = "Architecture of the CD: x86 or amd64."
}

variable "product_key" {
  type        = string
  sensitive   = true
  description = "Product key (Setup of these versions requires one)."
}

variable "disk_size" {
  type    = string
  default = "16G"
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
    computer_name    = "WIN2003"
    username         = var.admin_username
    password         = var.admin_password
    f6_driver        = local.drivers.viostor != null
    shutdown_command = "shutdown -s -t 0"
  }) }
}

source "virt-machine" "iso" {
  uri         = var.uri
  type        = var.type
  vcpu        = 1
  memory      = 1024
  network     = var.network
  output_pool = var.output_pool

  iso_url      = var.iso_url
  iso_checksum = var.iso_checksum
  disk_size    = var.disk_size
  disk_bus     = "virtio"
  nic_model    = "e1000"
  # No AHCI driver in these versions.
  cdrom_bus = "ide"

  floppy_content = local.answer_files
  # The F6 driver floppy: txtsetup.oem and the viostor driver from the
  # folder the shared map names (virtio-win 0.1.173 for these versions).
  floppy_files = concat(
    ["${local.shared_dir}/windows/txtsetup.oem"],
    [for f in ["viostor.sys", "viostor.inf", "viostor.cat"] : "${var.virtio_win_dir}/${local.drivers.viostor}/${f}"],
  )
  # NetKVM and Balloon for after the install (the build itself uses the
  # emulated NIC, which these versions drive with their own driver).
  cd_files = [for k in ["NetKVM", "Balloon"] : "${var.virtio_win_dir}/${split("/", local.drivers[k])[0]}"]

  boot_wait    = var.boot_wait
  boot_command = [
    # Text-mode setup offers F6 in its first seconds: press it, then S
    # (specify an additional device), Enter (read the floppy in A:), Enter
    # (the driver txtsetup.oem names), Enter (continue).
    "<f6><wait2><f6><wait2><f6><wait2><f6><wait60s>",
    "s<wait10s><enter><wait20s><enter><wait10s><enter>",
  ]

  communicator     = "none"
  shutdown_timeout = "4h"

  output_volume = local.output_volume
}

build {
  sources = ["source.virt-machine.iso"]
}
