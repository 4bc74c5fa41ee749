#!/bin/sh
# Last provisioner of every template under templates/container/: removes
# what must differ between clones (machine-id, SSH host keys) and what
# only the build needed (package caches, logs, shell history), so that
# each clone of the template is a new machine. POSIX sh.
set -eu

# machine-id: empty, not missing, so that systemd treats a clone's first
# boot as a first boot and writes a new id; sysvinit roots get theirs
# from dbus-uuidgen (dbus's init script) if they need one.
if [ -e /etc/machine-id ]; then
	: >/etc/machine-id
fi
rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed

# SSH host keys: every clone makes its own. Fedora, CentOS and SUSE
# regenerate missing keys before sshd starts (sshd-keygen); Debian and
# Ubuntu do not, so their ssh unit gets a drop-in that does, and their
# sysvinit script (which sources /etc/default/ssh, with its own arguments,
# before it checks sshd's configuration) lines that do on start only: the
# build container's own stop must not make keys again.
rm -f /etc/ssh/ssh_host_*
if [ -f /etc/init.d/ssh ] && [ -f /etc/default/ssh ] && ! grep -q 'ssh-keygen -A' /etc/default/ssh; then
	cat >>/etc/default/ssh <<'DEFAULT'

# Added by templates/shared/container-cleanup.sh: clones make their own host keys.
case "${1:-}" in
start | restart | reload | force-reload | try-restart) /usr/bin/ssh-keygen -A >/dev/null ;;
esac
DEFAULT
fi
for unit in /lib/systemd/system/ssh.service /usr/lib/systemd/system/ssh.service; do
	if [ -f "$unit" ]; then
		mkdir -p /etc/systemd/system/ssh.service.d
		printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
			>/etc/systemd/system/ssh.service.d/regenerate-host-keys.conf
		break
	fi
done

# Package caches and indexes: clones refresh them when they need them.
if command -v apt-get >/dev/null 2>&1; then
	apt-get clean
	rm -rf /var/lib/apt/lists/*
fi
if command -v dnf >/dev/null 2>&1; then
	dnf clean all >/dev/null 2>&1 || true
elif command -v yum >/dev/null 2>&1; then
	yum clean all >/dev/null 2>&1 || true
fi
if command -v zypper >/dev/null 2>&1; then
	zypper --non-interactive clean --all >/dev/null 2>&1 || true
fi

# Logs and history of the build.
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete 2>/dev/null || true
find /var/log -type f -exec sh -c ': >"$1"' _ {} \; 2>/dev/null || true
rm -f /root/.bash_history /root/.ash_history

echo "container-cleanup: machine-id emptied, SSH host keys removed, caches and logs cleared"
