#!/usr/bin/env bash
# Builds a Debian base image without pulling anything: debootstrap's minbase of RELEASE,
# imported into the local Docker Engine as IMAGE. tests/it/compose_e2e.rs runs it when
# IMAGE is not present yet, because no image registry is reachable where the tests run
# while Debian's archive is. Needs root (debootstrap chroots and makes device nodes).
#
#   tests/compose/debian-base.sh IMAGE [RELEASE [MIRROR]]
set -euo pipefail
image=${1:?usage: debian-base.sh IMAGE [RELEASE [MIRROR]]}
release=${2:-bookworm}
mirror=${3:-http://deb.debian.org/debian}

work=$(mktemp -d "${TMPDIR:-/tmp}/wvs-debian-base.XXXXXX")
cleanup() {
  # A debootstrap killed midway can leave /proc or /sys (or a bind-mounted /dev) mounted
  # in the target: unmount them, and never let rm cross into another file system.
  { grep -o " $work/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r mnt; do
    umount -l "$mnt" || true
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

if ! debootstrap --variant=minbase "$release" "$work/rootfs" "$mirror" >"$work/out" 2>&1; then
  tail -n 20 "$work/out" >&2
  tail -n 20 "$work/rootfs/debootstrap/debootstrap.log" >&2 || true
  exit 1
fi

# apt's lists and package cache are stale once imported (whatever builds on the image runs
# apt-get update first) and are most of its size.
tar -C "$work/rootfs" --numeric-owner \
    --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' -c . \
  | docker import \
      --change 'CMD ["/bin/bash"]' \
      --change 'LABEL wvs-auth-test=compose' \
      - "$image" >/dev/null
echo "$image"
