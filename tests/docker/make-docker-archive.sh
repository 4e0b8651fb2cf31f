#!/usr/bin/env bash
# Turns the offline OCI image archive (tests/e2e/make-oci-image.sh) into one
# that Docker 20.10's `docker load` accepts too: the same blobs plus the
# manifest.json of `docker save` naming them (Docker 20.10 reads only that;
# Podman reads either). No registry is involved.
#
#   make-docker-archive.sh OCI.tar OUT.tar [REPO:TAG]
set -euo pipefail
die() { echo "make-docker-archive.sh: $*" >&2; exit 1; }
[[ $# -ge 2 ]] || die "usage: make-docker-archive.sh OCI.tar OUT.tar [REPO:TAG]"
oci=$1 out=$2 tag=${3:-local/busybox:latest}
[[ -f $oci ]] || die "no OCI archive at $oci"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
work=$(mktemp -d "${TMPDIR:-/tmp}/docker-archive.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
tar -xf "$oci" -C "$work"
manifest=$(jq -r '.manifests[0].digest' "$work/index.json")
[[ $manifest == sha256:* ]] || die "$oci: index.json names no manifest"
manifest_file=$work/blobs/sha256/${manifest#sha256:}
config=$(jq -r '.config.digest' "$manifest_file")
jq -n --arg config "blobs/sha256/${config#sha256:}" --arg tag "$tag" \
  --argjson layers "$(jq '[.layers[].digest | sub("^sha256:"; "blobs/sha256/")]' "$manifest_file")" \
  '[{Config: $config, RepoTags: [$tag], Layers: $layers}]' > "$work/manifest.json"
# Sorted names, fixed owner and mtime: the same input gives the same archive.
(cd "$work" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
  tar --no-recursion --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$out.tmp" -T -)
mv -f "$out.tmp" "$out"
