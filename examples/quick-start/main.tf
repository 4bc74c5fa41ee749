# The quick-start: what the README applies on a freshly set-up host.
terraform {
  required_providers {
    virt = {
      source = "virtforge/virt"
    }
  }
}

# With no arguments the provider talks to qemu:///system (or
# LIBVIRT_DEFAULT_URI) and keeps containers in /var/lib/lxc.
provider "virt" {}

data "virt_host" "this" {}

output "host" {
  description = "What the host offers: architecture, CPUs, memory, KVM, libvirt and LXC versions."
  value = {
    hostname        = data.virt_host.this.hostname
    arch            = data.virt_host.this.arch
    cpus            = data.virt_host.this.cpus
    memory_mib      = data.virt_host.this.memory
    kvm_available   = data.virt_host.this.kvm_available
    domain_types    = data.virt_host.this.domain_types
    libvirt_version = data.virt_host.this.libvirt_version
    lxc_version     = data.virt_host.this.lxc_version
  }
}

# The templates: scripts/quickstart bakes them with Packer first
# (packer/container.pkr.hcl and packer/machine.pkr.hcl beside this file).
variable "container_template" {
  description = "The stopped template container the container is cloned from."
  type        = string
  default     = "quickstart-debian-12"
}

variable "machine_template" {
  description = "The template volume, in the default pool, the machine's disk is cloned from."
  type        = string
  default     = "quickstart-debian-12.qcow2"
}

variable "machine_type" {
  description = "kvm, or qemu (emulation) where KVM does not work, such as a host that is itself a guest."
  type        = string
  default     = "kvm"
}

variable "kernel" {
  description = "The kernel the machine boots directly (the template image has no boot loader)."
  type        = string
}

variable "initrd" {
  description = "The initrd that goes with kernel."
  type        = string
}

# A container cloned copy-on-write from the Packer-built template (it takes
# milliseconds whatever the template's size): unprivileged, root inside is
# uid 100000 on the host, with a memory limit and a static address on lxcbr0.
resource "virt_container" "web" {
  name     = "quickstart-web"
  template = var.container_template
  memory   = 128

  network_interface {
    ipv4_address = "10.0.3.250/24"
    ipv4_gateway = "10.0.3.1"
  }
}

# A machine on a copy-on-write clone of the Packer-built template volume:
# virtio disk and network, on libvirt's default NAT network.
data "virt_volume" "template" {
  pool = "default"
  name = var.machine_template
}

resource "virt_volume" "vm" {
  name           = "quickstart-vm.qcow2"
  base_volume_id = data.virt_volume.template.id
}

resource "virt_machine" "vm" {
  name   = "quickstart-vm"
  type   = var.machine_type
  vcpu   = 1
  memory = 512

  boot {
    kernel  = var.kernel
    initrd  = var.initrd
    cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  }

  disk {
    volume_id = virt_volume.vm.id
  }

  network_interface {
    network = "default"
  }
}

output "container" {
  description = "The container's state, host pid and address."
  value = {
    name      = virt_container.web.name
    state     = virt_container.web.state
    pid       = virt_container.web.pid
    addresses = virt_container.web.ipv4_addresses
  }
}

output "machine" {
  description = "The machine's UUID and state."
  value = {
    name  = virt_machine.vm.name
    id    = virt_machine.vm.id
    state = virt_machine.vm.state
  }
}
