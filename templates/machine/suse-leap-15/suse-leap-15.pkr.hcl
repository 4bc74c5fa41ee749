# openSUSE Leap 15 machine template (AutoYaST).
# The Leap 15.6 DVD (openSUSE-Leap-15.6-DVD-x86_64-Media.iso); the boot command starts linuxrc with the AutoYaST profile (over HTTP) at the ISO's menu.
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
  # Rendered from autoinst.xml.pkrtpl in this folder, served over HTTP.
  answer_file = "autoinst.xml"
  # Typed (libvirt send-key) at the ISO's isolinux/gfxboot: leave the graphical menu for the "boot:" prompt,
  # then the installation kernel with the AutoYaST profile.
  boot_command = [
    "<esc><enter><wait>",
    "linux install=cd:/ autoyast=http://{{ .HTTPIP }}:{{ .HTTPPort }}/autoinst.xml textmode=1 console=ttyS0,115200n8<enter>",
  ]
}
