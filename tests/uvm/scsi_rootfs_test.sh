#!/usr/bin/env bash
# The guest agent mounts its rootfs from a SCSI disk found by controller and
# LUN (uvm.rootfs=scsi:C:L, what HCS passes for a VHD rootfs), in a real QEMU
# guest with a virtio-scsi controller holding two disks: LUN 0 is blank (so
# a lookup that ignored the LUN would fail to mount it) and LUN 1 is ext4.
# Then a LUN with no disk: the agent reports the reason on the console and
# keeps serving instead of powering off.
# usage: scsi_rootfs_test.sh BUILD_DIR
set -euo pipefail
build=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -f $build/images/initrd.img && -f $build/images/vmlinuz ]] || fail "the UVM image is not built"
work=$(mktemp -d /tmp/uvm-scsi-test-XXXXXX)
qemu_pid=
cleanup() {
  [[ -n $qemu_pid ]] && kill -9 "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

truncate -s 8M "$work/lun0.img"
mkdir "$work/tree" && echo "from LUN 1" >"$work/tree/marker"
mkfs.ext4 -q -F -L lun1 -d "$work/tree" "$work/lun1.img" 16M

accel=tcg
bios=()
[[ -f /usr/share/qemu/qboot.rom ]] && bios=(-bios /usr/share/qemu/qboot.rom)

# boot ROOTFS_VALUE LOG: boots the image with the two disks; returns once the
# agent serves (or fails when the VM ends or 240 s pass, TCG on a loaded host).
boot() {
  local rootfs=$1 log=$2
  : >"$log"
  qemu-system-x86_64 -machine q35 -accel "$accel" "${bios[@]}" -nodefaults -no-reboot -display none \
    -m 256 -smp 1 -kernel "$build/images/vmlinuz" -initrd "$build/images/initrd.img" \
    -append "console=ttyS0 panic=-1 uvm.listen=serial:///dev/virtio-ports/agent uvm.rootfs=$rootfs uvm.rootfs_ro=1" \
    -chardev "file,id=console,path=$log" -serial chardev:console \
    -device virtio-serial-pci,id=vser0 \
    -chardev "socket,id=agent,path=$work/agent.sock,server=on,wait=off" \
    -device virtserialport,bus=vser0.0,chardev=agent,name=agent \
    -device virtio-scsi-pci,id=scsi0 \
    -drive "if=none,id=d0,file=$work/lun0.img,format=raw" -device scsi-hd,drive=d0,bus=scsi0.0,channel=0,scsi-id=0,lun=0 \
    -drive "if=none,id=d1,file=$work/lun1.img,format=raw,readonly=on" \
    -device scsi-hd,drive=d1,bus=scsi0.0,channel=0,scsi-id=0,lun=1 &
  qemu_pid=$!
  local deadline=$((SECONDS + 240))
  while ! grep -q 'event=agent_serving' "$log"; do
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
      local status=0
      wait "$qemu_pid" || status=$?
      qemu_pid=
      cat "$log" >&2
      fail "the VM ended (QEMU status $status) before its agent served (rootfs $rootfs)"
    fi
    ((SECONDS < deadline)) || { cat "$log" >&2; fail "no agent after 240 s (rootfs $rootfs)"; }
    sleep 0.2
  done
}
stop() {
  kill -9 "$qemu_pid" && wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
  rm -f "$work/agent.sock"
}

boot scsi:0:1 "$work/good.log"
stop
grep -q 'event=rootfs_mounted source=scsi:0:1 path=/run/rootfs read_only=true' "$work/good.log" ||
  { cat "$work/good.log" >&2; fail "the LUN 1 disk was not mounted"; }

boot scsi:0:2 "$work/missing.log"
stop
grep -q 'event=rootfs_mount_failed error="uvm.rootfs=scsi:0:2: no disk at SCSI controller 0 LUN 2' "$work/missing.log" ||
  { cat "$work/missing.log" >&2; fail "a missing LUN was not reported with its reason"; }
grep -q 'event=power_off' "$work/missing.log" && fail "the VM powered off after a failed rootfs mount"

boot scsi:0:0 "$work/blank.log"
stop
grep -q 'event=rootfs_mount_failed error="uvm.rootfs=scsi:0:0: mount ext4 /dev/sd' "$work/blank.log" ||
  { cat "$work/blank.log" >&2; fail "the blank LUN 0 did not fail as ext4"; }
echo "PASS: scsi:0:1 mounted from LUN 1; a missing LUN and a blank disk reported, agent serving"
