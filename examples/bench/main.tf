# The configuration scripts/bench-provider applies: var.machines copy-on-write
# clones of one template volume and a small QEMU (TCG) guest on each, booting
# the test kernel, on libvirt's default network, with its serial console
# logged to a file (so that the benchmark can tell when the guests are up).
# The script compares it with virsh doing the same work; the domain it
# defines is read back from one of the machines made here.
terraform {
  required_providers {
    virt = {
      source = "virtforge/virt"
    }
  }
}

provider "virt" {}

variable "prefix" {
  description = "Name prefix: the volumes are PREFIX-NN.qcow2, the machines PREFIX-NN."
  type        = string
}

variable "machines" {
  description = "How many machines."
  type        = number
}

variable "running" {
  description = "Whether the machines are started."
  type        = bool
}

variable "mac_prefix" {
  description = "The first five octets of the machines' MACs; the sixth is the machine's number. Fixed MACs keep the DHCP leases of the default network from piling up over runs."
  type        = string
}

variable "pool" {
  description = "Pool holding the template; the clones go there too."
  type        = string
}

variable "template" {
  description = "Name of the template volume in the pool."
  type        = string
}

variable "kernel" {
  type = string
}

variable "initrd" {
  type = string
}

variable "console_dir" {
  description = "Directory the guests' serial consoles are logged to, as NAME.log."
  type        = string
}

data "virt_volume" "template" {
  pool = var.pool
  name = var.template
}

resource "virt_volume" "disk" {
  count          = var.machines
  name           = format("%s-%02d.qcow2", var.prefix, count.index)
  pool           = var.pool
  base_volume_id = data.virt_volume.template.id
}

resource "virt_machine" "guest" {
  count   = var.machines
  name    = format("%s-%02d", var.prefix, count.index)
  type    = "qemu"
  vcpu    = 1
  memory  = 128
  running = var.running

  boot {
    kernel = var.kernel
    initrd = var.initrd
    # Twenty TCG guests booting on two cores starve the kernel's IO-APIC
    # timer check, and now and then one panics ("IO-APIC + timer doesn't
    # work!"); the check is pointless in a virtual machine.
    cmdline = "console=ttyS0 no_timer_check"
  }

  disk {
    volume_id = virt_volume.disk[count.index].id
  }

  network_interface {
    network = "default"
    mac     = format("%s:%02x", var.mac_prefix, count.index)
  }

  console {
    type = "file"
    path = format("%s/%s-%02d.log", var.console_dir, var.prefix, count.index)
  }
}
