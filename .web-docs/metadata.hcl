# The Packer integration's description: the README and component pages
# beside it are generated from docs/packer by `make generate`.
integration {
  name        = "virt"
  description = "Builds KVM machine templates (libvirt volumes) and LXC container templates that the Terraform provider virtforge/virt clones."
  identifier  = "packer/virtforge/virt"
  docs {
    process_docs    = true
    readme_location = "./README.md"
    external_url    = "https://github.com/virtforge/terraform-provider-virt"
  }
  license {
    type = "MPL-2.0"
    url  = "https://github.com/virtforge/terraform-provider-virt/blob/main/LICENSE"
  }
  component {
    type = "builder"
    name = "virt-machine"
    slug = "machine"
  }
  component {
    type = "builder"
    name = "virt-container"
    slug = "container"
  }
}
