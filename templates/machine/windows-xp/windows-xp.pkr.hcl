# Windows XP machine template (winnt.sif, virtio disk from an F6 floppy).
# Installed from the Microsoft CD with the shared winnt.sif
# (templates/shared/windows) on a floppy. The virtio
# disk's driver (viostor, virtio-win 0.1.173: the last release with XP
# drivers) is loaded from an F6 floppy the template builds (txtsetup.oem).
# These versions ship no SSH or WinRM, so the build has no communicator:
# GuiRunOnce powers the machine off when setup is done, and the builder keeps
# the disk. Known limit: without a communicator the builder presses the ACPI
# power button while it waits (shutdown_timeout); setup ignores it in text
# mode, and it has not been observed during GUI-mode setup.
# Verified: packer validate and the answer-file checks of templates_test.go
# (no Windows CD in CI, so this template is not built there).
variable "arch" {
  type        = string
  default     = "x86"
  description = "Architecture of the CD: x86 (XP x64 is 2003-based: use windows-2003 with amd64)."
}

locals {
  computer_name = "WINXP"
  memory        = 512
}
