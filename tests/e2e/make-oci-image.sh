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

blobs=$work/layout/blobs/sha256
mkdir -p "$blobs"

# Stores a file as a blob; prints "<hex digest> <size>".
put_blob() {
  local file=$1 hex size
  hex=$(sha256sum "$file" | cut -d' ' -f1)
  size=$(stat -c %s "$file")
  mv -f "$file" "$blobs/$hex"
  echo "$hex $size"
}

# Member names without a leading "./": list the top-level entries explicitly.
layer=$work/layer.tar
(cd "$root" && LC_ALL=C tar --create --file "$layer" --format=gnu --sort=name \
   --mtime=@0 --owner=0 --group=0 --numeric-owner --no-acls --no-xattrs --no-selinux \
   bin dev etc proc root sys tmp)
read -r layer_hex layer_size < <(put_blob "$layer")

config=$work/config.json
cat > "$config" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_hex"]},"history":[{"created_by":"uvmshim tests/e2e/make-oci-image.sh (busybox-static)"}]}
JSON
read -r config_hex config_size < <(put_blob "$config")

manifest=$work/manifest.json
cat > "$manifest" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_hex","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer_hex","size":$layer_size}]}
JSON
read -r manifest_hex manifest_size < <(put_blob "$manifest")

cat > "$work/layout/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_hex","size":$manifest_size,"platform":{"architecture":"amd64","os":"linux"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/layout/oci-layout"

chmod 0644 "$work/layout/index.json" "$work/layout/oci-layout" "$blobs"/*
tmp_out=$work/out.tar
(cd "$work/layout" && LC_ALL=C tar --create --file "$tmp_out" --format=gnu --sort=name \
   --mtime=@0 --owner=0 --group=0 --numeric-owner --no-acls --no-xattrs --no-selinux \
   blobs index.json oci-layout)
mkdir -p "$(dirname -- "$out")"
mv -f "$tmp_out" "$out"
