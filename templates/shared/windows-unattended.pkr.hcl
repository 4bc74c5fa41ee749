# Shared by the Windows templates installed with autounattend.xml (Vista
# family: windows-2008-r2, windows-7, windows-8): each folder links this file
# as unattended.pkr.hcl and declares what differs (arch, image_name and
# local.computer_name). Packer HCL has no include; see templates/README.md.
variable "product_key" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Product key; empty for evaluation and volume-licence media that need none at setup."
}

variable "cloudbase_init_msi" {
  type        = string
  default     = ""
  description = "Path of CloudbaseInitSetup_x64.msi (or _x86) on this machine: installed so that the provider's cloud_init works on clones. see the template's README for the cloudbase-init release that supports its Windows version."
}

variable "disk_size" {
  type    = string
  default = "40G"
}

locals {
  drivers = local.virtio_win_map.os[local.template_name][var.arch]
  # Storage and network first: Setup needs them to see the disk and NIC.
  pe_drivers = [for k in ["viostor", "vioscsi", "NetKVM", "Balloon"] : local.drivers[k] if local.drivers[k] != null]
  answer_files = { "autounattend.xml" = templatefile("${local.shared_dir}/windows/autounattend.xml.pkrtpl", {
    arch          = var.arch
    image_name    = var.image_name
    product_key   = var.product_key
    computer_name = local.computer_name
    username      = var.admin_username
    password      = var.admin_password
    driver_paths  = flatten([for d in ["D", "E", "F"] : [for p in local.pe_drivers : "${d}:\\${replace(p, "/", "\\")}"]])
  }) }
  cloudbase_unattend = "C:\\Program Files\\Cloudbase Solutions\\Cloudbase-Init\\conf\\Unattend.xml"
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
  disk_bus     = "virtio"
  nic_model    = "virtio"
  cdrom_bus    = "sata"

  cd_content = local.answer_files
  # The driver folders keep their paths (viostor/w7/amd64, ...) on the CD.
  cd_files = concat(
    distinct([for p in values(local.drivers) : "${var.virtio_win_dir}/${split("/", p)[0]}" if p != null]),
    ["${local.shared_dir}/windows/install-guest-tools.cmd"],
    var.cloudbase_init_msi != "" ? [var.cloudbase_init_msi] : [],
  )

  communicator   = "winrm"
  winrm_username = var.admin_username
  winrm_password = var.admin_password
  winrm_timeout  = "4h"
  # cloudbase-init's own unattend file makes sysprep hand the first boot of
  # every clone to cloudbase-init.
  shutdown_command = "C:\\Windows\\System32\\Sysprep\\sysprep.exe /generalize /oobe /shutdown /quiet${var.cloudbase_init_msi != "" ? " /unattend:\"${local.cloudbase_unattend}\"" : ""}"
  shutdown_timeout = "30m"

  output_volume = local.output_volume
}

build {
  sources = ["source.virt-machine.iso"]

  provisioner "windows-shell" {
    inline = [
      "for %d in (D E F G H) do if exist %d:\\install-guest-tools.cmd call %d:\\install-guest-tools.cmd ${replace(coalesce(local.drivers["qemu-ga"], "-"), "/", "\\")} ${basename(var.cloudbase_init_msi)}",
    ]
  }
}
