# Shared by the Ubuntu container templates (ubuntu-22.04, ubuntu-24.04): each
# folder links this file as ubuntu.pkr.hcl and declares only its `name` and
# `release` defaults. Packer HCL has no include; see templates/README.md.

packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "mirror" {
  type        = string
  default     = "http://archive.ubuntu.com/ubuntu"
  description = "Ubuntu mirror debootstrap downloads from (main component)."
}

variable "init_package" {
  type        = string
  default     = "systemd-sysv"
  description = "The init clones boot (Ubuntu's main component has only systemd)."
}

variable "packages" {
  type        = list(string)
  default     = []
  description = "Extra packages installed by debootstrap (the container needs no network for them), e.g. openssh-server, netplan.io."
}

variable "locale" {
  type        = string
  default     = "C.UTF-8"
  description = "System LANG; a locale other than C.UTF-8 is generated with locale-gen."
}

source "virt-container" "ubuntu" {
  dynamic "bootstrap" {
    for_each = var.archive == "" ? [var.release] : []
    content {
      release  = bootstrap.value
      mirror   = var.mirror
      variant  = "minbase"
      packages = concat([var.init_package, "locales"], var.packages)
    }
  }
  archive         = var.archive
  bridge          = var.bridge
  lxc_path        = var.lxc_path
  output_template = var.name
  output_archive  = var.output_archive
  metadata        = merge({ template = "container/${basename(abspath(path.root))}", init = var.init_package }, var.metadata)
  stop_timeout    = "30s"
}

build {
  sources = ["source.virt-container.ubuntu"]

  provisioner "shell" {
    environment_vars = [
      "TEMPLATE_HOSTNAME=${var.hostname}",
      "TEMPLATE_LOCALE=${var.locale}",
    ]
    scripts = [
      "${path.root}/../../shared/container-setup.sh",
      "${path.root}/../../shared/container-cleanup.sh",
    ]
  }
}
