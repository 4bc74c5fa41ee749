#!/bin/sh
# Makes a Linux template small and its clones unique. Shared by every Linux
# template; runs last, before the builder's own clean_for_clone.
set -eu
if command -v apt-get >/dev/null; then apt-get clean; rm -rf /var/lib/apt/lists/*; fi
if command -v dnf >/dev/null; then dnf clean all; fi
if command -v yum >/dev/null; then yum clean all; fi
if command -v zypper >/dev/null; then zypper clean --all; fi
# cloud-init must run again, as for a first boot, on every clone.
if command -v cloud-init >/dev/null; then cloud-init clean --logs; fi
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id /etc/ssh/ssh_host_*
rm -f /etc/udev/rules.d/70-persistent-net.rules
find /var/log -type f -exec truncate -s 0 {} +
rm -rf /tmp/* /var/tmp/*
