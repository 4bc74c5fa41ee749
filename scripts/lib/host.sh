# scripts/lib/host.sh: the steps that prepare a host to run guests, shared by
# scripts/setup (a host owner's machine) and scripts/testenv (a disposable
# test host). Sourced, not run. The caller sets TAG (the log prefix) before
# sourcing.
#
# Rules every step here keeps, because scripts/setup runs them on the
# machine that runs someone's guests:
#   - look first, act only when something is missing; a second run changes
#     nothing;
#   - every change is reported through `changed`, one line each;
#   - a daemon that runs is used as it is, never stopped or restarted; one
#     that systemd manages is left to systemd;
#   - no listener is opened, no libvirt or sshd configuration is edited.

CACHE=${VIRT_TESTENV_CACHE:-/var/cache/virt-testenv}
URI=qemu:///system
DAEMON_DEADLINE=60 # seconds to wait for libvirt to answer

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

# ---------------------------------------------------------------- helpers

log() { printf '[%s] %s\n' "$TAG" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$TAG" "$*" >&2; exit 1; }

# Every change a step makes, in order: `changed TEXT` prints it at once and
# the caller's summary counts them.
CHANGES=()
changed() {
	CHANGES+=("$*")
	printf '[%s] change: %s\n' "$TAG" "$*"
}

# Microseconds since the epoch, from bash itself (no fork).
now_us() { local t=${EPOCHREALTIME/./}; echo "$((10#$t))"; }
fmt_us() { printf '%d.%02ds' "$(($1 / 1000000))" "$(($1 % 1000000 / 10000))"; }

# run_step NAME FUNCTION: the function sets RESULT to a short summary;
# print it with the step's elapsed time.
RESULT=
run_step() {
	local name=$1 fn=$2 t0
	t0=$(now_us)
	RESULT=
	"$fn"
	printf '[%s] %-9s %-62s %7s\n' "$TAG" "$name" "$RESULT" "$(fmt_us $(($(now_us) - t0)))"
}

# bg_step NAME FUNCTION: run a step in the background (its output kept);
# wait_step NAME prints it, takes over its changes, and fails if it failed.
declare -A BG_PID BG_LOG
bg_step() {
	local name=$1 fn=$2 log
	log=$(mktemp "/tmp/virt-$TAG-$name.XXXXXX")
	CLEANUPS+=("rm -f '$log'")
	(
		trap on_exit EXIT
		CLEANUPS=()
		run_step "$name" "$fn"
	) >"$log" 2>&1 9>&- &
	BG_PID[$name]=$!
	BG_LOG[$name]=${log}
	CLEANUPS+=("kill ${BG_PID[$name]} 2>/dev/null")
}

wait_step() {
	local name=$1 status=0 line
	wait "${BG_PID[$name]}" || status=$?
	# The lines were printed with their step's tag already.
	cat "${BG_LOG[$name]}"
	while IFS= read -r line; do
		CHANGES+=("${line#*change: }")
	done < <(grep "^\[$TAG\] change: " "${BG_LOG[$name]}" || true)
	((status == 0)) || die "step $name failed (its output is above)"
}

virsh_() { virsh -q -c "$URI" "$@"; }

# Cleanup actions registered by steps; run on any exit, including errors and
# signals.
CLEANUPS=()
on_exit() {
	local i
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUPS[i]}" || true
	done
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# lock NAME: one run at a time per NAME (two shells, CI and a developer,
# would race on the daemons and the builds). Holds fd 9; daemons started
# later must close it (9>&-).
lock() {
	mkdir -p /run/lock
	exec 9>"/run/lock/$1.lock"
	if ! flock -n 9; then
		log "waiting for another $1 run to finish"
		flock -w 900 9 || die "another $1 run still holds /run/lock/$1.lock"
	fi
}

# systemd_host: is systemd this machine's init? (Its runtime directory
# exists only then; a container or a build host without it has none.)
systemd_host() { [[ -d /run/systemd/system ]]; }

# ---------------------------------------------------------------- packages

pkg_installed() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# ensure_packages NAME...: install the missing ones (one apt run).
ensure_packages() {
	local p missing=() installed
	installed=" $(dpkg-query -W -f='${db:Status-Status}:${Package} ' "$@" 2>/dev/null || true) "
	for p in "$@"; do
		[[ $installed == *" installed:$p "* ]] || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		RESULT="ok: all $# present"
		return
	fi
	log "installing: ${missing[*]}"
	local out
	out=$(mktemp /tmp/virt-apt.XXXXXX)
	CLEANUPS+=("rm -f '$out'")
	if ! { apt-get update -qq && apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}"; } >"$out" 2>&1; then
		tail -n 30 "$out" >&2
		die "apt-get install ${missing[*]} failed"
	fi
	for p in "${missing[@]}"; do
		pkg_installed "$p" || die "package $p did not install"
	done
	changed "installed packages: ${missing[*]}"
	RESULT="installed ${#missing[@]}"
}

# ---------------------------------------------------------------- daemons

libvirt_answers() { timeout 10 virsh -c "$URI" version >/dev/null 2>&1; }

# wait_libvirt WHAT: wait until libvirt answers, or fail naming WHAT. The
# first start probes QEMU (seconds); a socket file alone proves nothing.
wait_libvirt() {
	local deadline=$((SECONDS + DAEMON_DEADLINE))
	until libvirt_answers; do
		((SECONDS < deadline)) || die "$1, but $URI does not answer after ${DAEMON_DEADLINE}s"
		sleep 0.2
	done
}

# The systemd units that serve qemu:///system: the modular daemons' sockets
# when the host enabled them (libvirt's choice on newer distributions),
# otherwise the monolithic libvirtd's (Debian 12's default).
libvirt_units() {
	if [[ $(systemctl is-enabled virtqemud.socket 2>/dev/null) == enabled ]]; then
		echo virtlogd.socket virtqemud.socket
	else
		echo virtlogd.socket libvirtd.socket
	fi
}

# step_daemons: libvirt answers on qemu:///system. A daemon that runs is
# used as it is; under systemd, systemd is asked to start what it manages
# (socket activation); without systemd (a build host like CI), virtlogd
# and libvirtd are started by hand, without listeners.
step_daemons() {
	local units=() u d started=() pid
	if libvirt_answers; then
		RESULT="ok: $URI answers (used as it runs)"
		return
	fi
	if systemd_host; then
		read -ra units <<<"$(libvirt_units)"
		for u in "${units[@]}"; do
			systemctl is-active --quiet "$u" && continue
			systemctl start "$u" || die "systemctl start $u failed (systemctl status $u)"
			changed "started $u (systemd)"
			started+=("$u")
		done
		wait_libvirt "systemd runs ${units[*]}"
		RESULT="started ${started[*]:-nothing} through systemd; $URI answers"
		return
	fi
	# No systemd. A libvirtd (or virtqemud) that runs but does not answer
	# yet may still be starting: wait for it rather than touch it.
	if pid=$(pgrep -x libvirtd || pgrep -x virtqemud); then
		pid=${pid%%$'\n'*}
		wait_libvirt "$(cat "/proc/$pid/comm" 2>/dev/null || echo libvirt) (pid $pid) runs (it was not started here and is left alone)"
		RESULT="ok: $URI answers (pid $pid, used as it runs)"
		return
	fi
	# virtlogd first: libvirt hands every QEMU's output to it.
	for d in virtlogd libvirtd; do
		pgrep -x "$d" >/dev/null && continue
		# 9>&-: the daemon must not inherit (and so hold forever) our lock.
		"$d" -d 9>&- || die "$d -d failed; run '$d' in the foreground to see why"
		changed "started $d (no systemd on this host; no listener: local socket only)"
		started+=("$d")
	done
	wait_libvirt "started ${started[*]}"
	RESULT="started ${started[*]}; $URI answers"
}

# ---------------------------------------------------------------- storage pool and network

# info_field TEXT KEY: KEY's value in virsh's "Key: value" output.
info_field() { awk -F': *' -v k="$2" '$1 == k { print $2 }' <<<"$1"; }

# step_pool: the `default` pool (/var/lib/libvirt/images) that templates and
# clones live in: defined, active and autostarted.
step_pool() {
	local did=() info
	if ! info=$(virsh_ pool-info default 2>/dev/null); then
		virsh_ pool-define-as default dir --target /var/lib/libvirt/images >/dev/null
		changed "libvirt pool default defined (dir /var/lib/libvirt/images)"
		did+=(defined)
		info=$(virsh_ pool-info default)
	fi
	# A pool someone started without defining it vanishes with libvirtd and
	# cannot autostart: define it as it runs.
	if [[ $(info_field "$info" Persistent) == no ]]; then
		virsh_ pool-define <(virsh_ pool-dumpxml default) >/dev/null
		changed "libvirt pool default, which ran undefined, defined as it runs"
		did+=(defined)
	fi
	if [[ $(info_field "$info" State) != running ]]; then
		virsh_ pool-build default >/dev/null 2>&1 || true # mkdir; fails harmlessly if it exists
		virsh_ pool-start default >/dev/null
		changed "libvirt pool default started"
		did+=(started)
	fi
	if [[ $(info_field "$info" Autostart) != yes ]]; then
		virsh_ pool-autostart default >/dev/null
		changed "libvirt pool default set to autostart"
		did+=(autostart)
	fi
	if ((${#did[@]} == 0)); then
		RESULT="ok: pool default active, autostart"
	else
		RESULT="pool default: ${did[*]}"
	fi
}

# The default network (NAT, 192.168.122.0/24 with DHCP) that machines join
# unless told otherwise; Debian defines it but does not start it.
step_network() {
	local did=() info
	if ! info=$(virsh_ net-info default 2>/dev/null); then
		virsh_ net-define /usr/share/libvirt/networks/default.xml >/dev/null
		changed "libvirt network default defined (NAT 192.168.122.0/24)"
		did+=(defined)
		info=$(virsh_ net-info default)
	fi
	if [[ $(info_field "$info" Persistent) == no ]]; then
		virsh_ net-define <(virsh_ net-dumpxml default) >/dev/null
		changed "libvirt network default, which ran undefined, defined as it runs"
		did+=(defined)
	fi
	if [[ $(info_field "$info" Active) != yes ]]; then
		virsh_ net-start default >/dev/null
		changed "libvirt network default started"
		did+=(started)
	fi
	if [[ $(info_field "$info" Autostart) != yes ]]; then
		virsh_ net-autostart default >/dev/null
		changed "libvirt network default set to autostart"
		did+=(autostart)
	fi
	if ((${#did[@]} == 0)); then
		RESULT="ok: network default active, autostart"
	else
		RESULT="network default: ${did[*]}"
	fi
}

# ---------------------------------------------------------------- LXC bridge

LXC_NET=/usr/libexec/lxc/lxc-net
LXC_NET_DEFAULTS=/etc/default/lxc-net
LXC_BRIDGE=lxcbr0
LXC_DNSMASQ_PID=/run/lxc/dnsmasq.pid
# DHCP hands out .2-.199 only: .200-.254 are for static addresses (the quick
# start's container and the tests' containers), which must never be leased
# to another guest.
LXC_DHCP_RANGE=10.0.3.2,10.0.3.199

bridge_healthy() {
	local pid
	# (Matched in bash, not with "| grep -q": under pipefail an early grep exit
	# can fail the pipeline.)
	[[ $(ip -o link show dev "$LXC_BRIDGE" 2>/dev/null) =~ [\<,]UP[,\>] ]] || return 1
	[[ $(ip -4 -o addr show dev "$LXC_BRIDGE" 2>/dev/null) == *" inet 10.0.3.1/24 "* ]] || return 1
	# Without a DHCP server the busybox containers' udhcpc blocks rcS and a
	# clean lxc-stop then waits its whole 60 s timeout.
	pid=$(cat "$LXC_DNSMASQ_PID" 2>/dev/null) || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == dnsmasq ]]
}

# lxc_net_setting KEY VALUE: one line of /etc/default/lxc-net; reports a
# change when it wrote.
lxc_net_setting() {
	local key=$1 value=$2
	if [[ -e $LXC_NET_DEFAULTS ]] && grep -q "^$key=\"$value\"\$" "$LXC_NET_DEFAULTS"; then
		return
	elif [[ -e $LXC_NET_DEFAULTS ]] && grep -q "^$key=" "$LXC_NET_DEFAULTS"; then
		sed -i "s|^$key=.*|$key=\"$value\"|" "$LXC_NET_DEFAULTS"
	else
		echo "$key=\"$value\"" >>"$LXC_NET_DEFAULTS"
	fi
	changed "$LXC_NET_DEFAULTS: $key=\"$value\""
}

# step_lxc_bridge: lxcbr0 (10.0.3.1/24) with LXC's dnsmasq, through LXC's
# own lxc-net (the systemd unit where systemd runs). A bridge that is up is
# used as it is.
step_lxc_bridge() {
	if bridge_healthy; then
		RESULT="ok: $LXC_BRIDGE 10.0.3.1/24 up, dnsmasq pid $(cat "$LXC_DNSMASQ_PID")"
		return
	fi
	[[ -x $LXC_NET ]] || die "$LXC_NET not found (package lxc)"
	# lxc-net reads /etc/default/lxc-net (after /etc/default/lxc, which
	# sets USE_LXC_BRIDGE to false).
	lxc_net_setting USE_LXC_BRIDGE true
	lxc_net_setting LXC_DHCP_RANGE "$LXC_DHCP_RANGE"
	lxc_net_setting LXC_DHCP_MAX 198
	if systemd_host; then
		systemctl restart lxc-net || die "systemctl restart lxc-net failed (systemctl status lxc-net)"
		changed "restarted lxc-net (systemd) to bring $LXC_BRIDGE up"
	else
		# lxc-net refuses to start while its "network_up" flag exists; a
		# half-dead set-up (dnsmasq gone, address lost) is torn down first.
		if [[ -e /run/lxc/network_up ]]; then
			"$LXC_NET" stop >/dev/null 2>&1 || true
		fi
		"$LXC_NET" start >/dev/null 9>&- || die "lxc-net start failed (needs ip, dnsmasq and nft or iptables)"
		changed "started lxc-net: $LXC_BRIDGE 10.0.3.1/24 with dnsmasq (no systemd on this host)"
	fi
	bridge_healthy || die "lxc-net ran but $LXC_BRIDGE is not up with 10.0.3.1/24 and dnsmasq"
	RESULT="started $LXC_BRIDGE 10.0.3.1/24 with dnsmasq (lxc-net)"
}

# ---------------------------------------------------------------- subordinate ids

SUBID_COUNT=65536
SUBID_FIRST=100000
SUBUID_FILE=${SUBUID_FILE:-/etc/subuid} # other paths only for the tests
SUBGID_FILE=${SUBGID_FILE:-/etc/subgid}

# subid_ranges FILE: "name start end" (end exclusive) of every entry.
subid_ranges() {
	[[ -e $1 ]] || return 0
	awk -F: 'NF >= 3 && $1 !~ /^#/ && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ { print $1, $2, $2 + $3 }' "$1"
}

# subid_overlaps FILE START END: the entries of others (not root, not uid 0)
# that overlap [START, END), one "name:start:count" a line.
subid_overlaps() {
	local f=$1 s=$2 e=$3
	subid_ranges "$f" | awk -v s="$s" -v e="$e" '$1 != "root" && $1 != "0" && $2 < e && s < $3 { print $1 ":" $2 ":" ($3 - $2) }'
}

# subid_free_start: the lowest start >= SUBID_FIRST, on a 65536 boundary
# past that, whose range is free in both files, so that root's uids and
# gids map alike.
subid_free_start() {
	local start=$SUBID_FIRST
	while [[ -n $(subid_overlaps "$SUBUID_FILE" "$start" $((start + SUBID_COUNT)))$(subid_overlaps "$SUBGID_FILE" "$start" $((start + SUBID_COUNT))) ]]; do
		start=$(((start / SUBID_COUNT + 1) * SUBID_COUNT))
	done
	echo "$start"
}

# step_subids: root owns a range of subordinate uids and gids (unprivileged
# containers map their root onto it) that no other user owns: another user
# who owned part of it could write into the containers' files and, through
# a container's hooks, reach host root.
step_subids() {
	local f kind s e overlaps start did=()
	for f in "$SUBUID_FILE" "$SUBGID_FILE"; do
		kind=uid
		[[ $f == "$SUBUID_FILE" ]] || kind=gid
		while read -r _ s e; do
			overlaps=$(subid_overlaps "$f" "$s" "$e")
			[[ -z $overlaps ]] && continue
			die "root's subordinate ${kind} range $s-$((e - 1)) in $f overlaps $(echo $overlaps | tr ' ' ','); those users could write into unprivileged containers' files. Give root a range of its own (remove root's line from $f, or the other user's, and re-run: set-up then picks a free range)"
		done < <(subid_ranges "$f" | awk '$1 == "root" || $1 == "0"')
	done
	start=
	for f in "$SUBUID_FILE" "$SUBGID_FILE"; do
		subid_ranges "$f" | awk '$1 == "root" || $1 == "0" { found = 1 } END { exit !found }' && continue
		[[ -n $start ]] || start=$(subid_free_start)
		echo "root:$start:$SUBID_COUNT" >>"$f"
		chmod 0644 "$f"
		changed "$f: added root:$start:$SUBID_COUNT (free in $SUBUID_FILE and $SUBGID_FILE)"
		did+=("$f")
	done
	if ((${#did[@]} == 0)); then
		RESULT="ok: root has subordinate ids of its own"
	else
		RESULT="root:$start:$SUBID_COUNT added to ${did[*]}"
	fi
}

# ---------------------------------------------------------------- packer

# Packer is not in Debian's archive and no release download is reachable:
# it is built from the Go module proxy in a throwaway module, with the
# go-cty replace its SDK needs (a plain `go install ...@version` refuses
# modules with replace directives). The binary is cached by version; tests
# and the quick start find it as $CACHE/packer/packer (testenv.PackerBinary).
PACKER_VERSION=1.11.2
PACKER_DIR=$CACHE/packer

# packer_current: the cached binary is the version wanted. Its stamp (the
# version, and the binary's size and time when it was checked) spares a
# second run the second packer takes to start.
packer_current() {
	local bin=$PACKER_DIR/packer stamp
	[[ -x $bin ]] || return 1
	stamp="$PACKER_VERSION $(stat -c '%s %Y' "$bin")"
	[[ $(cat "$PACKER_DIR/.stamp" 2>/dev/null) == "$stamp" ]] && return 0
	[[ $("$bin" version 2>/dev/null | sed -n 's/^Packer v//p' | head -n1) == "$PACKER_VERSION" ]] || return 1
	echo "$stamp" >"$PACKER_DIR/.stamp"
}

step_packer() {
	local bin=$PACKER_DIR/packer dir have
	if packer_current; then
		RESULT="ok: packer $PACKER_VERSION at $bin"
		return
	fi
	install -d -m 0755 "$CACHE" "$PACKER_DIR"
	dir=$(mktemp -d "$CACHE/.packer.XXXXXX")
	CLEANUPS+=("rm -rf '$dir'")
	cat >"$dir/go.mod" <<EOF2
module packerbuild

go 1.22

require github.com/hashicorp/packer v$PACKER_VERSION

replace github.com/zclconf/go-cty => github.com/nywilken/go-cty v1.13.3
EOF2
	cat >"$dir/tools.go" <<EOF2
//go:build tools

package packerbuild

import _ "github.com/hashicorp/packer"
EOF2
	log "  building packer v$PACKER_VERSION from the module proxy (about 2 min once; cached)"
	if ! (cd "$dir" && GOFLAGS=-mod=mod go mod tidy >"$dir/log" 2>&1 &&
		CGO_ENABLED=0 go build -trimpath -o "$dir/packer" github.com/hashicorp/packer >>"$dir/log" 2>&1); then
		tail -n 20 "$dir/log" >&2
		die "cannot build packer v$PACKER_VERSION"
	fi
	mv -f "$dir/packer" "$bin"
	have=$("$bin" version 2>/dev/null | sed -n 's/^Packer v//p' | head -n1)
	[[ $have == "$PACKER_VERSION" ]] || die "the packer built reports version '$have', not $PACKER_VERSION"
	changed "built packer $have into $bin"
	RESULT="built: packer $have at $bin"
}

# ---------------------------------------------------------------- Debian image

# Can libvirt's QEMU user read these files (through every parent dir)?
check_qemu_can_read() {
	local f u
	u=$(awk -F'"' '/^[[:space:]]*user[[:space:]]*=/ { print $2 }' /etc/libvirt/qemu.conf 2>/dev/null)
	u=${u:-libvirt-qemu}
	getent passwd "$u" >/dev/null || return 0 # QEMU runs as root here
	for f in "$@"; do
		runuser -u "$u" -- test -r "$f" ||
			die "$u cannot read $f: make every directory above it traversable (o+x), e.g. set VIRT_TESTENV_CACHE elsewhere"
	done
}

# A bootable Debian bookworm disk, the source of the quick start's machine
# template and of the virt-machine builder's tests: debootstrap minbase with
# systemd, the cloud kernel, sshd and DHCP, packed into an ext4 filesystem
# image (no partition table: the guest boots by direct kernel boot with
# root=/dev/vda), with the kernel and initrd beside it. Root logs in with
# the image's own key, made with it (id_ed25519 beside the image, owner
# only); nothing else on the host is trusted or changed. The guest agent
# and cloud-init come with it, installed natively by debootstrap:
# templates/machine/debian-12 would otherwise spend about 9 minutes setting
# cloud-init's Python up under emulation. Built once (about 2 min), reused
# while its recipe is unchanged.
DEBIAN_IMAGE=$CACHE/debian
DEBIAN_IMAGE_KEY=$DEBIAN_IMAGE/id_ed25519
DEBIAN_IMAGE_FILES=(disk.qcow2 vmlinuz initrd.img)
DEBIAN_IMAGE_SIZE=2G
DEBIAN_IMAGE_PACKAGES=systemd-sysv,udev,dbus,linux-image-cloud-amd64,openssh-server,ifupdown,isc-dhcp-client
# Installed in a second pass: debootstrap cannot order cloud-init's Python
# dependencies (python3-cryptography fails to configure).
DEBIAN_IMAGE_TOOLS="qemu-guest-agent cloud-init"

debian_image_recipe() {
	{
		declare -f build_debian_image
		echo "$DEBIAN_IMAGE_SIZE $DEBIAN_IMAGE_PACKAGES $DEBIAN_IMAGE_TOOLS"
		cat "$DEBIAN_IMAGE_KEY.pub" 2>/dev/null
	} | sha256sum | cut -d' ' -f1
}

# build_debian_image DIR: disk.qcow2, vmlinuz and initrd.img in DIR/out.
build_debian_image() {
	local dir=$1 r=$1/root kver
	mkdir -p "$dir/out"
	if ! debootstrap --variant=minbase --include="$DEBIAN_IMAGE_PACKAGES" bookworm "$r" \
		http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1; then
		tail -n 20 "$dir/debootstrap.log" >&2
		die "debootstrap of the Debian image failed"
	fi
	# The second pass runs apt in the tree, which needs /proc, /sys and /dev.
	local m
	for m in proc sys dev; do
		mount --bind "/$m" "$r/$m"
		CLEANUPS+=("umount -l '$r/$m' 2>/dev/null")
	done
	cp /etc/resolv.conf "$r/etc/resolv.conf"
	if ! DEBIAN_FRONTEND=noninteractive chroot "$r" apt-get install -y -q --no-install-recommends \
		$DEBIAN_IMAGE_TOOLS >"$dir/tools.log" 2>&1; then
		tail -n 20 "$dir/tools.log" >&2
		die "installing $DEBIAN_IMAGE_TOOLS into the Debian image failed"
	fi
	for m in dev sys proc; do
		umount "$r/$m"
	done
	: >"$r/etc/resolv.conf"
	echo vt-debian >"$r/etc/hostname"
	printf '/dev/vda / ext4 rw,discard,errors=remount-ro 0 1\n' >"$r/etc/fstab"
	# net.ifnames=0 on the kernel command line keeps the NIC's name eth0.
	printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' >"$r/etc/network/interfaces"
	install -d -m 0700 "$r/root/.ssh"
	install -m 0600 "$DEBIAN_IMAGE_KEY.pub" "$r/root/.ssh/authorized_keys"
	# Under TCG every unit counts: nothing here is needed by a test guest.
	local u
	for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
		fstrim.timer systemd-timesyncd.service getty@tty1.service; do
		ln -sf /dev/null "$r/etc/systemd/system/$u"
	done
	rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
	kver=$(ls "$r/lib/modules")
	install -m 0644 "$r/boot/vmlinuz-$kver" "$dir/out/vmlinuz"
	install -m 0644 "$r/boot/initrd.img-$kver" "$dir/out/initrd.img"
	# mkfs -d fills the filesystem from the tree: no loop device, no mount.
	mkfs.ext4 -q -L vt-debian -d "$r" "$dir/disk.raw" "$DEBIAN_IMAGE_SIZE"
	qemu-img convert -f raw -O qcow2 "$dir/disk.raw" "$dir/out/disk.qcow2"
	echo "$kver" >"$dir/out/kernel-version"
	# QEMU runs as libvirt-qemu: it reads the image through a backing chain.
	chmod 0644 "$dir"/out/*
	chmod 0755 "$dir" "$dir/out"
}

debian_image_current() {
	local f
	for f in "${DEBIAN_IMAGE_FILES[@]}"; do [[ -s $DEBIAN_IMAGE/$f ]] || return 1; done
	[[ -s $DEBIAN_IMAGE_KEY && $(cat "$DEBIAN_IMAGE/.recipe" 2>/dev/null) == "$(debian_image_recipe)" ]]
}

step_debian_image() {
	local f dir
	if debian_image_current; then
		RESULT="ok: $DEBIAN_IMAGE current (kernel $(cat "$DEBIAN_IMAGE/kernel-version" 2>/dev/null || echo '?'))"
		return
	fi
	install -d -m 0755 "$CACHE" "$DEBIAN_IMAGE"
	if [[ ! -s $DEBIAN_IMAGE_KEY || ! -s $DEBIAN_IMAGE_KEY.pub ]]; then
		rm -f "$DEBIAN_IMAGE_KEY" "$DEBIAN_IMAGE_KEY.pub"
		ssh-keygen -q -t ed25519 -N '' -C 'virt Debian image key' -f "$DEBIAN_IMAGE_KEY"
		chmod 0600 "$DEBIAN_IMAGE_KEY"
	fi
	dir=$(mktemp -d "$CACHE/.debian.XXXXXX")
	CLEANUPS+=("rm -rf '$dir'")
	log "  building the Debian image (debootstrap; about 2 min once; cached)"
	build_debian_image "$dir"
	check_qemu_can_read "$dir"/out/{vmlinuz,initrd.img,disk.qcow2}
	for f in "${DEBIAN_IMAGE_FILES[@]}" kernel-version; do
		mv -f "$dir/out/$f" "$DEBIAN_IMAGE/$f"
	done
	debian_image_recipe >"$DEBIAN_IMAGE/.recipe"
	changed "built the Debian image in $DEBIAN_IMAGE (kernel $(cat "$DEBIAN_IMAGE/kernel-version"), root's key beside it)"
	RESULT="built $DEBIAN_IMAGE (kernel $(cat "$DEBIAN_IMAGE/kernel-version"))"
}
