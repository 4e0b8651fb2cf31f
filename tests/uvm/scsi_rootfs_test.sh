#!/usr/bin/env bash
# The guest agent mounts its rootfs from a SCSI disk found by controller and
# LUN (uvm.rootfs=scsi:C:L, what HCS passes for a VHD rootfs), in a real QEMU
# guest with a virtio-scsi controller holding two disks: LUN 0 is blank (so
# a lookup that ignored the LUN would fail to mount it) and LUN 1 is ext4.
# Then a LUN with no disk: the agent reports the reason on the console and
# keeps serving instead of powering off.
# IMAGE_DIR holds vmlinuz and initrd.img: the UVM image, or the Windows one
# (Debian's generic kernel, where ext4 and virtio_scsi are modules to load).
# usage: scsi_rootfs_test.sh IMAGE_DIR
set -euo pipefail
image=$1
source "$(dirname "${BASH_SOURCE[0]}")/qemu_test_lib.sh"
[[ -f $image/initrd.img && -f $image/vmlinuz ]] || fail "no image in $image (build its target)"
qemu_test_init uvm-scsi-test

truncate -s 8M "$work/lun0.img"
mkdir "$work/tree" && echo "from LUN 1" >"$work/tree/marker"
mkfs.ext4 -q -F -L lun1 -d "$work/tree" "$work/lun1.img" 16M

# boot ROOTFS_VALUE LOG: boots the image with the two disks; returns once the
# agent serves (fails when the VM ends first or after 300 s).
boot() {
  local rootfs=$1 log=$2
  qemu_boot "$log" -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "console=ttyS0 panic=-1 $qemu_kernel_params uvm.listen=serial:///dev/virtio-ports/agent uvm.rootfs=$rootfs uvm.rootfs_ro=1" \
    -device virtio-serial-pci,id=vser0 \
    -chardev "socket,id=agent,path=$work/agent.sock,server=on,wait=off" \
    -device virtserialport,bus=vser0.0,chardev=agent,name=agent \
    -device virtio-scsi-pci,id=scsi0 \
    -drive "if=none,id=d0,file=$work/lun0.img,format=raw" -device scsi-hd,drive=d0,bus=scsi0.0,channel=0,scsi-id=0,lun=0 \
    -drive "if=none,id=d1,file=$work/lun1.img,format=raw,readonly=on" \
    -device scsi-hd,drive=d1,bus=scsi0.0,channel=0,scsi-id=0,lun=1
  qemu_wait_console "$log" 'event=agent_serving' 300 "agent serving (rootfs $rootfs)"
  qemu_stop
  rm -f "$work/agent.sock"
}

boot scsi:0:1 "$work/good.log"
grep -q 'event=rootfs_mounted source=scsi:0:1 path=/run/rootfs read_only=true' "$work/good.log" ||
  qemu_fail "$work/good.log" "the LUN 1 disk was not mounted"

boot scsi:0:2 "$work/missing.log"
grep -q 'event=rootfs_mount_failed error="uvm.rootfs=scsi:0:2: no disk at SCSI controller 0 LUN 2' "$work/missing.log" ||
  qemu_fail "$work/missing.log" "a missing LUN was not reported with its reason"
grep -q 'event=power_off' "$work/missing.log" && qemu_fail "$work/missing.log" "the VM powered off after a failed rootfs mount"

boot scsi:0:0 "$work/blank.log"
grep -q 'event=rootfs_mount_failed error="uvm.rootfs=scsi:0:0: mount ext4 /dev/sd' "$work/blank.log" ||
  qemu_fail "$work/blank.log" "the blank LUN 0 did not fail as ext4"
echo "PASS: scsi:0:1 mounted from LUN 1; a missing LUN and a blank disk reported, agent serving"
