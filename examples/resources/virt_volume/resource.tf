resource "virt_pool" "guests" {
  name = "guests"
  path = "/srv/libvirt/guests"
}

# A template: a cloud image uploaded from the machine Terraform runs on.
# Format and size come from the image; a rebuilt image (new content)
# replaces the template, and the clones below with it.
resource "virt_volume" "debian" {
  name   = "debian-12.qcow2"
  pool   = virt_pool.guests.name
  source = "/var/cache/images/debian-12-genericcloud-amd64.qcow2"
}

# A copy-on-write clone of the template, larger than the image: it holds
# only what the guest changes. Raising size later grows it in place.
resource "virt_volume" "web" {
  name           = "web-root.qcow2"
  pool           = virt_pool.guests.name
  base_volume_id = virt_volume.debian.id
  size           = 20 * 1024 * 1024 * 1024 # 20 GiB
}

# An empty data disk in the default pool.
resource "virt_volume" "web_data" {
  name   = "web-data.raw"
  format = "raw"
  size   = 50 * 1024 * 1024 * 1024 # 50 GiB, sparse

  timeouts {
    delete = "10m"
  }
}
