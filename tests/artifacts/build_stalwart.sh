#!/usr/bin/env bash
# Build the release-shaped Stalwart STAND-IN artifact (not Stalwart): stalwart-x86_64-unknown-linux-gnu.tar.gz holding
# one executable `stalwart` (a Python zipapp: tests/artifacts/stalwart_standin/main.py + the project's emulator
# tests/stalwart_emulator + the v0.16 schema it loads) with the real binary's command line and STALWART_* variables,
# plus stalwart-x86_64-unknown-linux-gnu.tar.gz.sha256. Host prerequisites: stalwart_standin/host-prerequisites.yml.
#   tests/artifacts/build_stalwart.sh [OUT_DIR]      (default .cache/artifacts; prints the tarball path)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/.cache/artifacts}
name=stalwart-x86_64-unknown-linux-gnu.tar.gz
schema=$top/.cache/upstream/stalwart-schema/v0.16/schema.json.gz
[ -f "$schema" ] || schema=$top/.cache/upstream/stalwart-schema/schema.json.gz
[ -f "$schema" ] || { echo "build_stalwart.sh: no Stalwart schema under .cache/upstream (run make upstream)" >&2; exit 1; }
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
app=$stage/app
mkdir -p "$app/tests/stalwart_emulator" "$app/.cache/upstream/stalwart-schema/v0.16"
cp "$top/tests/artifacts/stalwart_standin/main.py" "$app/__main__.py"
: > "$app/tests/__init__.py"
cp "$top"/tests/stalwart_emulator/*.py "$app/tests/stalwart_emulator/"
cp "$schema" "$app/.cache/upstream/stalwart-schema/v0.16/schema.json.gz"
# a reproducible zip: sorted names, fixed timestamps and modes
python3 - "$app" "$stage/app.zip" <<'PY'
import os, sys, zipfile
root, dest = sys.argv[1], sys.argv[2]
names = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
    for name in names:
        info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(os.path.join(root, name), "rb") as fh:
            zf.writestr(info, fh.read())
PY
{ echo '#!/usr/bin/python3'; cat "$stage/app.zip"; } > "$stage/stalwart"
chmod 0755 "$stage/stalwart"
touch -d @0 "$stage/stalwart"
tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - stalwart | gzip -n -9 > "$stage/$name"
if ! cmp -s "$stage/$name" "$out/$name"; then
  mv "$stage/$name" "$out/$name"
fi
(cd "$out" && sha256sum "$name" > "$name.sha256")
echo "$out/$name"
