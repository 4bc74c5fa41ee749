# A container made outside this configuration (with lxc-create, say):
# where it can be reached and what it may use.
data "virt_container" "proxy" {
  name = "proxy"
}

output "proxy" {
  value = {
    running   = data.virt_container.proxy.running
    addresses = data.virt_container.proxy.ipv4_addresses
    macs      = data.virt_container.proxy.network_interface[*].hwaddr
    memory    = data.virt_container.proxy.memory # MiB; null: no limit
    # For a snapshot clone, the template container it lies on.
    template = data.virt_container.proxy.template
  }
}
