#!/usr/bin/env bash
# The Windows (HCS) image carries what HCS's rootfs paths need (issue #16):
# 9p with the fd transport for the Plan9 share over a Hyper-V socket,
# hv_vmbus + hv_sock for the agent channel and hv_storvsc for a VHD, ext4
# for the disk, and a kernel with an EFI stub (the UEFI boot below build
# 18286 starts it from a VmbFs share).
# usage: windows_image_test.sh IMAGE_DIR
set -euo pipefail
image=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -f $image/initrd.img && -f $image/vmlinuz ]] || fail "no image in $image (build uvm-image-windows)"
work=$(mktemp -d /tmp/uvm-windows-image-test-XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$work" && lz4 -dc "$image/initrd.img" | cpio -id --quiet 'lib/modules/*') ||
  fail "cannot unpack $image/initrd.img"
# needs LIST MODULE...: each module is in lib/modules/LIST and its file is in the archive.
needs() {
  local list=$work/lib/modules/$1 module
  shift
  [[ -f $list ]] || fail "no $1 in the initrd"
  for module in "$@"; do
    local path
    path=$(grep -E "/$module\.ko$" "$list") || fail "$module is not in $(basename "$list"): $(tr '\n' ' ' <"$list")"
    [[ -f $work/$path || -f $work/lib/modules/$path ]] || fail "$path is listed but not in the archive"
  done
}
needs load-order.9p 9pnet 9p 9pnet_fd
needs load-order.hyperv hv_vmbus hv_sock hv_storvsc
needs load-order.scsi sd_mod ext4
# 9p before the fd transport that registers with it; vmbus before its drivers.
order=$(tr '\n' ' ' <"$work/lib/modules/load-order.9p")
[[ $order == *9pnet.ko*9pnet_fd.ko* ]] || fail "9pnet_fd before 9pnet: $order"
order=$(tr '\n' ' ' <"$work/lib/modules/load-order.hyperv")
[[ $order == *hv_vmbus.ko*hv_storvsc.ko* ]] || fail "hv_storvsc before hv_vmbus: $order"
# A bzImage with the PE header UEFI needs ("MZ" at 0, "PE\0\0" at the offset in 0x3c).
[[ $(head -c 2 "$image/vmlinuz") == MZ ]] || fail "vmlinuz has no EFI stub (no MZ header)"
pe_offset=$(od -An -t u4 -j 60 -N 4 "$image/vmlinuz" | tr -d ' ')
[[ $(od -An -c -j "$pe_offset" -N 4 "$image/vmlinuz" | tr -d ' ') == 'PE\0\0' ]] ||
  fail "vmlinuz has no PE header at $pe_offset"
echo "PASS: 9p+9pnet_fd, hv_vmbus+hv_sock+hv_storvsc, sd_mod+ext4 and an EFI-stub kernel in $image"
