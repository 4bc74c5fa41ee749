data "virt_host" "this" {}

# Fall back to emulation where KVM is not usable.
locals {
  domain_type = data.virt_host.this.kvm_available ? "kvm" : "qemu"
}
