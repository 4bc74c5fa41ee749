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
