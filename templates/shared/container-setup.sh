#!/bin/sh
# Configures an LXC template container's root file system so that its
# clones boot cleanly under LXC: hostname, locale, a getty on /dev/console
# and a clean halt on LXC's stop signal. Run by the templates under
# templates/container/ as a Packer shell provisioner inside the build
# container (POSIX sh: no bash on minimal roots).
#
# Environment:
#   TEMPLATE_HOSTNAME  empty: no /etc/hostname, so every clone keeps the
#                      hostname LXC gives it (lxc.uts.name, the container's
#                      name by default). Otherwise written to /etc/hostname
#                      and /etc/hosts, and every clone shares it.
#   TEMPLATE_LOCALE    LANG for the system (C.UTF-8 needs nothing installed;
#                      other locales are generated when the tools exist).
set -eu

TEMPLATE_HOSTNAME=${TEMPLATE_HOSTNAME:-}
TEMPLATE_LOCALE=${TEMPLATE_LOCALE:-C.UTF-8}

# --- hostname -------------------------------------------------------------
# Init scripts (Debian's hostname.sh, systemd) set the hostname from
# /etc/hostname at boot, overriding the one LXC set for the clone.
if [ -z "$TEMPLATE_HOSTNAME" ]; then
	rm -f /etc/hostname
	hosts_name=""
else
	printf '%s\n' "$TEMPLATE_HOSTNAME" >/etc/hostname
	hosts_name=$TEMPLATE_HOSTNAME
fi
{
	printf '127.0.0.1\tlocalhost\n'
	[ -n "$hosts_name" ] && printf '127.0.1.1\t%s\n' "$hosts_name"
	printf '::1\t\tlocalhost ip6-localhost ip6-loopback\n'
	printf 'ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n'
} >/etc/hosts

# --- locale ---------------------------------------------------------------
case "$TEMPLATE_LOCALE" in
C | POSIX | C.UTF-8 | C.utf8) ;;
*)
	if [ -f /etc/locale.gen ] && command -v locale-gen >/dev/null 2>&1; then
		# Debian, Ubuntu: generate the one locale asked for.
		charset=${TEMPLATE_LOCALE#*.}
		[ "$charset" = "$TEMPLATE_LOCALE" ] && charset=ISO-8859-1
		line="$TEMPLATE_LOCALE $charset"
		grep -qxF "$line" /etc/locale.gen || printf '%s\n' "$line" >>/etc/locale.gen
		locale-gen
	elif command -v localedef >/dev/null 2>&1 && ! locale -a 2>/dev/null | grep -qix "$(echo "$TEMPLATE_LOCALE" | sed 's/UTF-8/utf8/')"; then
		# RPM distributions ship locales as glibc-langpack-* or
		# glibc-locale; localedef covers roots that have the sources.
		localedef -i "${TEMPLATE_LOCALE%%.*}" -f UTF-8 "$TEMPLATE_LOCALE" ||
			echo "container-setup: locale $TEMPLATE_LOCALE is not installed; add its package (glibc-langpack-*, glibc-locale)" >&2
	fi
	;;
esac
printf 'LANG=%s\n' "$TEMPLATE_LOCALE" >/etc/locale.conf
if [ -d /etc/default ]; then
	printf 'LANG=%s\n' "$TEMPLATE_LOCALE" >/etc/default/locale
fi

# --- console getty and halt on LXC's stop signal ---------------------------
# LXC stops a container by sending SIGPWR to its init; neither sysvinit's
# default inittab nor systemd's default sigpwr.target halts on it, so a
# clean stop would always wait for the timeout and then kill.
init_path=$(readlink -f /sbin/init 2>/dev/null || true)
case "$init_path" in
*systemd*)
	unitdir=/usr/lib/systemd/system
	[ -d "$unitdir" ] || unitdir=/lib/systemd/system
	mkdir -p /etc/systemd/system/getty.target.wants
	ln -sf "$unitdir/poweroff.target" /etc/systemd/system/sigpwr.target
	if [ -f "$unitdir/console-getty.service" ]; then
		ln -sf "$unitdir/console-getty.service" /etc/systemd/system/getty.target.wants/console-getty.service
	fi
	# Gettys on virtual terminals that a container does not have.
	for t in 1 2 3 4 5 6; do
		rm -f "/etc/systemd/system/getty.target.wants/getty@tty$t.service"
	done
	# Services that only make sense with hardware or a kernel of one's own.
	for u in systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
		sys-kernel-config.mount sys-kernel-debug.mount; do
		if [ -f "$unitdir/$u" ]; then ln -sf /dev/null "/etc/systemd/system/$u"; fi
	done
	# A running systemd (the build container's) takes the new links now,
	# so that the build's own stop is clean too.
	if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
	;;
*)
	if [ -f /etc/inittab ] || [ -x /sbin/getty ]; then
		# sysvinit: one getty on /dev/console (lxc-console, lxc-start -F),
		# none on virtual terminals, and SIGPWR (powerfail) halts.
		cat >/etc/inittab <<'INITTAB'
# /etc/inittab for an LXC container (templates/shared/container-setup.sh).
id:2:initdefault:
si::sysinit:/etc/init.d/rcS
l0:0:wait:/etc/init.d/rc 0
l1:1:wait:/etc/init.d/rc 1
l2:2:wait:/etc/init.d/rc 2
l3:3:wait:/etc/init.d/rc 3
l4:4:wait:/etc/init.d/rc 4
l5:5:wait:/etc/init.d/rc 5
l6:6:wait:/etc/init.d/rc 6
z6:6:respawn:/sbin/sulogin
ca:12345:ctrlaltdel:/sbin/shutdown -t1 -a -r now
# LXC's stop signal (SIGPWR) halts the container.
p0::powerfail:/sbin/init 0
co:2345:respawn:/sbin/getty --noclear 38400 console
INITTAB
		# A running sysvinit (the build container's) reads the new
		# inittab now, so that the build's own stop is clean too.
		if [ "$(readlink /proc/1/exe 2>/dev/null || true)" = "$init_path" ] && command -v telinit >/dev/null 2>&1; then
			telinit q || true
		fi
	fi
	;;
esac

echo "container-setup: hostname=${TEMPLATE_HOSTNAME:-<container name>} locale=$TEMPLATE_LOCALE init=${init_path:-none}"
