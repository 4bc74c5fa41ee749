# A Debian 12 template volume installed from the netinst ISO: the boot
# command is typed through libvirt's send-key (no VNC client), the installer
# reads its answers (http/preseed.cfg) from Packer's HTTP server, and the
# installed system is provisioned over SSH.
packer {
  required_plugins {
    virt = {
      source  = "github.com/virtforge/virt"
      version = ">= 0.1.0"
    }
  }
}

variable "iso_url" {
  type    = string
  default = "https://cdimage.debian.org/cdimage/archive/12.8.0/amd64/iso-cd/debian-12.8.0-amd64-netinst.iso"
}

variable "iso_checksum" {
  type    = string
  default = "file:https://cdimage.debian.org/cdimage/archive/12.8.0/amd64/iso-cd/SHA256SUMS"
}

source "virt-machine" "debian" {
  iso_url      = var.iso_url
  iso_checksum = var.iso_checksum
  disk_size    = "8G"
  vcpu         = 2
  memory       = 2048

  http_directory = "${path.root}/http"
  boot_wait      = "5s"
  # At the ISO's BIOS boot menu: leave it for the "boot:" prompt and start
  # the automated install with the preseed file.
  boot_command = [
    "<esc><wait>",
    "auto priority=critical url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg",
    " console=ttyS0,115200n8<enter>",
  ]

  ssh_username     = "packer"
  ssh_password     = "packer"
  ssh_timeout      = "60m"
  shutdown_command = "sudo shutdown -P now"

  clean_for_clone = true
  output_volume   = "debian-12-iso.qcow2"
  # A copy of the disk, the domain XML, SHA256SUMS and manifest.json.
  output_directory = "output-debian-12-iso"
}

build {
  sources = ["source.virt-machine.debian"]

  provisioner "shell" {
    inline = ["sudo apt-get clean"]
  }
}
