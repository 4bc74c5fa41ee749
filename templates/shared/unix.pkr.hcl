# Shared by the Linux and FreeBSD templates under templates/machine: each
# holds a symlink `unix.pkr.hcl` to this file.
variable "ssh_username" {
  type        = string
  default     = "packer"
  description = "The user the answer file creates (with sudo) and Packer logs in as."
}

variable "ssh_password" {
  type        = string
  sensitive   = true
  description = "Password of ssh_username (and of root where the installer asks for one). Written into the answer file served to the installer."
}

variable "mirror" {
  type        = string
  default     = ""
  description = "Package mirror the installer and the provisioners use. Empty: the distribution's default."
}
