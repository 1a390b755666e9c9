#!/usr/bin/env bash
# Fill .cache/upstream/ with the pinned third-party data files listed in scripts/upstream.lock.
# Source order: an already verified cache entry, ../shared/ (SHARED_DIR), then the pinned URL.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$top/../shared}
cache=${UPSTREAM_CACHE:-$top/.cache/upstream}
mkdir -p "$cache"
while IFS='|' read -r name rel url sum; do
  case $name in ''|'#'*) continue ;; esac
  dest=$cache/$name
  mkdir -p "$(dirname "$dest")"
  if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then continue; fi
  tmp=$dest.tmp.$$
  if [ -f "$shared/$rel" ]; then
    cp "$shared/$rel" "$tmp"
  else
    curl -fsSL --retry 3 -o "$tmp" "$url"
  fi
  if ! echo "$sum  $tmp" | sha256sum -c --status; then
    rm -f "$tmp"; echo "fetch-upstream: checksum mismatch for $name (expected $sum)" >&2; exit 1
  fi
  mv "$tmp" "$dest"
  echo "fetch-upstream: $name verified"
done < "$top/scripts/upstream.lock"
