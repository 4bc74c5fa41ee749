# CentOS Stream 9 LXC template container. See README.md.
#
# The source and the build are in rpm.pkr.hcl, a link to
# templates/shared/container-rpm.pkr.hcl, which all the RPM container
# templates share; this file declares only what is CentOS Stream 9's own.

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

variable "locale" {
  type        = string
  default     = "C.UTF-8"
  description = "System LANG (/etc/locale.conf)."
}

locals {
  bootstrap_tool = "dnf"
  # What a container of this system needs to boot under LXC and be
  # managed: release files, systemd as init, agetty for the console, dnf, root's dot files, passwd, ip, the C.UTF-8 locale.
  base_packages = ["centos-stream-release", "systemd", "util-linux", "dnf", "rootfiles", "passwd", "iproute", "glibc-minimal-langpack"]
}
