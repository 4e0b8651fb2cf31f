#!/usr/bin/env bash
# Builds the offline sandbox ("pause") image of the CRI suite: an OCI archive whose single layer
# holds one static binary at /pause (tests/cri/pause.c) and the empty dirs runtimes mount over.
#
#   make-pause-image.sh PAUSE_BINARY OUT.tar
#
# Same input binary => byte-identical archive (sorted names, mtime 0, owner 0:0).
# Import it with:  ctr -n k8s.io images import --index-name uvmshim.test/pause:latest OUT.tar
set -euo pipefail
# shellcheck source=../fixtures/oci-archive.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../fixtures/oci-archive.sh"

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

write_oci_archive "$work" "$root" "$out" '{"Entrypoint":["/pause"],"WorkingDir":"/"}' \
  "uvmshim tests/cri/make-pause-image.sh" dev etc pause proc sys
