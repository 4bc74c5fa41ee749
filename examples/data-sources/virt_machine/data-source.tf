# A machine made outside this configuration: its addresses and disks.
data "virt_machine" "db" {
  name = "db"
}

output "db_addresses" {
  value = flatten(data.virt_machine.db.network_interface[*].addresses)
}

output "db_boot_volume" {
  value = data.virt_machine.db.disk[0].volume_id
}
