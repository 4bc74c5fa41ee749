# A busybox build whose provisioner fails, and the -force / name checks.
variable "name" {
  type = string
}
variable "archive" {
  type = string
}
variable "exit_code" {
  type    = number
  default = 3
}

source "virt-container" "busybox" {
  lxc_template {
    name = "busybox"
  }
  output_template = var.name
  output_archive  = var.archive
  output_format   = "lxd"
}

build {
  sources = ["source.virt-container.busybox"]

  provisioner "shell" {
    inline = ["echo VIRT-PACKER-PROVISIONED > /etc/virt-packer-marker", "exit ${var.exit_code}"]
  }
}
