#!/usr/bin/env bash
# N utility VMs started at once (`ctr run -d`, hyperv) against a private
# containerd: every one starts, or fails with an error that says why; none
# hangs (each bounded by --timeout). Then all are removed and nothing may be
# left (processes, shim state). Prints a summary; exits non-zero on a hang,
# an unexplained failure or a leftover.
#
#   parallel-boot.sh [--count N] [--timeout SECONDS] [--build DIR]
set -uo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
source "$here/../e2e/containerd-env.sh"

count=10 timeout_s=600
build=${UVMSHIM_BUILD:-$here/../../build}
while (($#)); do
  case $1 in
    --count) count=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "parallel-boot: unknown argument $1" >&2; exit 2 ;;
  esac
done
build=$(cd -- "$build" && pwd) || exit 2
images=${UVMSHIM_IMAGES:-$build/images}
[[ -r $images/vmlinuz && -r $images/initrd.img ]] || { echo "parallel-boot: no UVM image in $images" >&2; exit 2; }
cenv_start --shim-dir "$build/bin" --image "$build/tests/e2e/busybox-oci.tar" --env "UVMSHIM_IMAGES=$images" >/dev/null \
  || { echo "parallel-boot: containerd did not start" >&2; exit 1; }
trap 'cenv_stop >/dev/null 2>&1' EXIT
work=$CENV_DIR/boot; mkdir -p "$work"

start=$SECONDS
pids=()
for ((i = 1; i <= count; i++)); do
  ( s=$SECONDS
    timeout -k 5 "$timeout_s" ctr -a "$CONTAINERD_ADDRESS" -n "$CONTAINERD_NAMESPACE" run -d \
      --runtime io.containerd.uvm.v1 --annotation io.uvmshim.isolation=hyperv "$CENV_IMAGE_REF" "vm$i" sleep 100000 \
      > "$work/$i.out" 2> "$work/$i.err"
    echo "$? $((SECONDS - s))" > "$work/$i.rc" ) &
  pids+=($!)
done
wait "${pids[@]}"  # not a bare wait: containerd is a child of this shell too
started=0 failed=0 hung=0 unexplained=0 slowest=0
for ((i = 1; i <= count; i++)); do
  read -r rc took < "$work/$i.rc"
  (( took > slowest )) && slowest=$took
  if (( rc == 0 )); then started=$((started + 1));
  elif (( rc == 124 || rc == 137 )); then hung=$((hung + 1)); echo "FAIL: vm$i hung (${took}s)" >&2
  else
    failed=$((failed + 1))
    # A clear error names the cause (boot timeout, memory, ...), not just "exit status".
    if [[ -z $(tr -d '[:space:]' < "$work/$i.err") ]]; then unexplained=$((unexplained + 1)); fi
    echo "vm$i failed: $(head -c 300 "$work/$i.err")" >&2
  fi
done
echo "parallel-boot count=$count started=$started failed=$failed hangs=$hung unexplained=$unexplained slowest_s=$slowest total_s=$((SECONDS - start))"

for ((i = 1; i <= count; i++)); do
  timeout 120 ctr -a "$CONTAINERD_ADDRESS" -n "$CONTAINERD_NAMESPACE" task delete -f "vm$i" >/dev/null 2>&1
  timeout 60 ctr -a "$CONTAINERD_ADDRESS" -n "$CONTAINERD_NAMESPACE" container rm "vm$i" >/dev/null 2>&1
done
left=$(find "$CENV_UVMSHIM_ROOT" -mindepth 1 2>/dev/null | head -5)
procs=$(_cenv_pids_referring_to "$CENV_DIR" | grep -vx "$(cenv_containerd_pid)" | head -5)
[[ -z $left ]] || echo "FAIL: shim state left: $left" >&2
[[ -z $procs ]] || echo "FAIL: processes left: $procs" >&2
(( hung == 0 && unexplained == 0 )) && [[ -z $left && -z $procs ]]
