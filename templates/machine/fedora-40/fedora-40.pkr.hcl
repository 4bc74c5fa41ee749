# Fedora 40 machine template (kickstart).
# The Server DVD ISO (Fedora-Server-dvd-x86_64-40-1.14.iso); the boot command adds the kickstart (over HTTP) to anaconda's command line at the ISO's menu.
# Verified: packer validate and the answer-file checks of templates_test.go
# (the ISO cannot be downloaded in CI, so this template is not built there).
# The source and the build are in http-install.pkr.hcl, a link to
# templates/shared/machine-http-install.pkr.hcl; this file declares what
# differs.

variable "disk_size" {
  type    = string
  default = "12G"
}

locals {
  # Rendered from ks.cfg.pkrtpl in this folder, served over HTTP.
  answer_file = "ks.cfg"
  # Typed (libvirt send-key) at the ISO's GRUB (Fedora boots BIOS machines with GRUB since 37): "Install",
  # "e" to edit it, the kickstart at the end of the linux line, F10 boots.
  boot_command = [
    "<up><wait>e<wait><down><down><end>",
    " inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg console=ttyS0,115200n8",
    "<f10>",
  ]
}
