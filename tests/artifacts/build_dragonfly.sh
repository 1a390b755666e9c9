#!/usr/bin/env bash
# Build the release-shaped Dragonfly STAND-IN artifact (not Dragonfly): dragonfly-x86_64.tar.gz holding an executable
# `dragonfly-x86_64` that presents Dragonfly's command line and runs redis-server underneath
# (tests/artifacts/dragonfly_standin/dragonfly.py), plus dragonfly-x86_64.tar.gz.sha256.
#   tests/artifacts/build_dragonfly.sh [OUT_DIR]      (default .cache/artifacts; prints the tarball path)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/.cache/artifacts}
src=$top/tests/artifacts/dragonfly_standin/dragonfly.py
name=dragonfly-x86_64.tar.gz
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
{ echo '#!/usr/bin/python3'; cat "$src"; } > "$stage/dragonfly-x86_64"
chmod 0755 "$stage/dragonfly-x86_64"
tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - dragonfly-x86_64 | gzip -n -9 > "$stage/$name"
if ! cmp -s "$stage/$name" "$out/$name"; then
  mv "$stage/$name" "$out/$name"
fi
(cd "$out" && sha256sum "$name" > "$name.sha256")
echo "$out/$name"
