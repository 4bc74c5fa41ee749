# Shared by the RPM container templates (centos-7, centos-stream-9,
# fedora-40, scientific-7, suse-leap-15): each folder links this file as
# rpm.pkr.hcl. Packer HCL has no include; see templates/README.md.
#
# Each folder declares the variables whose defaults differ (name, mirror,
# release, locale: a variable's default cannot come from a local, so they
# cannot live here) and two locals: bootstrap_tool (dnf, or zypper on
# openSUSE) and base_packages, the packages its system needs in a container.
#
# Two sources, chosen by the variable archive:
# - archive empty (default): the bootstrap tool on the host installs the root
#   file system from the mirror (the tool must be installed where Packer
#   runs: packer validate says so otherwise);
# - archive set: the build unpacks that root file system tarball instead, the
#   route that works on a Debian host without the tool.

packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "packages" {
  type        = list(string)
  default     = []
  description = "Packages installed by the bootstrap tool (dnf, or zypper on openSUSE) beside the base set (bootstrap only), e.g. openssh-server."
}

source "virt-container" "rpm" {
  dynamic "bootstrap" {
    for_each = var.archive == "" ? [var.release] : []
    content {
      tool     = local.bootstrap_tool
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
  metadata        = merge({ template = "container/${basename(abspath(path.root))}", source = var.archive == "" ? local.bootstrap_tool : "archive" }, var.metadata)
  stop_timeout    = "30s"
}

build {
  sources = ["source.virt-container.rpm"]

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
