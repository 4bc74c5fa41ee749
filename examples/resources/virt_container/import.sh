# A container on the host the provider runs on, by name. LXC does not record
# the archive or lxc_template a container was made from: they stay empty
# until the first apply records what the configuration says. A clone's
# template is read from its config.
terraform import virt_container.web web
