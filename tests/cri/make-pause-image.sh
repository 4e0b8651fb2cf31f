#!/usr/bin/env bash
# Builds the offline sandbox ("pause") image of the CRI suite: an OCI archive whose single layer
# holds one static binary at /pause (tests/cri/pause.c) and the empty dirs runtimes mount over.
#
#   make-pause-image.sh PAUSE_BINARY OUT.tar
#
# Same input binary => byte-identical archive (sorted names, mtime 0, owner 0:0).
# Import it with:  ctr -n k8s.io images import --index-name uvmshim.test/pause:latest OUT.tar
set -euo pipefail

die() { echo "make-pause-image.sh: $*" >&2; exit 1; }
[[ $# -eq 2 ]] || die "usage: make-pause-image.sh PAUSE_BINARY OUT.tar"
binary=$1 out=$2
[[ -x $binary ]] || die "pause binary not found or not executable: $binary"

work=$(mktemp -d "${TMPDIR:-/tmp}/pause-image.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

root=$work/rootfs
mkdir -p "$root"/{dev,proc,sys,etc}
install -m 0755 "$binary" "$root/pause"
chmod 0755 "$root"/{dev,proc,sys,etc}

blobs=$work/layout/blobs/sha256
mkdir -p "$blobs"
put_blob() {  # prints "<hex digest> <size>"
  local file=$1 hex size
  hex=$(sha256sum "$file" | cut -d' ' -f1)
  size=$(stat -c %s "$file")
  mv -f "$file" "$blobs/$hex"
  echo "$hex $size"
}

layer=$work/layer.tar
(cd "$root" && LC_ALL=C tar --create --file "$layer" --format=gnu --sort=name \
   --mtime=@0 --owner=0 --group=0 --numeric-owner --no-acls --no-xattrs --no-selinux \
   dev etc pause proc sys)
read -r layer_hex layer_size < <(put_blob "$layer")

config=$work/config.json
cat > "$config" <<JSON
{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_hex"]},"history":[{"created_by":"uvmshim tests/cri/make-pause-image.sh"}]}
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
