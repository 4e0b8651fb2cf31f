#!/usr/bin/env bash
# The Plan9 rootfs path of HCS (9p, trans=fd over a connected stream) against
# a real 9P server: a QEMU guest on Debian's generic kernel (the cloud kernel
# has no 9p) runs plan9_probe_init, which serves /export with Debian's diod
# over a socketpair and mounts it through MountPlan9OverFd.
# usage: plan9_fd_mount_test.sh BUILD_DIR SOURCE_DIR PROBE_INIT IMAGE_CACHE
set -euo pipefail
build=$1 source=$2 probe=$3 cache=$4
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v diod >/dev/null || fail "diod is not installed (.ci/install-deps)"
work=$(mktemp -d /tmp/uvm-plan9-test-XXXXXX)
qemu_pid=
cleanup() {
  [[ -n $qemu_pid ]] && kill -9 "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

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

bios=()
[[ -f /usr/share/qemu/qboot.rom ]] && bios=(-bios /usr/share/qemu/qboot.rom)
qemu-system-x86_64 -machine q35 -accel tcg "${bios[@]}" -nodefaults -no-reboot -display none -m 256 -smp 1 \
  -kernel "$work/image/vmlinuz" -initrd "$work/image/initrd.img" -append "console=ttyS0 panic=-1 quiet" \
  -chardev "file,id=console,path=$work/console.log" -serial chardev:console &
qemu_pid=$!
# The guest powers itself off after its one report line.
deadline=$((SECONDS + 300))
while kill -0 "$qemu_pid" 2>/dev/null; do
  ((SECONDS < deadline)) || { cat "$work/console.log" >&2; fail "guest still running after 300 s"; }
  sleep 0.5
done
wait "$qemu_pid" || true
qemu_pid=
grep -a 'PLAN9_PROBE' "$work/console.log" || true
grep -aq 'PLAN9_PROBE mounted marker=served-by-diod file_size=100000' "$work/console.log" ||
  { cat "$work/console.log" >&2; fail "the 9p mount over the socketpair did not serve the export"; }
echo "PASS: 9p trans=fd mounted diod's export through a socketpair in the guest"
