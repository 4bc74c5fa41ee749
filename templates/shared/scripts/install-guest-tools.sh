#!/bin/sh
# Installs what every machine template needs so that clones work with the
# provider: the QEMU guest agent (address discovery, fs freeze) and
# cloud-init (the provider's cloud_init seed). Shared by every Linux template.
set -eu
export DEBIAN_FRONTEND=noninteractive
if command -v dpkg >/dev/null && dpkg -s qemu-guest-agent cloud-init >/dev/null 2>&1; then
	# The source image has both (a cloud image, or CI's debootstrap image):
	# refreshing the package lists alone takes minutes under emulation.
	echo "install-guest-tools: qemu-guest-agent and cloud-init are installed"
elif command -v apt-get >/dev/null; then
	apt-get update
	# No fsync per package: a build machine that crashes is thrown away,
	# and the builder's clean shutdown syncs; under emulation (TCG) this
	# saves minutes.
	apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io qemu-guest-agent cloud-init
elif command -v dnf >/dev/null; then
	dnf install -y qemu-guest-agent cloud-init
elif command -v yum >/dev/null; then
	yum install -y qemu-guest-agent cloud-init
elif command -v zypper >/dev/null; then
	zypper --non-interactive install qemu-guest-agent cloud-init
else
	echo "install-guest-tools: no apt-get, dnf, yum or zypper" >&2
	exit 1
fi
# The agent starts from udev when its virtio-serial port appears; enabling
# it covers distributions whose unit has an [Install] section instead.
systemctl enable qemu-guest-agent 2>/dev/null || true
for unit in cloud-init-local cloud-init cloud-config cloud-final; do
	systemctl enable "$unit" 2>/dev/null || true
done
