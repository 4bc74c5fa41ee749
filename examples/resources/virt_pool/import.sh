# A pool on the provider's default host, by name or UUID.
terraform import virt_pool.guests guests
terraform import virt_pool.guests 2d5f2c1e-8b0a-4a9e-9f3b-6e1f0c7d4a21

# A pool on another host of the provider's hosts map: HOST/NAME or HOST/UUID.
terraform import virt_pool.guests rack2/guests
