# Shared helpers for benchmark figure scripts (bash; source it).
#
# A figure script prints exactly one line on stdout, either
#   NAME VALUE UNIT ANCHOR_VALUE RATIO       (medians; RATIO = VALUE / ANCHOR_VALUE)
# or
#   NAME skipped REASON...
# and anything else (samples, progress) on stderr. Exit non-zero only on a real failure.
#
# Environment (set by tests/bench/run, defaults for running a figure alone):
#   UVMSHIM_SOURCE  the source tree (default: two levels above this file)
#   UVMSHIM_BUILD   the build dir (default: $UVMSHIM_SOURCE/build)
#   BENCH_RUNS      samples per side (default 7); anchor and subject runs are interleaved
#                   so both see the same machine noise.
#   BENCH_SUBJECT   runc: measure runc against itself (an A/A check of the harness and of
#                   the machine's noise; works before the uvm shim exists). Default: the
#                   figure's own uvm mode.

BENCH_LIB_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
: "${UVMSHIM_SOURCE:=$(cd -- "$BENCH_LIB_DIR/../.." && pwd)}"
: "${UVMSHIM_BUILD:=$UVMSHIM_SOURCE/build}"
: "${BENCH_RUNS:=7}"
export UVMSHIM_SOURCE UVMSHIM_BUILD BENCH_RUNS

BENCH_UVM_RUNTIME=io.containerd.uvm.v1
BENCH_RUNC_RUNTIME=io.containerd.runc.v2
BENCH_ISOLATION_ANNOTATION=io.uvmshim.isolation

bench_log() { echo "[${name:-$(basename -- "$0")}] $*" >&2; }

# Prints "NAME skipped REASON" and exits 0.
bench_skip() {
  local name=$1; shift
  echo "$name skipped $*"
  exit 0
}

# Monotonic-enough wall clock in microseconds (bash 5 builtin, no fork).
bench_now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t))"; }

# Median of the numbers given as arguments.
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) printf "%.6g\n", v[(NR+1)/2]; else printf "%.6g\n", (v[NR/2] + v[NR/2+1]) / 2 }'
}

# Runs a command with stdout/stderr discarded; prints its wall time in ms.
# Returns the command's status (a failed sample must not be counted).
bench_time_ms() {
  local t0 t1 rc
  t0=$(bench_now_us)
  "$@" >/dev/null 2>&1
  rc=$?
  t1=$(bench_now_us)
  awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f\n", d / 1000 }'
  return $rc
}

# bench_emit NAME VALUE UNIT ANCHOR: prints the figure line, RATIO = VALUE / ANCHOR.
bench_emit() {
  local name=$1 value=$2 unit=$3 anchor=$4
  awk -v n="$name" -v v="$value" -v u="$unit" -v a="$anchor" 'BEGIN {
    r = (a + 0 != 0) ? sprintf("%.2f", v / a) : "nan"
    printf "%s %.4g %s %.4g %s\n", n, v, u, a, r }'
}

# The uvm shim binary, or empty.
bench_uvm_shim() {
  local shim=$UVMSHIM_BUILD/bin/containerd-shim-uvm-v1
  [[ -x $shim ]] && echo "$shim"
}

# The runtime kind to measure as the subject: $BENCH_SUBJECT or the figure's default ($1).
bench_subject() { echo "${BENCH_SUBJECT:-$1}"; }

# Skips the figure (exits) unless the uvm shim is built; for hyperv also the boot files.
# Nothing is required when the subject is runc (BENCH_SUBJECT=runc).
bench_require_uvm() {
  local name=$1 mode=${2:-process} images=${UVMSHIM_IMAGES:-$UVMSHIM_BUILD/images}
  [[ $mode == runc ]] && return 0
  [[ -n $(bench_uvm_shim) ]] || bench_skip "$name" "uvm shim not built ($UVMSHIM_BUILD/bin/containerd-shim-uvm-v1)"
  if [[ $mode == hyperv ]]; then
    [[ -e $images/vmlinuz && -e $images/initrd.img ]] ||
      bench_skip "$name" "UVM boot files not built ($images/vmlinuz, $images/initrd.img)"
  fi
}

# `ctr run` flags selecting runtime + isolation mode: runc | process | hyperv.
bench_runtime_flags() {
  case $1 in
    runc) echo "--runtime $BENCH_RUNC_RUNTIME" ;;
    process|hyperv) echo "--runtime $BENCH_UVM_RUNTIME --annotation $BENCH_ISOLATION_ANNOTATION=$1" ;;
    *) bench_log "unknown runtime kind '$1'"; return 1 ;;
  esac
}

# bench_ctr_run KIND [ctr run options] IMAGE ID [CMD...]: ctr run with KIND's runtime flags.
bench_ctr_run() {
  local kind=$1 flags
  shift
  flags=$(bench_runtime_flags "$kind") || return 2
  # shellcheck disable=SC2086  # flags are words without spaces
  ctrx run $flags "$@"
}

# Starts a private containerd for this figure (stopped on exit), unless the caller
# already exported one (CENV_DIR). The uvm shim's dir goes on containerd's PATH.
bench_containerd_up() {
  source "$UVMSHIM_SOURCE/tests/e2e/containerd-env.sh"
  if [[ -n ${CENV_DIR:-} && -S ${CONTAINERD_ADDRESS:-} ]]; then
    return 0
  fi
  local args=() image=$UVMSHIM_BUILD/tests/e2e/busybox-oci.tar
  [[ -d $UVMSHIM_BUILD/bin ]] && args+=(--shim-dir "$UVMSHIM_BUILD/bin")
  [[ -r $image ]] && args+=(--image "$image")
  cenv_start "${args[@]}" >&2 || { bench_log "could not start a private containerd"; exit 1; }
  trap 'cenv_stop "$CENV_DIR"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

BENCH_IMAGE=local/busybox:latest

# Pid of the shim serving container $1 of our containerd (argv has -address ADDR -id ID).
bench_shim_pid() {
  local id=$1 f p
  for f in $(grep -lsazxF -e "$CONTAINERD_ADDRESS" /proc/[0-9]*/cmdline); do
    p=${f#/proc/}; p=${p%%/*}
    [[ $p == "$BASHPID" ]] && continue
    tr '\0' '\n' <"$f" 2>/dev/null | grep -qxF -- "$id" || continue
    case $(tr '\0' '\n' <"$f" | tail -1) in start|delete) continue ;; esac
    [[ $(readlink "/proc/$p/exe") == */containerd ]] && continue
    echo "$p"
    return 0
  done
  return 1
}

# Waits (up to $2 s) until task $1 is RUNNING.
bench_wait_running() {
  local id=$1 limit=${2:-60} i
  for ((i = 0; i < limit * 10; i++)); do
    ctrx task ls 2>/dev/null | awk -v id="$id" '$1 == id && $3 == "RUNNING" {f=1} END {exit !f}' && return 0
    sleep 0.1
  done
  return 1
}

# Kills and removes container $1 (quietly).
bench_remove() {
  ctrx task kill -s SIGKILL "$1" >/dev/null 2>&1
  local i
  for ((i = 0; i < 100; i++)); do
    ctrx task ls 2>/dev/null | awk -v id="$1" '$1 == id && $3 != "STOPPED" {f=1} END {exit f}' && break
    sleep 0.1
  done
  ctrx task rm -f "$1" >/dev/null 2>&1
  ctrx container rm "$1" >/dev/null 2>&1
}
