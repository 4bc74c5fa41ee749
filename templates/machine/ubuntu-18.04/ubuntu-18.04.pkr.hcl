# Ubuntu 18.04 machine template (preseed).
# The debian-installer server ISO (ubuntu-18.04.6-server-amd64.iso, not the live ISO); the boot command starts the installer with the preseed (over HTTP) at the ISO's menu.
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
  # Rendered from preseed.cfg.pkrtpl in this folder (which falls back to
  # archive.ubuntu.com when var.mirror is empty), served over HTTP.
  answer_file = "preseed.cfg"
  # Typed (libvirt send-key) at the ISO's isolinux: past the language menu to the "boot:" prompt, then the
  # installer kernel with the preseed.
  boot_command = [
    "<esc><wait><esc><wait><enter><wait>",
    "/install/vmlinuz auto=true priority=critical url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg",
    " initrd=/install/initrd.gz console=ttyS0,115200n8 ---<enter>",
  ]
}
