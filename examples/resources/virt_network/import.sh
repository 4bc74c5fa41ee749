# A network on the provider's default host, by name or UUID.
terraform import virt_network.lab lab
terraform import virt_network.lab 0b3e1c1e-4b5a-4c7e-9d33-0a8f2f3e6c11

# A network on another host of the provider's hosts map: HOST/NAME or HOST/UUID.
terraform import virt_network.lab rack2/lab
