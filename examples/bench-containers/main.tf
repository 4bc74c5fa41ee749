# The configuration scripts/bench-containers applies: var.containers
# snapshot clones (overlayfs) of one stopped template container, running,
# each with a static address on lxcbr0, killed at once on destroy. The
# script compares it with lxc-copy, lxc-start, lxc-stop -k and lxc-destroy
# doing the same work, ten at a time.
terraform {
  required_providers {
    virt = {
      source = "virtforge/virt"
    }
  }
}

provider "virt" {
  lxc_path = var.lxc_path
}

variable "lxc_path" {
  description = "The host's LXC path, where the template is."
  type        = string
  default     = "/var/lib/lxc"
}

variable "prefix" {
  description = "Name prefix: the containers are PREFIX-NN."
  type        = string
}

variable "containers" {
  description = "How many containers."
  type        = number
}

variable "template" {
  description = "The stopped, unprivileged template container the clones are made from."
  type        = string
}

variable "first_address" {
  description = "Last octet of the first container's address in 10.0.3.0/24 (lxcbr0's network); the others follow. The tests own 10.0.3.200-249; lxcbr0's DHCP serves .2-.199."
  type        = number
  default     = 200
}

variable "mac_prefix" {
  description = "The first five octets of the containers' MACs; the sixth is the container's number. Fixed MACs keep the neighbour tables and DHCP leases of the bridge from piling up over runs."
  type        = string
}

resource "virt_container" "bench" {
  count    = var.containers
  name     = format("%s-%02d", var.prefix, count.index)
  template = var.template

  network_interface {
    bridge       = "lxcbr0"
    hwaddr       = format("%s:%02x", var.mac_prefix, count.index)
    ipv4_address = format("10.0.3.%d/24", var.first_address + count.index)
  }

  # Kill at once on destroy, as `lxc-stop -k` does: a clean halt of
  # busybox's init takes about 2 s per container.
  stop_timeout = 0
}
