#!/bin/sh
# Makes a FreeBSD template small and its clones unique.
set -eu
pkg clean -ay
rm -f /etc/ssh/ssh_host_* /var/db/dhclient.leases.*
find /var/log -type f -exec truncate -s 0 {} +
rm -rf /tmp/* /var/tmp/*
