# A Debian bookworm template from debootstrap, provisioned with a shell
# script; the acceptance tests of the builder and of the provider build it.
variable "name" {
  type = string
}
variable "archive" {
  type = string
}
variable "mirror" {
  type    = string
  default = "http://deb.debian.org/debian"
}

source "virt-container" "debian" {
  bootstrap {
    release = "bookworm"
    mirror  = var.mirror
    variant = "minbase"
    # An init, so that clones of the template boot.
    packages = ["sysvinit-core"]
  }
  output_template = var.name
  output_archive  = var.archive
  metadata = {
    built_by = "virt-container acceptance test"
  }
  # sysvinit's inittab does not halt on LXC's SIGPWR: waiting longer only
  # delays the kill.
  stop_timeout = "2s"
}

build {
  sources = ["source.virt-container.debian"]

  provisioner "shell" {
    inline = [
      # The builder waited for init's boot (rcS, which empties /tmp where
      # this script was uploaded) before provisioning.
      "test \"$(runlevel)\" != unknown || { echo 'provisioning began during the boot'; exit 1; }",
      "echo 'provisioned by packer' > /etc/virt-packer-marker",
      "sed -i 's/^PRETTY_NAME=.*/PRETTY_NAME=\"Debian GNU\\/Linux 12 (virt-packer)\"/' /etc/os-release",
    ]
  }
}
