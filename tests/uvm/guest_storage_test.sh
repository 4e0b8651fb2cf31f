#!/usr/bin/env bash
# MountGuestStorage (issue #16): a SCSI disk hot-added to a running QEMU guest
# through QMP (device_add scsi-hd on the virtio-scsi controller it booted
# with) is found by controller and LUN and mounted by the agent below its
# storage root; a file on it is read through the agent (Console, /bin/cat);
# UnmountGuestStorage takes it away. A LUN with no disk answers NOT_FOUND
# within the bounded wait, a target outside the storage root is refused with
# INVALID_ARGUMENT naming the field. HCS's hot-add (HcsVm::AddScsiDisk) ends
# in the same agent call.
# usage: guest_storage_test.sh IMAGE_DIR CLIENT
set -euo pipefail
image=$1 client=$2
source "$(dirname "${BASH_SOURCE[0]}")/qemu_test_lib.sh"
[[ -f $image/initrd.img && -f $image/vmlinuz ]] || fail "no image in $image (build its target)"
[[ -x $client ]] || fail "no client $client"
qemu_test_init uvm-guest-storage-test

mkdir "$work/tree" && echo "hot-added LUN 1" >"$work/tree/marker"
mkfs.ext4 -q -F -L hot1 -d "$work/tree" "$work/hot1.img" 16M

# qmp COMMAND_JSON...: runs each command on the QMP socket after the
# capabilities handshake; fails on an error answer.
qmp() {
  python3 - "$work/qmp.sock" "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
def call(cmd):
    f.write(json.dumps(cmd) + "\n"); f.flush()
    while True:
        reply = json.loads(f.readline())
        if "event" in reply: continue
        if "error" in reply: sys.exit("QMP %s: %s" % (cmd["execute"], reply["error"]))
        return reply
json.loads(f.readline())  # greeting
call({"execute": "qmp_capabilities"})
for arg in sys.argv[2:]: call(json.loads(arg))
PY
}

log=$work/console.log
qemu_boot "$log" -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append "console=ttyS0 panic=-1 $qemu_kernel_params uvm.listen=serial:///dev/virtio-ports/agent" \
  -qmp "unix:$work/qmp.sock,server=on,wait=off" \
  -device virtio-serial-pci,id=vser0 \
  -chardev "socket,id=agent,path=$work/agent.sock,server=on,wait=off" \
  -device virtserialport,bus=vser0.0,chardev=agent,name=agent \
  -device virtio-scsi-pci,id=scsi0
qemu_wait_console "$log" 'event=agent_serving' 300 "agent serving"

# expect CODE OUTPUT_FILE ARGS...: the client's answer starts with CODE.
expect() {
  local code=$1 out=$2
  shift 2
  "$client" "$@" >"$out" 2>&1 || true
  [[ $(head -c ${#code} "$out") == "$code" && $(head -c $((${#code} + 1)) "$out") == "$code " ]] ||
    qemu_fail "$log" "$* answered $(cat "$out"), want status $code"
}

# A target outside the storage root: INVALID_ARGUMENT (3) naming the field.
expect 3 "$work/outside.out" mount-scsi "$work/agent.sock" 0 1 /tmp/elsewhere 1000
grep -q 'target "/tmp/elsewhere": not below the storage root /run/storage' "$work/outside.out" ||
  qemu_fail "$log" "outside target: $(cat "$work/outside.out")"
expect 3 "$work/dotdot.out" mount-scsi "$work/agent.sock" 0 1 /run/storage/../etc 1000

# No disk at LUN 2: NOT_FOUND (5) once the bounded wait (3 s) ran out.
start=$SECONDS
expect 5 "$work/missing.out" mount-scsi "$work/agent.sock" 0 2 /run/storage/missing 3000
grep -q 'no disk at SCSI controller 0 LUN 2' "$work/missing.out" ||
  qemu_fail "$log" "missing LUN: $(cat "$work/missing.out")"
((SECONDS - start < 120)) || qemu_fail "$log" "the missing LUN took $((SECONDS - start)) s, not the bounded wait"

# Hot-add the ext4 image at LUN 1 of the running guest, then mount it.
qmp '{"execute":"blockdev-add","arguments":{"driver":"raw","node-name":"hot1","read-only":true,"file":{"driver":"file","filename":"'"$work/hot1.img"'","read-only":true}}}' \
  '{"execute":"device_add","arguments":{"driver":"scsi-hd","id":"hotdisk1","drive":"hot1","bus":"scsi0.0","channel":0,"scsi-id":0,"lun":1}}' ||
  qemu_fail "$log" "QMP hot-add"
expect 0 "$work/mount.out" mount-scsi "$work/agent.sock" 0 1 /run/storage/disk1 120000 ro
grep -q 'device=/dev/sd' "$work/mount.out" || qemu_fail "$log" "mount answered $(cat "$work/mount.out")"
grep -aq 'event=guest_storage_mounted source=scsi:0:1 path=/run/storage/disk1 read_only=true' "$log" ||
  qemu_fail "$log" "no guest_storage_mounted event"
# The same target twice: ALREADY_EXISTS (6).
expect 6 "$work/again.out" mount-scsi "$work/agent.sock" 0 1 /run/storage/disk1 1000

expect 0 "$work/cat.out" cat "$work/agent.sock" /run/storage/disk1/marker
grep -q 'hot-added LUN 1' "$work/cat.out" || qemu_fail "$log" "read through the agent: $(cat "$work/cat.out")"

expect 0 "$work/unmount.out" unmount "$work/agent.sock" /run/storage/disk1
expect 5 "$work/unmount2.out" unmount "$work/agent.sock" /run/storage/disk1
"$client" cat "$work/agent.sock" /run/storage/disk1/marker >"$work/cat2.out" 2>&1 &&
  qemu_fail "$log" "the file is still readable after the unmount: $(cat "$work/cat2.out")"
qemu_stop
echo "PASS: hot-added LUN 1 mounted, read and unmounted; missing LUN NOT_FOUND in the bounded wait; outside targets refused"
