#!/usr/bin/env bash
# Output-loss, hang and leak stress for containerd-shim-uvm-v1, in one isolation
# mode, against a private containerd (tests/e2e/containerd-env.sh). Bounded in
# count and in time; prints one summary line per check and exits non-zero when
# any byte was lost, any command hung or failed.
#
#   stdio-stress.sh --mode process|hyperv [--execs N] [--runs N] [--bg N] [--stdin N]
#                   [--concurrent N] [--time-limit SECONDS] [--build DIR]
#
#   --execs N       write-then-exit execs into one running sandbox (default 1000);
#                   output sizes cycle through 1 line, 64 KiB and 1 MiB of `seq`.
#                   Every 100 execs the shim's and the agent host's RSS and fd count
#                   are sampled; the slope per 1000 execs is reported.
#   --runs N        `ctr run --rm` writing 64 KiB then exiting (default 100)
#   --bg N          execs that leave a background child holding stdout (default 100)
#   --stdin N       execs fed stdin that must see EOF (default 100)
#   --concurrent N  execs started at once into the sandbox (default 100)
#   --time-limit S  stop starting new work after S seconds (default 3600); the
#                   summary says how many were done.
# STRESS_MEMORY_DETAIL=FILE: every 100 execs, memory-breakdown.sh of the shim and
# the host (heap, thread arenas, other anon, threads, fds) into FILE, and
# malloc_info(3) of both after the last exec (FILE.shim.xml, FILE.host.xml).
# The short CI form (tests/CMakeLists via ctest -L stress) runs small counts.
set -uo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
source "$here/../e2e/containerd-env.sh"

mode="" execs=1000 runs=100 bg=100 stdin_n=100 concurrent=100 time_limit=3600
build=${UVMSHIM_BUILD:-$here/../../build}
while (($#)); do
  case $1 in
    --mode) mode=$2; shift 2 ;;
    --execs) execs=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --bg) bg=$2; shift 2 ;;
    --stdin) stdin_n=$2; shift 2 ;;
    --concurrent) concurrent=$2; shift 2 ;;
    --time-limit) time_limit=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "stdio-stress: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $mode == process || $mode == hyperv ]] || { echo "stdio-stress: --mode process|hyperv is required" >&2; exit 2; }
build=$(cd -- "$build" && pwd) || exit 2
[[ -x $build/bin/containerd-shim-uvm-v1 ]] || { echo "stdio-stress: $build/bin/containerd-shim-uvm-v1 not built" >&2; exit 2; }
image=$build/tests/e2e/busybox-oci.tar
[[ -r $image ]] || { echo "stdio-stress: $image not built (target uvmshim_e2e_image)" >&2; exit 2; }
env_args=(--shim-dir "$build/bin" --image "$image")
if [[ $mode == hyperv ]]; then
  images=${UVMSHIM_IMAGES:-$build/images}
  [[ -r $images/vmlinuz && -r $images/initrd.img ]] || { echo "stdio-stress: no UVM image in $images (target uvm-image, or set UVMSHIM_IMAGES)" >&2; exit 2; }
  env_args+=(--env "UVMSHIM_IMAGES=$images")
fi
op_timeout=60; [[ $mode == hyperv ]] && op_timeout=240

cenv_start "${env_args[@]}" >/dev/null || { echo "stdio-stress: containerd did not start" >&2; exit 1; }
ctr=(ctr -a "$CONTAINERD_ADDRESS" -n "$CONTAINERD_NAMESPACE")
failures=0
work=$CENV_DIR/stress
mkdir -p "$work"
# STRESS_LOG_DIR=DIR keeps containerd's log (with the shims' lines) when a check failed.
cleanup() {
  if (( failures > 0 )) && [[ -n ${STRESS_LOG_DIR:-} ]]; then
    cp "$CENV_LOG" "$STRESS_LOG_DIR/containerd-$mode-$$.log" && echo "stdio-stress: log kept in $STRESS_LOG_DIR/containerd-$mode-$$.log"
  fi
  cenv_stop >/dev/null 2>&1
}
trap cleanup EXIT

started=$SECONDS
in_time() { (( SECONDS - started < time_limit )); }
report() { echo "stdio-stress mode=$mode $*"; }
fail() { echo "FAIL mode=$mode: $*" >&2; failures=$((failures + 1)); }
ann=(--runtime io.containerd.uvm.v1 --annotation "io.uvmshim.isolation=$mode")

# Expected output of `seq 1 N` (busybox seq prints the same as coreutils').
for n in 1 11000 150000; do seq 1 "$n" > "$work/expect-$n"; done
size_of() { case $(( $1 % 3 )) in 0) echo 1 ;; 1) echo 11000 ;; *) echo 150000 ;; esac; }

# One command with a timeout; sets rc (124 = hung).
run_bounded() { timeout -k 5 "$op_timeout" "$@"; rc=$?; }

# ---- the sandbox every exec goes into
run_bounded "${ctr[@]}" run -d "${ann[@]}" "$CENV_IMAGE_REF" sb sleep 1000000
(( rc == 0 )) || { fail "sandbox did not start (rc $rc)"; tail -20 "$CENV_LOG" >&2; exit 1; }
state=$CENV_UVMSHIM_ROOT/$CONTAINERD_NAMESPACE/sb/state.json
shim_pid=$(jq -r .shim_pid "$state") host_pid=$(jq -r .host_pid "$state")
sample() {  # "<rss_kib_shim> <fds_shim> <rss_kib_host> <fds_host>"
  local p out=""
  for p in "$shim_pid" "$host_pid"; do
    out+="$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0) "
    out+="$(ls "/proc/$p/fd" 2>/dev/null | wc -l) "
  done
  echo "$out"
}
slope() {  # least-squares slope of column $2 over column 1 in file $1, per 1000 execs;
           # the first 100 execs are warm-up (allocator arenas, gRPC buffers) and left out
  awk -v c="$2" '$1 >= 100 {n++; x+=$1; y+=$c; xx+=$1*$1; xy+=$1*$c}
    END {d = n*xx - x*x; if (n < 2 || d == 0) print 0; else printf "%.1f", 1000 * (n*xy - x*y) / d}' "$1"
}

# ---- 1. write-then-exit execs: every byte arrives
lost=0 hung=0 done_n=0 failed=0
: > "$work/samples"
echo "0 $(sample)" >> "$work/samples"
for ((i = 1; i <= execs; i++)); do
  in_time || break
  n=$(size_of "$i")
  run_bounded "${ctr[@]}" task exec --exec-id "x$i" sb seq 1 "$n" > "$work/out"
  done_n=$i
  if (( rc == 124 )); then hung=$((hung + 1)); fail "exec x$i hung"; continue; fi
  (( rc == 0 )) || { failed=$((failed + 1)); fail "exec x$i exited $rc"; }
  if ! cmp -s "$work/out" "$work/expect-$n"; then
    got=$(stat -c %s "$work/out") want=$(stat -c %s "$work/expect-$n")
    lost=$((lost + (want > got ? want - got : 0)))
    fail "exec x$i: $got of $want bytes"
  fi
  if (( i % 100 == 0 )); then
    echo "$i $(sample)" >> "$work/samples"
    # Where the memory is (heap, thread arenas, other anon), for a slope that is not flat.
    if [[ -n ${STRESS_MEMORY_DETAIL:-} ]]; then
      echo "$i shim $("$here/memory-breakdown.sh" "$shim_pid")" >> "$STRESS_MEMORY_DETAIL"
      echo "$i host $("$here/memory-breakdown.sh" "$host_pid")" >> "$STRESS_MEMORY_DETAIL"
    fi
  fi
done
if [[ -n ${STRESS_MEMORY_DETAIL:-} ]]; then
  "$here/memory-breakdown.sh" "$shim_pid" --malloc-info "$STRESS_MEMORY_DETAIL.shim.xml" >> "$STRESS_MEMORY_DETAIL" 2>&1
  "$here/memory-breakdown.sh" "$host_pid" --malloc-info "$STRESS_MEMORY_DETAIL.host.xml" >> "$STRESS_MEMORY_DETAIL" 2>&1
fi
report "check=exec_write_then_exit done=$done_n/$execs bytes_lost=$lost hangs=$hung failed=$failed"
if (( $(wc -l < "$work/samples") > 3 )); then
  report "check=leak_slope execs=$done_n shim_rss_kib_per_1000=$(slope "$work/samples" 2)" \
         "shim_fds_per_1000=$(slope "$work/samples" 3) host_rss_kib_per_1000=$(slope "$work/samples" 4)" \
         "host_fds_per_1000=$(slope "$work/samples" 5) samples=\"$(tr '\n' ';' < "$work/samples")\""
fi

# ---- 2. execs leaving a background child that holds stdout: none hangs
hung=0 done_n=0
for ((i = 1; i <= bg; i++)); do
  in_time || break
  run_bounded "${ctr[@]}" task exec --exec-id "b$i" sb sh -c 'sleep 60 & echo started' > "$work/out"
  done_n=$i
  if (( rc == 124 )); then hung=$((hung + 1)); fail "background exec b$i hung"; continue; fi
  [[ $(cat "$work/out") == started ]] || fail "background exec b$i printed '$(head -c 100 "$work/out")' (rc $rc)"
done
report "check=exec_background_child done=$done_n/$bg hangs=$hung"

# ---- 3. stdin: every exec sees its input and then EOF
hung=0 done_n=0 wrong=0
for ((i = 1; i <= stdin_n; i++)); do
  in_time || break
  seq 1 "$((i * 37))" > "$work/in"  # a file, not a pipe: run_bounded must run in this shell to set rc
  run_bounded "${ctr[@]}" task exec --exec-id "i$i" sb sh -c 'wc -l; echo eof' < "$work/in" > "$work/out"
  done_n=$i
  if (( rc == 124 )); then hung=$((hung + 1)); fail "stdin exec i$i hung (EOF not delivered?)"; continue; fi
  if [[ $(tr -d ' ' < "$work/out") != "$((i * 37))"$'\n'"eof" ]]; then
    wrong=$((wrong + 1)); fail "stdin exec i$i printed '$(head -c 100 "$work/out")' (rc $rc)"
  fi
done
report "check=exec_stdin_eof done=$done_n/$stdin_n hangs=$hung wrong=$wrong"

# ---- 4. concurrent execs into the one sandbox: 0 failures
if (( concurrent > 0 )) && in_time; then
  pids=()
  for ((i = 1; i <= concurrent; i++)); do
    ( run_bounded "${ctr[@]}" task exec --exec-id "c$i" sb seq 1 11000 > "$work/c$i.out" 2> "$work/c$i.err"; echo "$rc" > "$work/c$i.rc" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  bad=0 hung=0
  for ((i = 1; i <= concurrent; i++)); do
    r=$(cat "$work/c$i.rc")
    (( r == 124 )) && hung=$((hung + 1))
    if (( r != 0 )) || ! cmp -s "$work/c$i.out" "$work/expect-11000"; then
      bad=$((bad + 1)); fail "concurrent exec c$i: rc $r, $(stat -c %s "$work/c$i.out") bytes, $(head -c 200 "$work/c$i.err")"
    fi
  done
  report "check=exec_concurrent n=$concurrent failures=$bad hangs=$hung"
fi

# The kill is asynchronous: delete once the task is STOPPED (bounded).
run_bounded "${ctr[@]}" task kill -s SIGKILL sb
for ((w = 0; w < op_timeout * 5; w++)); do
  [[ $("${ctr[@]}" task ls 2>/dev/null | awk '$1 == "sb" {print $3}') == STOPPED ]] && break
  sleep 0.2
done
run_bounded "${ctr[@]}" task delete sb > /dev/null
(( rc == 0 )) || fail "sandbox task delete failed (rc $rc)"
"${ctr[@]}" container rm sb >/dev/null 2>&1

# ---- 5. ctr run --rm: every byte arrives
lost=0 hung=0 done_n=0
for ((i = 1; i <= runs; i++)); do
  in_time || break
  run_bounded "${ctr[@]}" run --rm "${ann[@]}" "$CENV_IMAGE_REF" "r$i" seq 1 11000 > "$work/out"
  done_n=$i
  if (( rc == 124 )); then hung=$((hung + 1)); fail "run r$i hung"; continue; fi
  if ! cmp -s "$work/out" "$work/expect-11000"; then
    got=$(stat -c %s "$work/out") want=$(stat -c %s "$work/expect-11000")
    lost=$((lost + (want > got ? want - got : 0)))
    fail "run r$i: $got of $want bytes (rc $rc)"
  fi
done
report "check=run_write_then_exit done=$done_n/$runs bytes_lost=$lost hangs=$hung"

# ---- nothing left behind by the shim
left=$(find "$CENV_UVMSHIM_ROOT" -mindepth 1 2>/dev/null | head -5)
[[ -z $left ]] || fail "uvm shim state left: $left"
report "check=summary failures=$failures seconds=$((SECONDS - started))"
(( failures == 0 ))
