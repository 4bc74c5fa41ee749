# A volume on the provider's default host, by its key (its path, in a
# directory pool) or by POOL/NAME.
terraform import virt_volume.web /srv/libvirt/guests/web-root.qcow2
terraform import virt_volume.web guests/web-root.qcow2

# A volume on another host of the provider's hosts map: HOST//KEY or
# HOST/POOL/NAME.
terraform import virt_volume.web rack2//srv/libvirt/guests/web-root.qcow2
terraform import virt_volume.web rack2/guests/web-root.qcow2
