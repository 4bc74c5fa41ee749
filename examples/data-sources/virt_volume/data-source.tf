# A template volume built outside this configuration (by Packer, say) ...
data "virt_volume" "template" {
  pool = "default"
  name = "debian-12-base.qcow2"
}

# ... cloned copy-on-write for a machine.
resource "virt_volume" "root" {
  name           = "app-root.qcow2"
  base_volume_id = data.virt_volume.template.id
  size           = max(data.virt_volume.template.size, 10 * 1024 * 1024 * 1024)
}
