# CentOS 7 machine template (kickstart).
# The DVD or Minimal ISO (CentOS-7-x86_64-Minimal-2009.iso); the boot command adds the kickstart (over HTTP) to anaconda's command line at the ISO's menu.
# Verified: packer validate and the answer-file checks of templates_test.go
# (the ISO cannot be downloaded in CI, so this template is not built there).
# The source and the build are in http-install.pkr.hcl, a link to
# templates/shared/machine-http-install.pkr.hcl; this file declares what
# differs.

variable "disk_size" {
  type    = string
  default = "10G"
}

locals {
  # Rendered from ks.cfg.pkrtpl in this folder, served over HTTP.
  answer_file = "ks.cfg"
  # Typed (libvirt send-key) at the ISO's isolinux: "Install" (above the default media test), then <tab> to
  # add the kickstart to its kernel command line.
  boot_command = [
    "<up><wait><tab><wait>",
    " inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg console=ttyS0,115200n8<enter>",
  ]
}
