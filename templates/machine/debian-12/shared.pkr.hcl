# Shared by every template under templates/machine: each folder holds a
# symlink `shared.pkr.hcl` to this file (Packer HCL has no include; see
# templates/README.md). Only what every machine template declares alike
# lives here; OS-specific variables stay in the template's own file.
packer {
  required_version = ">= 1.10.0"
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "uri" {
  type        = string
  default     = "qemu:///system"
  description = "libvirt URI of the host that builds (and keeps) the template."
}

variable "type" {
  type        = string
  default     = "kvm"
  description = "Domain type: kvm, or qemu (emulation) on hosts without usable KVM."
}

variable "vcpu" {
  type    = number
  default = 2
}

variable "memory" {
  type        = number
  default     = 2048
  description = "Memory of the build machine, in MiB."
}

variable "network" {
  type        = string
  default     = "default"
  description = "libvirt network of the build machine: it needs DHCP, and the installer needs the mirror."
}

variable "output_pool" {
  type    = string
  default = "default"
}

variable "output_volume" {
  type        = string
  default     = ""
  description = "Name of the template volume. Empty: the template folder's name with .qcow2 (e.g. debian-12.qcow2)."
}

variable "iso_url" {
  type        = string
  default     = ""
  description = "The installer ISO: a URL or a local path. The templates download nothing by default."
}

variable "iso_checksum" {
  type        = string
  default     = "none"
  description = "Checksum of the ISO (sha256:..., or file:URL of a SHA256SUMS); \"none\" skips the check."
}

locals {
  # The folder's name is the template's name (debian-12, windows-7, ...).
  template_name = basename(abspath(path.root))
  output_volume = coalesce(var.output_volume, "${local.template_name}.qcow2")
  shared_dir    = "${abspath(path.root)}/../../shared"
}
