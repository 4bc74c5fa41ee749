# CentOS 7 LXC template container. See README.md.
#
# The source and the build are in rpm.pkr.hcl, a link to
# templates/shared/container-rpm.pkr.hcl, which all the RPM container
# templates share; this file declares only what is CentOS 7's own.

variable "name" {
  type        = string
  default     = "centos-7"
  description = "Name of the template container left on the host (virt_container.template)."
}

variable "mirror" {
  type        = string
  default     = "https://vault.centos.org/7.9.2009/os/x86_64/"
  description = "Base URL of a CentOS 7 os repository (CentOS 7 is end of life: the vault, or a local copy of it)."
}

variable "release" {
  type        = string
  default     = "7"
  description = "Release version dnf installs (dnf --releasever)."
}

variable "locale" {
  type        = string
  default     = "en_US.UTF-8"
  description = "System LANG (/etc/locale.conf)."
}

locals {
  bootstrap_tool = "dnf"
  # What a container of this system needs to boot under LXC and be
  # managed: release files, systemd as init, agetty for the console, yum, root's dot files, passwd, ip, the locales (glibc 2.17 has no C.UTF-8).
  base_packages = ["centos-release", "systemd", "util-linux", "yum", "rootfiles", "passwd", "iproute", "glibc-common"]
}
