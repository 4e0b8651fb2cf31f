#!/usr/bin/env bash
# The Plan9 rootfs path of HCS (9p, trans=fd over a connected stream) against
# a real 9P server: a QEMU guest on Debian's generic kernel (the cloud kernel
# has no 9p) runs plan9_probe_init, which serves /export with Debian's diod
# over a socketpair and mounts it through MountPlan9OverFd.
# usage: plan9_fd_mount_test.sh BUILD_DIR SOURCE_DIR PROBE_INIT IMAGE_CACHE
set -euo pipefail
build=$1 source=$2 probe=$3 cache=$4
source "$(dirname "${BASH_SOURCE[0]}")/qemu_test_lib.sh"
command -v diod >/dev/null || fail "diod is not installed (.ci/install-deps)"
qemu_test_init uvm-plan9-test

mkdir -p "$work/export/dir"
echo "served-by-diod" >"$work/export/marker"
head -c 100000 /dev/zero >"$work/export/dir/file"
extras=(--extra "$(command -v diod)=/usr/sbin/diod")
while read -r lib; do extras+=(--extra "$lib=$lib"); done < <(ldd "$(command -v diod)" |
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
for f in marker dir/file; do extras+=(--extra "$work/export/$f=/export/$f"); done
# diod looks up the attaching user (the kernel attaches as "nobody").
mkdir "$work/etc"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$work/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/etc/group"
extras+=(--extra "$work/etc/passwd=/etc/passwd" --extra "$work/etc/group=/etc/group")
SOURCE_DATE_EPOCH=0 bash "$source/images/build-image.sh" --out "$work/image" --cache "$cache" \
  --kernel-package linux-image-amd64 --init "$probe" --modules "9p 9pnet_fd" --compression lz4 \
  "${extras[@]}" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "image build"; }

# Not quiet: the kernel's lines tell a boot that ended early from a probe failure.
qemu_boot "$work/console.log" -kernel "$work/image/vmlinuz" -initrd "$work/image/initrd.img" \
  -append "console=ttyS0 panic=-1 $qemu_kernel_params"
# The guest powers itself off after its one report line.
qemu_wait_exit "$work/console.log" 300 "the probe's report"
grep -a 'PLAN9_PROBE' "$work/console.log" || true
grep -aq 'PLAN9_PROBE mounted marker=served-by-diod file_size=100000' "$work/console.log" ||
  qemu_fail "$work/console.log" "the 9p mount over the socketpair did not serve the export"
echo "PASS: 9p trans=fd mounted diod's export through a socketpair in the guest"
