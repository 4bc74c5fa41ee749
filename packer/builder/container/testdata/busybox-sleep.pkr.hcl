# A busybox build whose provisioner sleeps, for the interrupt test: it
# prints a line when the sleep starts, then waits to be interrupted.
variable "name" {
  type = string
}
variable "archive" {
  type = string
}

source "virt-container" "busybox" {
  lxc_template {
    name = "busybox"
  }
  output_template = var.name
  output_archive  = var.archive
}

build {
  sources = ["source.virt-container.busybox"]

  provisioner "shell" {
    inline = ["echo VIRT-PACKER-SLEEPING", "sleep 600"]
  }
}
