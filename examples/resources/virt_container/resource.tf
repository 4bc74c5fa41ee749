# A copy-on-write snapshot clone of a stopped template container (one that a
# Packer build made, say): creating it takes milliseconds whatever the
# template's size. Unprivileged by default: root inside is a high uid on the
# host.
resource "virt_container" "web" {
  name     = "web"
  template = "debian-12"

  # Limits change the running container live.
  memory     = 512
  swap       = 256
  cpus       = "0-1"
  cpu_weight = 200

  network_interface {
    bridge       = "lxcbr0"
    ipv4_address = "10.0.3.10/24"
    ipv4_gateway = "10.0.3.1"
  }

  # The site's files from the host, read-only inside.
  mount {
    source     = "/srv/www"
    target     = "/var/www"
    read_only  = true
    create_dir = true
  }

  # Network and mount changes wait for the next start; this lets the apply
  # restart the container to bring them in.
  restart_on_update = true
  stop_timeout      = 20
}

output "web_addresses" {
  value = virt_container.web.ipv4_addresses
}

# A container built by LXC's busybox template script, privileged, on DHCP.
resource "virt_container" "tiny" {
  name         = "tiny"
  unprivileged = false

  lxc_template {
    name = "busybox"
  }

  network_interface {}
}
