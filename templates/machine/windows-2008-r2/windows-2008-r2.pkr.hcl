# Windows Server 2008 R2 machine template (autounattend.xml, virtio disk and NIC).
# Installed from the Microsoft ISO with the shared autounattend.xml
# (templates/shared/windows), whose windowsPE pass loads the virtio storage
# and network drivers from the virtio-win folders that the shared map
# (templates/shared/virtio-win.json) names for this OS and architecture;
# they ride on the cd_files CD with the answer file. WinRM is enabled at
# first logon; the provisioner installs the QEMU guest agent and, when
# cloudbase_init_msi is given, cloudbase-init; sysprep generalizes and
# powers off.
# Verified: packer validate and the answer-file checks of templates_test.go
# (no Windows ISO in CI, so this template is not built there).
variable "arch" {
  type        = string
  default     = "amd64"
  description = "Architecture of the ISO: amd64 (2008 R2 has no x86 edition)."
}

variable "image_name" {
  type        = string
  default     = "Windows Server 2008 R2 SERVERSTANDARD"
  description = "The edition to install: the image NAME in the ISO's install.wim (dism /Get-WimInfo)."
}

locals {
  computer_name = "WIN2008R2"
}
