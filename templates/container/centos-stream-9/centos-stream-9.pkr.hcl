# CentOS Stream 9 LXC template container. See README.md.
#
# Two sources, chosen by the variable archive:
# - archive empty (default): dnf on the host bootstraps the root file system
#   from the mirror (dnf must be installed where Packer runs: packer validate
#   says so otherwise);
# - archive set: the build unpacks that root file system tarball instead, the
#   route that works on a Debian host without dnf.

packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "name" {
  type        = string
  default     = "centos-stream-9"
  description = "Name of the template container left on the host (virt_container.template)."
}

variable "mirror" {
  type        = string
  default     = "https://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/"
  description = "Base URL of a CentOS Stream 9 BaseOS repository (one repository: BaseOS holds everything below)."
}

variable "release" {
  type        = string
  default     = "9"
  description = "Release version dnf installs (dnf --releasever)."
}

variable "packages" {
  type        = list(string)
  default     = []
  description = "Packages installed by dnf beside the base set (bootstrap only), e.g. openssh-server."
}

variable "locale" {
  type        = string
  default     = "C.UTF-8"
  description = "System LANG (/etc/locale.conf)."
}

locals {
  # What a container of this system needs to boot under LXC and be
  # managed: release files, systemd as init, agetty for the console, dnf, root's dot files, passwd, ip, the C.UTF-8 locale.
  base_packages = ["centos-stream-release", "systemd", "util-linux", "dnf", "rootfiles", "passwd", "iproute", "glibc-minimal-langpack"]
}

source "virt-container" "centos" {
  dynamic "bootstrap" {
    for_each = var.archive == "" ? [var.release] : []
    content {
      tool     = "dnf"
      release  = bootstrap.value
      mirror   = var.mirror
      packages = concat(local.base_packages, var.packages)
    }
  }
  archive         = var.archive
  bridge          = var.bridge
  lxc_path        = var.lxc_path
  output_template = var.name
  output_archive  = var.output_archive
  metadata        = merge({ template = "container/centos-stream-9", source = var.archive == "" ? "dnf" : "archive" }, var.metadata)
  stop_timeout    = "30s"
}

build {
  sources = ["source.virt-container.centos"]

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
