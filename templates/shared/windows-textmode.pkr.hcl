# Shared by the Windows templates installed in text mode with winnt.sif and
# an F6 driver floppy (windows-xp, windows-2003): each folder links this
# file as textmode.pkr.hcl and declares what differs (arch,
# local.computer_name and local.memory). Packer HCL has no include; see
# templates/README.md.
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
    computer_name    = local.computer_name
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
  memory      = local.memory
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

  boot_wait = var.boot_wait
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
