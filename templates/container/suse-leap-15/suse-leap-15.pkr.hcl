# openSUSE Leap 15 LXC template container. See README.md.
#
# The source and the build are in rpm.pkr.hcl, a link to
# templates/shared/container-rpm.pkr.hcl, which all the RPM container
# templates share; this file declares only what is openSUSE Leap 15's own.

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

variable "locale" {
  type        = string
  default     = "en_US.UTF-8"
  description = "System LANG (/etc/locale.conf)."
}

locals {
  bootstrap_tool = "zypper"
  # What a container of this system needs to boot under LXC and be
  # managed: release files, systemd and its /sbin/init, agetty for the console, zypper, the base file system layout, passwd, ip, the C.UTF-8 and en_US locales.
  base_packages = ["openSUSE-release", "systemd", "systemd-sysvinit", "util-linux", "zypper", "aaa_base", "shadow", "iproute2", "glibc-locale-base"]
}
