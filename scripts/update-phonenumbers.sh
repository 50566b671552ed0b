#!/usr/bin/env bash
# update-phonenumbers.sh VERSION
#
# Replaces third_party/phonenumbers with github.com/nyaruka/phonenumbers at
# VERSION (for example v1.8.2) and applies third_party/phonenumbers.patch,
# which makes the library load its metadata on first use instead of at every
# process start. The module is taken from the module cache, downloaded there
# first if needed. Fails, leaving the current copy untouched, if the module
# cannot be fetched or the patch does not apply cleanly.
#
# Afterwards: update the version in go.mod's require line, then run
#   (cd third_party/phonenumbers && go test ./...)
#   go build ./... && go test -count=1 ./cmd/sluice/ ./internal/privacy/
set -euo pipefail

die() {
	echo "update-phonenumbers: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: $0 VERSION (for example v1.8.2)"
version=$1
module=github.com/nyaruka/phonenumbers

root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/third_party/phonenumbers
patchfile=$root/third_party/phonenumbers.patch
[ -f "$patchfile" ] || die "missing $patchfile"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# go mod download prints the module's directory in the cache, fetching it
# only if it is not there yet. Run it outside the repository so the replace
# directive in our go.mod does not apply.
json=$(cd "$work" && go mod download -json "$module@$version") ||
	die "downloading $module@$version failed: $json"
src=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -n "$src" ] && [ -d "$src" ] || die "no module directory for $module@$version in: $json"

cp -R "$src" "$work/phonenumbers"
chmod -R u+w "$work/phonenumbers" # the module cache is read-only

(cd "$work/phonenumbers" && patch -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch <"$patchfile") ||
	die "$(basename "$patchfile") does not apply to $module@$version; rework the patch against that version before updating"
if find "$work/phonenumbers" -name '*.rej' -o -name '*.orig' | grep -q .; then
	die "patching $module@$version left .rej or .orig files in $work/phonenumbers"
fi

rm -rf "$dest"
mv "$work/phonenumbers" "$dest"
echo "third_party/phonenumbers is now $module@$version with $(basename "$patchfile") applied"
