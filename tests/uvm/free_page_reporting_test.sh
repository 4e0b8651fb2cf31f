#!/usr/bin/env bash
# Memory the guest frees goes back to the host (virtio-balloon free page
# reporting): a UVM's QEMU + virtiofsd PSS grows while the container holds
# 56 MiB in its /dev/shm (a 64 MiB tmpfs), and falls back once the file is removed, without the
# host asking for anything. Without reporting the pages would stay resident.
# usage: free_page_reporting_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
uvmctl=$build/bin/uvmctl
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x $uvmctl && -f $build/images/initrd.img ]] || fail "uvmctl or the UVM image is not built"
work=$(mktemp -d /tmp/uvm-fpr-test-XXXXXX)
export UVMSHIM_ROOT=$work/run
id=fpr-$$
cleanup() { "$uvmctl" rm -f "$id" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$source/tests/fixtures/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null
"$uvmctl" run -d --name "$id" --isolation=hyperv -m 256 --rootfs "$work/rootfs" -- sleep 100000 >/dev/null
state=$(find "$UVMSHIM_ROOT" -name state.json | head -1)
shim_pid=$(sed -n 's/.*"shim_pid": *\([0-9]*\).*/\1/p' "$state")
[[ $shim_pid =~ ^[0-9]+$ ]] || fail "no shim_pid in $state"

descendants() {
  local child
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do echo "$child"; descendants "$child"; done
}
pss_mib() {
  local total=0 pid kib
  for pid in $(descendants "$shim_pid"); do
    kib=$(awk '/^Pss:/ {print $2}' /proc/"$pid"/smaps_rollup 2>/dev/null) || continue
    total=$((total + ${kib:-0}))
  done
  echo $((total / 1024))
}
# wait_for CONDITION_ON_$pss SECONDS: polls the footprint (reporting works in
# 2 s batches inside the guest; TCG on a loaded host is slow).
wait_for() {
  local condition=$1 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    pss=$(pss_mib)
    eval "$condition" && return 0
    sleep 1
  done
  return 1
}
pss=$(pss_mib)
baseline=$pss
"$uvmctl" exec "$id" -- sh -c 'dd if=/dev/zero of=/dev/shm/ballast bs=1M count=56 2>/dev/null && sync' ||
  fail "could not fill /dev/shm in the guest"
# Not all 56 MiB show up as growth: the guest may reuse pages it touched
# before and that were not reported yet. 20 MiB proves the ballast is resident.
wait_for '((pss >= baseline + 20))' 60 || fail "PSS did not grow with 56 MiB held in the guest: $baseline -> $pss MiB"
high=$pss
"$uvmctl" exec "$id" -- rm -f /dev/shm/ballast || fail "rm in the guest"
# The footprint may still have been growing when the ballast was seen: the
# drop is measured from the highest reading (no settling sleep to guess at).
wait_for '((pss > high)) && high=$pss; ((pss <= high - 20))' 120 ||
  fail "freed guest memory stayed on the host: $high MiB held, $pss MiB after freeing"
echo "PASS: baseline $baseline MiB, holding 56 MiB $high MiB, after freeing $pss MiB"
