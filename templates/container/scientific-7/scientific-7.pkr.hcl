# Scientific Linux 7 LXC template container. See README.md.
#
# The source and the build are in rpm.pkr.hcl, a link to
# templates/shared/container-rpm.pkr.hcl, which all the RPM container
# templates share; this file declares only what is Scientific Linux 7's own.

variable "name" {
  type        = string
  default     = "scientific-7"
  description = "Name of the template container left on the host (virt_container.template)."
}

variable "mirror" {
  type        = string
  default     = "http://ftp.scientificlinux.org/linux/scientific/7x/x86_64/os/"
  description = "Base URL of a Scientific Linux 7 os repository (end of life: the archive, or a local copy of it)."
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
  base_packages = ["sl-release", "systemd", "util-linux", "yum", "rootfiles", "passwd", "iproute", "glibc-common"]
}
