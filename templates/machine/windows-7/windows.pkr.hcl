# Shared by every template under templates/machine/windows-*: each holds a
# symlink `windows.pkr.hcl` to this file. The virtio-win driver folders come
# from the ONE map, virtio-win.json, never typed per template.
variable "virtio_win_dir" {
  type        = string
  default     = ""
  description = "Required by every Windows template but windows-2000 (which has no virtio drivers): the contents of the virtio-win ISO (mounted, or extracted by templates/shared/scripts/extract-virtio-win.sh, which checks its checksum). The map in templates/shared/virtio-win.json names the release its folders were taken from."
}

variable "admin_username" {
  type    = string
  default = "packer"
}

variable "admin_password" {
  type        = string
  sensitive   = true
  description = "Password of admin_username (written into the answer file; XML-escape <, > and &)."
}

locals {
  virtio_win_map = jsondecode(file("${local.shared_dir}/virtio-win.json"))
}
