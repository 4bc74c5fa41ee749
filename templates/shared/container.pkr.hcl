# Variables shared by every template under templates/container: each folder
# holds a symlink `container.pkr.hcl` to this file. The per-system ones
# (name, mirror, release, packages, locale) are in each template.

variable "output_archive" {
  type        = string
  default     = ""
  description = "Also write the root file system as a tar.gz at this path (with <path>.json metadata); empty: no archive."
}

variable "archive" {
  type        = string
  default     = ""
  description = "A root file system tarball (plain, gzip, bzip2, xz or zstd; an earlier build's output_archive, a distribution's rootfs image) to build from instead of bootstrapping; empty: bootstrap."
}

variable "hostname" {
  type        = string
  default     = ""
  description = "Hostname written to /etc/hostname; empty: none, so each clone keeps the hostname LXC gives it (its name)."
}

variable "bridge" {
  type        = string
  default     = "lxcbr0"
  description = "Host bridge the build container joins."
}

variable "lxc_path" {
  type        = string
  default     = ""
  description = "LXC's container directory; empty: LXC's default (/var/lib/lxc)."
}

variable "metadata" {
  type        = map(string)
  default     = {}
  description = "Extra metadata keys (snake_case) recorded with the template, beside os, release, arch and build_time."
}
