#!/bin/sh
# Usage: compile-to-webdocs.sh RENDERED_DOCS_DIR WEB_DOCS_DIR
#
# Lays rendered plugin docs (docs/packer after `packer-sdc renderdocs`) out
# the way Packer's integration pages read them: the plugin's README.md at the
# top, and each component's page as components/<type>/<slug>/README.md,
# without its front matter and title (the site makes its own from
# metadata.hcl).
set -eu

src=$1
dst=$2

rm -rf "$dst/components"
mkdir -p "$dst"
cp "$src/README.md" "$dst/README.md"

for kind in builders provisioners post-processors datasources; do
	[ -d "$src/$kind" ] || continue
	case $kind in
	builders) type=builder ;;
	provisioners) type=provisioner ;;
	post-processors) type=post-processor ;;
	datasources) type=data-source ;;
	esac
	for page in "$src/$kind"/*.mdx; do
		[ -e "$page" ] || continue
		slug=$(basename "$page" .mdx)
		mkdir -p "$dst/components/$type/$slug"
		awk '
			NR == 1 && $0 == "---" { front = 1; next }
			front { if ($0 == "---") front = 0; next }
			!body && $0 == "" { next }
			!body && /^# / { body = 1; title = 1; next }
			{ body = 1 }
			title && $0 == "" { title = 0; next }
			{ title = 0; print }
		' "$page" >"$dst/components/$type/$slug/README.md"
	done
done
