# Debian 12 (bookworm) LXC template container, bootstrapped with debootstrap
# on the host. See README.md.

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
  default     = "debian-12"
  description = "Name of the template container left on the host (virt_container.template)."
}

variable "mirror" {
  type        = string
  default     = "http://deb.debian.org/debian"
  description = "Debian mirror debootstrap downloads from."
}

variable "release" {
  type        = string
  default     = "bookworm"
  description = "Debian suite."
}

variable "init_package" {
  type        = string
  default     = "sysvinit-core"
  description = "The init clones boot: sysvinit-core (halts on LXC's SIGPWR via inittab, runs on any cgroup layout) or systemd-sysv."
}

variable "packages" {
  type        = list(string)
  default     = []
  description = "Extra packages installed by debootstrap (the container needs no network for them), e.g. openssh-server, ifupdown, isc-dhcp-client."
}

variable "locale" {
  type        = string
  default     = "C.UTF-8"
  description = "System LANG; a locale other than C.UTF-8 is generated with locale-gen."
}

source "virt-container" "debian" {
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
  metadata        = merge({ template = "container/debian-12", init = var.init_package }, var.metadata)
  stop_timeout    = "30s"
}

build {
  sources = ["source.virt-container.debian"]

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
