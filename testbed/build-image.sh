#!/usr/bin/env bash
# Build the Debian systemd image used by Molecule scenarios and the lab:
#   testbed/build-image.sh 12   -> localhost/talentmesh-debian:12  (bookworm)
#   testbed/build-image.sh 13   -> localhost/talentmesh-debian:13  (trixie)
# debootstrap a minimal rootfs with systemd + python3 and `podman import` it. The image carries a label with the
# hash of this recipe; it is rebuilt only when the recipe changes (or FORCE=1).
set -euo pipefail
release=${1:?usage: build-image.sh <12|13>}
case $release in
  12|bookworm) release=12; suite=bookworm ;;
  13|trixie)   release=13; suite=trixie ;;
  *) echo "build-image: unsupported Debian release '$release' (use 12 or 13)" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$top/testbed/containers.conf}
image=${IMAGE_NAME:-localhost/talentmesh-debian}:$release
mirror=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
include=python3,python3-apt,systemd,systemd-sysv,dbus,sudo,iproute2,ca-certificates,gnupg,procps,less

recipe=$(printf '%s\n' "$(cat "$0")" "$suite" "$include" | sha256sum | cut -c1-16)
have=$(podman image inspect --format '{{ index .Labels "talentmesh.recipe" }}' "$image" 2>/dev/null || true)
if [ "${FORCE:-0}" != 1 ] && [ "$have" = "$recipe" ]; then
  echo "build-image: $image is current (recipe $recipe)"; exit 0
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/talentmesh-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
echo "build-image: debootstrap $suite into $rootfs"
t0=$SECONDS
debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
security=${mirror%/debian}/debian-security
cat > "$rootfs/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SRC
rm -f "$rootfs"/etc/apt/sources.list.d/*.sources
chroot "$rootfs" apt-get update -q >/dev/null
chroot "$rootfs" apt-get clean
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/etc/hostname"
# Units that cannot work in a container and only add noise to `systemctl --failed`.
for unit in systemd-remount-fs.service systemd-firstboot.service sys-kernel-config.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' --change 'ENV container=podman' --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL talentmesh.recipe=$recipe" --change "LABEL talentmesh.debian=$release" \
  - "$image" >/dev/null
echo "build-image: $image built in $((SECONDS - t0)) s (recipe $recipe)"
