# Ubuntu 22.04 (jammy) LXC template container, bootstrapped with debootstrap
# on the host (its Ubuntu scripts; the Ubuntu archive keyring, Debian package
# ubuntu-keyring, lets it check the mirror's signatures). See README.md.

variable "name" {
  type        = string
  default     = "ubuntu-22.04"
  description = "Name of the template container left on the host (virt_container.template)."
}

variable "release" {
  type        = string
  default     = "jammy"
  description = "Ubuntu suite."
}
