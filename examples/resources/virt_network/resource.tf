# A NAT network like libvirt's default: guests get addresses by DHCP from
# 10.17.3.2-10.17.3.254, reach the outside through the host, and find each
# other by name under lab.internal.
resource "virt_network" "lab" {
  name      = "lab"
  mode      = "nat"
  addresses = ["10.17.3.1/24", "fd00:17:3::1/64"]
  dhcp      = true
  domain    = "lab.internal"
}

# A private segment between guests and the host, without DHCP: guests
# configure their own addresses (with cloud-init, for example).
resource "virt_network" "backend" {
  name      = "backend"
  mode      = "isolated"
  addresses = ["10.17.4.1/24"]
  dhcp      = false
  autostart = false
}

# Guests on the host's own LAN through an existing bridge (made by the host's
# network configuration, not by libvirt).
resource "virt_network" "lan" {
  name   = "lan"
  mode   = "bridge"
  bridge = "br0"
}
