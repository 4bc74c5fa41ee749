# Manage the host the provider runs on.
provider "virt" {}

# Or a remote host over SSH; containers are still managed on the local host,
# in a non-default LXC directory here.
provider "virt" {
  alias    = "remote"
  uri      = "qemu+ssh://root@hv1.example.com/system"
  lxc_path = "/srv/lxc"
}
