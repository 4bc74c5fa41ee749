#!/bin/sh
# extract-virtio-win.sh ISO SHA256 DIR: checks the virtio-win ISO against
# its SHA-256 and copies the folders that templates/shared/virtio-win.json
# names into DIR, for the Windows templates' virtio_win_dir. Needs isoinfo
# (genisoimage); no mount, so it runs unprivileged.
set -eu
iso=$1 sum=$2 dir=$3
echo "$sum  $iso" | sha256sum -c -
here=$(dirname "$0")
mkdir -p "$dir"
# The map's values, one per line (the JSON holds them as "a/b/c" strings).
grep -o '"[A-Za-z-]*/[^"]*"' "$here/../virtio-win.json" | tr -d '"' | sort -u |
while read -r path; do
	isoinfo -R -f -i "$iso" | grep -i "^/$path\(/\|\$\)" | while read -r f; do
		case $f in
		*.*) mkdir -p "$dir/$(dirname "$f")"; isoinfo -R -i "$iso" -x "$f" >"$dir/$f" ;;
		esac
	done
done
