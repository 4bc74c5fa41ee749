# A Debian bookworm template whose init is systemd, as in most of the
# supported distributions' templates: the builder must wait for systemd's
# boot to end before provisioning.
variable "name" {
  type = string
}
variable "mirror" {
  type    = string
  default = "http://deb.debian.org/debian"
}

source "virt-container" "debian" {
  bootstrap {
    release  = "bookworm"
    mirror   = var.mirror
    variant  = "minbase"
    packages = ["systemd-sysv"]
  }
  output_template = var.name
}

build {
  sources = ["source.virt-container.debian"]

  provisioner "shell" {
    inline = [
      # The builder waited for systemd (is-system-running --wait) before
      # provisioning: the boot is over, whether every unit started or not.
      "test \"$(cat /proc/1/comm)\" = systemd || { echo \"init is $(cat /proc/1/comm), not systemd\"; exit 1; }",
      "state=$(systemctl is-system-running || true)",
      "echo \"systemd: $state\"",
      "case $state in running|degraded) ;; *) echo 'provisioning began during the boot'; exit 1 ;; esac",
      "echo 'provisioned by packer' > /etc/virt-packer-marker",
    ]
  }
}
