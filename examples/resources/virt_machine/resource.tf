# A template image, uploaded once, and a copy-on-write clone of it per
# machine: creating the clone costs the same whatever the template's size.
resource "virt_volume" "debian" {
  name   = "debian-12-genericcloud-amd64.qcow2"
  source = "/var/lib/images/debian-12-genericcloud-amd64.qcow2"
}

resource "virt_volume" "web" {
  name           = "web.qcow2"
  base_volume_id = virt_volume.debian.id
  size           = 20 * 1024 * 1024 * 1024 # grow the clone to 20 GiB
}

# A Debian guest on libvirt's default NAT network, configured by cloud-init.
# memory and vcpu can grow live up to max_memory and max_vcpu.
resource "virt_machine" "web" {
  name       = "web"
  vcpu       = 2
  max_vcpu   = 4
  memory     = 2048
  max_memory = 4096

  disk {
    volume_id = virt_volume.web.id
  }

  network_interface {
    network          = "default"
    wait_for_address = true
  }

  cloud_init {
    user_data = <<-EOT
      #cloud-config
      users:
        - name: admin
          sudo: ALL=(ALL) NOPASSWD:ALL
          ssh_authorized_keys:
            - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnlyForTheDocs admin@example
      packages: [nginx]
    EOT
  }

  # Changes that take a restart (boot settings, max_memory...) restart the
  # guest during apply instead of waiting for its next boot.
  reboot_on_update = true

  timeouts {
    create = "5m"
  }
}

output "web_address" {
  value = virt_machine.web.network_interface[0].addresses[0]
}

# A guest booting a kernel straight from the host, under QEMU's emulator
# (for hosts without KVM), with its serial console written to a file.
resource "virt_machine" "tiny" {
  name    = "tiny"
  type    = "qemu"
  memory  = 256
  running = true

  boot {
    kernel  = "/var/lib/images/vmlinuz"
    initrd  = "/var/lib/images/initrd.gz"
    cmdline = "console=ttyS0"
  }

  disk {
    path   = "/var/lib/images/tiny.qcow2"
    format = "qcow2"
  }

  network_interface {
    bridge = "br0"
    mac    = "52:54:00:12:34:56"
  }

  console {
    type = "file"
    path = "/var/log/tiny-console.log"
  }

  graphics {
    type = "vnc"
  }
}

# Installed from an ISO, as on a Proxmox node: the blank disk boots first
# and, while it has nothing to boot, the installer's CD-ROM does; once the
# installer has written the disk, the machine boots the installed system.
resource "virt_volume" "netinst" {
  name   = "debian-12-amd64-netinst.iso"
  format = "raw"
  source = "/var/lib/images/debian-12-amd64-netinst.iso"
}

resource "virt_volume" "blank" {
  name = "installed.qcow2"
  size = 20 * 1024 * 1024 * 1024
}

resource "virt_machine" "installed" {
  name   = "installed"
  memory = 2048

  disk {
    volume_id = virt_volume.blank.id
  }

  disk {
    volume_id = virt_volume.netinst.id
    device    = "cdrom"
  }

  network_interface {
    network = "default"
  }

  graphics {
    type = "vnc"
  }
}
