# openSUSE Leap 15 LXC template container. See README.md.
#
# Two sources, chosen by the variable archive:
# - archive empty (default): zypper on the host bootstraps the root file system
#   from the mirror (zypper must be installed where Packer runs: packer validate
#   says so otherwise);
# - archive set: the build unpacks that root file system tarball instead, the
#   route that works on a Debian host without zypper.

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
  default     = "suse-leap-15"
  description = "Name of the template container left on the host (virt_container.template)."
}

variable "mirror" {
  type        = string
  default     = "http://download.opensuse.org/distribution/leap/15.6/repo/oss/"
  description = "Base URL of an openSUSE Leap 15 oss repository; keep it and release on the same minor version."
}

variable "release" {
  type        = string
  default     = "15.6"
  description = "Release version zypper installs (zypper --releasever)."
}

variable "packages" {
  type        = list(string)
  default     = []
  description = "Packages installed by zypper beside the base set (bootstrap only), e.g. openssh-server."
}

variable "locale" {
  type        = string
  default     = "en_US.UTF-8"
  description = "System LANG (/etc/locale.conf)."
}

locals {
  # What a container of this system needs to boot under LXC and be
  # managed: release files, systemd and its /sbin/init, agetty for the console, zypper, the base file system layout, passwd, ip, the C.UTF-8 and en_US locales.
  base_packages = ["openSUSE-release", "systemd", "systemd-sysvinit", "util-linux", "zypper", "aaa_base", "shadow", "iproute2", "glibc-locale-base"]
}

source "virt-container" "suse" {
  dynamic "bootstrap" {
    for_each = var.archive == "" ? [var.release] : []
    content {
      tool     = "zypper"
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
  metadata        = merge({ template = "container/suse-leap-15", source = var.archive == "" ? "zypper" : "archive" }, var.metadata)
  stop_timeout    = "30s"
}

build {
  sources = ["source.virt-container.suse"]

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
