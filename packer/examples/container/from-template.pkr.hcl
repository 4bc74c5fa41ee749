# A second template layered on the first: the build container is a
# copy-on-write clone of debian-12-base, and the result is a new template
# (the source template is left as it was).
packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

source "virt-container" "web" {
  template         = "debian-12-base"
  wait_for_address = true
  output_template  = "debian-12-nginx"
}

build {
  sources = ["source.virt-container.web"]

  provisioner "shell" {
    inline = [
      "apt-get update",
      "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx",
      "apt-get clean",
    ]
  }

  provisioner "file" {
    content     = "<h1>hello from a virt-container template</h1>\n"
    destination = "/var/www/html/index.html"
  }
}
