# A pool for guest disks on a dedicated file system. libvirt creates the
# directory and starts the pool with libvirtd.
resource "virt_pool" "guests" {
  name = "guests"
  path = "/srv/libvirt/guests"
}

# The size of the file system is stable. Free space (available) changes as
# guests write, so an output of it would show a change on every plan.
output "guests_pool_size_gib" {
  value = floor(virt_pool.guests.capacity / 1073741824)
}
