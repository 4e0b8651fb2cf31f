#!/usr/bin/env bash
# Builds an offline, reproducible OCI image archive from Debian's busybox-static.
#
#   make-oci-image.sh OUT.tar [BUSYBOX_BINARY [EXTRA_BINARY...]]
#
# Each EXTRA_BINARY (static, e.g. the syscall probe) is installed as bin/<name>.
# The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...)
# with one uncompressed layer: bin/busybox, one bin/<applet> symlink per applet
# of `busybox --list`, etc/passwd, etc/group, and empty tmp/ root/ proc/ sys/ dev/.
# Same input binary => byte-identical archive (sorted names, mtime 0, owner 0:0).
# Import it with:  ctr images import --index-name local/busybox:latest OUT.tar
set -euo pipefail
# shellcheck source=../fixtures/oci-archive.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../fixtures/oci-archive.sh"

die() { echo "make-oci-image.sh: $*" >&2; exit 1; }

[[ $# -ge 1 ]] || die "usage: make-oci-image.sh OUT.tar [BUSYBOX_BINARY [EXTRA_BINARY...]]"
out=$1
busybox=${2:-/bin/busybox}
extras=("${@:3}")
[[ -x $busybox ]] || die "busybox binary not found or not executable: $busybox (apt-get install busybox-static)"
if ! file_info=$(LC_ALL=C "$busybox" 2>&1 | head -1); then :; fi
[[ $file_info == BusyBox* ]] || die "$busybox does not look like busybox (first line: $file_info)"

work=$(mktemp -d "${TMPDIR:-/tmp}/oci-image.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# --- root filesystem of the single layer ---------------------------------
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev}
install -m 0755 "$busybox" "$root/bin/busybox"
while IFS= read -r applet; do
  [[ -z $applet || $applet == busybox ]] && continue
  [[ $applet == */* ]] && die "unexpected applet name with a slash: $applet"
  ln -s busybox "$root/bin/$applet"
done < <("$busybox" --list | LC_ALL=C sort -u)
for extra in "${extras[@]}"; do
  [[ -x $extra ]] || die "extra binary not found or not executable: $extra"
  install -m 0755 "$extra" "$root/bin/$(basename -- "$extra")"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
  > "$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > "$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chmod 0755 "$root"/{bin,etc,proc,sys,dev}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"

# Member names without a leading "./": list the top-level entries explicitly.
write_oci_archive "$work" "$root" "$out" \
  '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"}' \
  "uvmshim tests/e2e/make-oci-image.sh (busybox-static)" \
  bin dev etc proc root sys tmp
