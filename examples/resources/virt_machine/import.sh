# A machine on the provider's default host, by name or UUID.
terraform import virt_machine.web web
terraform import virt_machine.web 6f1c2a8e-3b0d-4e55-9a7c-2d4f8b1e0c93

# A machine on another host of the provider's hosts map: HOST/NAME or HOST/UUID.
terraform import virt_machine.web rack2/web
