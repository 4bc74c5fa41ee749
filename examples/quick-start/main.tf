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

# A first container: LXC's busybox template script, unprivileged (root inside
# is uid 100000 on the host), with a memory limit, on lxcbr0 with DHCP.
resource "virt_container" "hello" {
  name   = "quickstart-hello"
  memory = 64

  lxc_template {
    name = "busybox"
  }

  network_interface {}
}

output "container" {
  description = "The container's state and its host pid."
  value = {
    name  = virt_container.hello.name
    state = virt_container.hello.state
    pid   = virt_container.hello.pid
  }
}
