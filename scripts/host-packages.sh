#!/usr/bin/env bash
# Debian packages the test bed needs on the machine that runs the tests (idempotent; installs only what is missing).
set -euo pipefail
pkgs=(podman runc debootstrap uidmap slirp4netns netavark aardvark-dns curl rsync git
      postgresql redis-server redis-tools openssl iptables python3-venv shellcheck
      chromium libnss3-tools)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "host-packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The host's own PostgreSQL and Redis are only used by tests that start throwaway instances themselves.
for svc in postgresql redis-server; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
