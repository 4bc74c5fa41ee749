# libvirt's own default network, which Terraform does not manage.
data "virt_network" "default" {
  name = "default"
}

output "default_network" {
  value = {
    bridge    = data.virt_network.default.bridge
    addresses = data.virt_network.default.addresses
    active    = data.virt_network.default.active
    # Addresses the network's DHCP server has handed out, by MAC address.
    leases = { for l in data.virt_network.default.leases : l.mac => l.ip }
  }
}
