# A pool for guest disks on a dedicated file system. libvirt creates the
# directory and starts the pool with libvirtd.
resource "virt_pool" "guests" {
  name = "guests"
  path = "/srv/libvirt/guests"
}

output "guests_pool_free_gib" {
  value = floor(virt_pool.guests.available / 1073741824)
}
