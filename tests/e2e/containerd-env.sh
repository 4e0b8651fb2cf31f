#!/usr/bin/env bash
# A private containerd 1.6 for tests and benchmarks: its own root, state, sockets,
# config and log in one temp dir, its own namespace. Several copies can run at once.
#
# Executed:
#   containerd-env.sh start [OPTIONS]      start one; prints its dir (last stdout line).
#                                          Variables for it are in DIR/env (shell syntax).
#   containerd-env.sh stop DIR             end everything it started, remove DIR.
#   containerd-env.sh restart DIR          kill containerd only (shims keep running), start it again.
#   containerd-env.sh run [OPTIONS] -- CMD [ARG...]
#                                          start one, run CMD with its variables exported, stop it;
#                                          exits with CMD's status.
# Sourced (bash):
#   source containerd-env.sh
#   cenv_start [OPTIONS] || exit 1     # exports the variables below into the current shell
#   trap cenv_stop EXIT
#   ctrx run --rm local/busybox:latest c1 echo hi     # = ctr -a $CONTAINERD_ADDRESS -n $CONTAINERD_NAMESPACE
#   cenv_restart                       # kill + start containerd (same root/state)
#
# OPTIONS:
#   --shim-dir DIR    prepend DIR to containerd's PATH (where containerd-shim-uvm-v1 lives).
#                     Default: $UVMSHIM_SHIM_DIR if set.
#   --image TAR       OCI archive to import as local/busybox:latest (default: built with
#                     make-oci-image.sh into the env dir). Env: CENV_IMAGE.
#   --no-image        do not import any image.
#   --snapshotter S   overlayfs (default when it works here) or native. Env: CENV_SNAPSHOTTER.
#   --cri             keep the CRI plugin enabled (disabled by default for speed).
#   --config-extra F  append the TOML file F to config.toml (e.g. CRI runtime handlers;
#                     declaring any [...cri".containerd.runtimes.X] table drops the implicit
#                     runc one: declare runtimes.runc (runtime_type io.containerd.runc.v2)
#                     too, or CRI fails to load).
#   --log-level L     containerd log level (default info). Env: CENV_LOG_LEVEL.
#   --env NAME=VALUE  extra environment for containerd and so for every shim it starts
#                     (repeatable). UVMSHIM_ROOT=$CENV_DIR/uvmshim is always set (overridable).
#   --netns PATH      run containerd (so its shims and CNI plugins) in the network namespace PATH
#                     (nsenter --net, nothing else changes): a CNI bridge stays in that namespace.
#
# Variables (exported by cenv_start, written to DIR/env):
#   CENV_DIR              the temp dir (everything lives under it)
#   CONTAINERD_ADDRESS    grpc socket (ctr reads this variable itself)
#   CONTAINERD_NAMESPACE  unique namespace (ctr reads this variable too)
#   CONTAINERD_SNAPSHOTTER snapshotter ctr should use (ctr reads it)
#   CENV_TTRPC_ADDRESS    containerd's ttrpc socket
#   CENV_STATE            containerd state dir (bundles: $CENV_STATE/io.containerd.runtime.v2.task/$NS/$ID)
#   CENV_ROOT             containerd root dir
#   CENV_LOG              containerd's log file
#   CENV_PID_FILE         file holding containerd's pid
#   CENV_IMAGE_REF        local/busybox:latest (when an image was imported)
#   CENV_FIFO_DIR         a fifo dir for `ctr run --fifo-dir` (inside CENV_DIR)
#   CENV_SHIM_DIR         the shim dir on containerd's PATH (may be empty)
#   CENV_UVMSHIM_ROOT     $CENV_DIR/uvmshim, given to containerd as UVMSHIM_ROOT
#
# Cleanup (stop) ends, by pid only: tasks (ctr task kill/rm, with timeouts), containerd,
# then any process whose cmdline or cwd refers to CENV_DIR (shims, VMs), then processes
# left in this namespace's cgroups; unmounts everything under CENV_DIR, removes the shim
# sockets named in the bundles' address files, runc's state dir for the namespace, CENV_DIR.

CENV_SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
CENV_DEFAULT_IMAGE_REF=local/busybox:latest

_cenv_log() { echo "containerd-env: $*" >&2; }

_cenv_pid_alive() {  # true if PID exists and is not a zombie
  local pid=$1 state
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) (.) .*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# Waits up to $2 seconds (decimal ok) for pid $1 to be gone.
_cenv_wait_gone() {
  local pid=$1 tenths i
  tenths=$(awk -v s="$2" 'BEGIN{printf "%d", s*10}')
  for ((i = 0; i < tenths; i++)); do
    _cenv_pid_alive "$pid" || return 0
    sleep 0.1
  done
  ! _cenv_pid_alive "$pid"
}

# Terminates a pid: SIGTERM, wait, SIGKILL, wait.
_cenv_terminate() {
  local pid=$1 grace=${2:-5}
  _cenv_pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  _cenv_wait_gone "$pid" "$grace" && return 0
  kill -KILL "$pid" 2>/dev/null || true
  _cenv_wait_gone "$pid" 5
}

ctrx() { ctr -a "$CONTAINERD_ADDRESS" -n "$CONTAINERD_NAMESPACE" "$@"; }

# Prints the pid of this env's containerd if it is running.
cenv_containerd_pid() {
  local dir=${1:-$CENV_DIR} pid
  [[ -r $dir/containerd.pid ]] || return 1
  pid=$(<"$dir/containerd.pid")
  [[ $pid =~ ^[0-9]+$ ]] && _cenv_pid_alive "$pid" &&
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */containerd ]] || return 1
  echo "$pid"
}

# Starts containerd for an already prepared dir (config.toml written), waits until it answers.
_cenv_launch_containerd() {
  local dir=$1 path=$PATH pid i extra=()
  [[ -n ${CENV_SHIM_DIR:-} ]] && path=$CENV_SHIM_DIR:$PATH
  [[ -r $dir/containerd.env ]] && mapfile -t extra <"$dir/containerd.env"
  local enter=()
  if [[ -r $dir/containerd.netns ]]; then enter=(nsenter "--net=$(<"$dir/containerd.netns")"); fi
  # setsid: containerd must not get the caller's terminal signals before our own cleanup runs.
  # No subshell with job control here: $! is containerd itself (env and setsid exec, no fork).
  PATH=$path env "${extra[@]}" "${enter[@]}" setsid containerd --config "$dir/config.toml" \
    >>"$dir/containerd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/containerd.pid"
  for ((i = 0; i < 300; i++)); do
    if ! _cenv_pid_alive "$pid"; then
      _cenv_log "containerd (pid $pid) exited during startup; log $dir/containerd.log:"
      tail -n 20 "$dir/containerd.log" >&2
      return 1
    fi
    if [[ -S $dir/containerd.sock ]] &&
       timeout 5 ctr -a "$dir/containerd.sock" version >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  _cenv_log "containerd (pid $pid) did not answer on $dir/containerd.sock within 30 s"
  return 1
}

_cenv_write_config() {
  local dir=$1 cri=$2 extra=$3 level=$4 disabled
  disabled='"io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"'
  [[ $cri == 1 ]] || disabled+=', "io.containerd.grpc.v1.cri"'
  cat >"$dir/config.toml" <<EOF
# Generated by containerd-env.sh: a private containerd, nothing shared with the system one.
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = [$disabled]

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "$level"

[metrics]
  address = ""
EOF
  if [[ -n $extra ]]; then
    { echo; echo "# --- appended from $extra"; cat -- "$extra"; } >>"$dir/config.toml" || return 1
  fi
}

# Starts a private containerd. See the header for OPTIONS. Exports the CENV_* variables.
cenv_start() {
  local shim_dir=${UVMSHIM_SHIM_DIR:-} image=${CENV_IMAGE:-} no_image=0 cri=0 extra=''
  local snapshotter=${CENV_SNAPSHOTTER:-} level=${CENV_LOG_LEVEL:-info} dir ns env_extra=() netns=''
  while [[ $# -gt 0 ]]; do
    case $1 in
      --shim-dir) shim_dir=$2; shift 2 ;;
      --image) image=$2; shift 2 ;;
      --no-image) no_image=1; shift ;;
      --snapshotter) snapshotter=$2; shift 2 ;;
      --cri) cri=1; shift ;;
      --config-extra) extra=$2; shift 2 ;;
      --log-level) level=$2; shift 2 ;;
      --netns) netns=$2; shift 2 ;;
      --env)
        [[ $2 == [A-Za-z_]*=* ]] || { _cenv_log "cenv_start: --env wants NAME=VALUE, got '$2'"; return 2; }
        env_extra+=("$2"); shift 2 ;;
      *) _cenv_log "cenv_start: unknown option '$1'"; return 2 ;;
    esac
  done
  for tool in containerd ctr setsid; do
    command -v "$tool" >/dev/null || { _cenv_log "'$tool' not found on PATH"; return 1; }
  done
  if [[ -n $shim_dir ]]; then
    [[ -d $shim_dir ]] || { _cenv_log "shim dir does not exist: $shim_dir"; return 1; }
    shim_dir=$(cd -- "$shim_dir" && pwd)
  fi
  [[ -z $extra || -r $extra ]] || { _cenv_log "config extra file not readable: $extra"; return 1; }

  # Short base name: shim sockets may live in bundle dirs under it (sun_path is 108 bytes).
  dir=$(mktemp -d "${CENV_TMPDIR:-/tmp}/cenv-XXXXXX") || { _cenv_log "mktemp failed"; return 1; }
  chmod 0711 "$dir"
  ns=e2e-${dir##*-}
  mkdir -p "$dir/root" "$dir/state" "$dir/fifo" "$dir/uvmshim" || return 1
  # Environment of containerd, inherited by every shim it starts. The uvm shim keeps its
  # per-sandbox state under UVMSHIM_ROOT: inside our dir, so cleanup and leak checks see it.
  printf '%s\n' "UVMSHIM_ROOT=$dir/uvmshim" "${env_extra[@]}" >"$dir/containerd.env"
  if [[ -n $netns ]]; then printf '%s' "$netns" >"$dir/containerd.netns"; fi

  export CENV_DIR=$dir CONTAINERD_ADDRESS=$dir/containerd.sock CONTAINERD_NAMESPACE=$ns
  export CENV_TTRPC_ADDRESS=$dir/containerd.sock.ttrpc CENV_STATE=$dir/state CENV_ROOT=$dir/root
  export CENV_LOG=$dir/containerd.log CENV_PID_FILE=$dir/containerd.pid CENV_FIFO_DIR=$dir/fifo
  export CENV_SHIM_DIR=$shim_dir CENV_IMAGE_REF='' CENV_UVMSHIM_ROOT=$dir/uvmshim

  if ! _cenv_write_config "$dir" "$cri" "$extra" "$level" || ! _cenv_launch_containerd "$dir"; then
    cenv_stop "$dir"
    return 1
  fi

  if [[ -z $snapshotter ]]; then
    # overlayfs when containerd could load it (the plugin is skipped on unsupported filesystems).
    if ctrx plugins ls 2>/dev/null | awk '$1=="io.containerd.snapshotter.v1" && $2=="overlayfs" && $4=="ok" {f=1} END{exit !f}'; then
      snapshotter=overlayfs
    else
      snapshotter=native
      _cenv_log "overlayfs snapshotter unavailable here, using native"
    fi
  fi
  export CONTAINERD_SNAPSHOTTER=$snapshotter

  if [[ $no_image == 0 ]]; then
    if [[ -z $image ]]; then
      image=$dir/busybox-oci.tar
      "$CENV_SCRIPT_DIR/make-oci-image.sh" "$image" || { cenv_stop "$dir"; return 1; }
    fi
    if ! timeout 60 ctr -a "$CONTAINERD_ADDRESS" -n "$ns" images import \
          --index-name "$CENV_DEFAULT_IMAGE_REF" "$image" >"$dir/import.out" 2>&1; then
      _cenv_log "ctr images import $image failed:"; cat "$dir/import.out" >&2
      cenv_stop "$dir"; return 1
    fi
    CENV_IMAGE_REF=$CENV_DEFAULT_IMAGE_REF
  fi

  local v
  : >"$dir/env"
  for v in CENV_DIR CONTAINERD_ADDRESS CONTAINERD_NAMESPACE CONTAINERD_SNAPSHOTTER CENV_TTRPC_ADDRESS \
           CENV_STATE CENV_ROOT CENV_LOG CENV_PID_FILE CENV_FIFO_DIR CENV_SHIM_DIR CENV_IMAGE_REF CENV_UVMSHIM_ROOT; do
    printf '%s=%q\n' "$v" "${!v}" >>"$dir/env"
  done
  return 0
}

# Loads the variables of an env started elsewhere (e.g. by `containerd-env.sh start`).
cenv_attach() {
  local dir=$1
  [[ -r $dir/env ]] || { _cenv_log "not a containerd-env dir (no env file): $dir"; return 1; }
  set -a; source "$dir/env"; set +a
}

# Kills containerd (SIGKILL, like a crash: shims stay) and starts it again on the same dirs.
cenv_restart() {
  local dir=${1:-$CENV_DIR} pid
  [[ -n $dir && -r $dir/config.toml ]] || { _cenv_log "cenv_restart: no env dir"; return 1; }
  if pid=$(cenv_containerd_pid "$dir"); then
    kill -KILL "$pid" 2>/dev/null
    _cenv_wait_gone "$pid" 10 || { _cenv_log "containerd pid $pid did not die"; return 1; }
  fi
  [[ -r $dir/env ]] && { set -a; source "$dir/env"; set +a; }
  rm -f "$dir/containerd.sock" "$dir/containerd.sock.ttrpc"
  _cenv_launch_containerd "$dir"
}

# Lists pids (one per line) of processes whose cmdline or cwd refers to $1, except this shell
# and its ancestors (whose command lines may name the dir too).
_cenv_pids_referring_to() {
  local dir=$1 f p skip=" " a=$BASHPID
  while [[ $a =~ ^[0-9]+$ && $a -gt 1 ]]; do
    skip+="$a "
    a=$(awk '/^PPid:/{print $2}' "/proc/$a/status" 2>/dev/null) || break
  done
  {
    # cmdline: NUL-separated arguments; an argument is the dir or a path inside it.
    grep -lsazF -e "$dir/" /proc/[0-9]*/cmdline
    grep -lsazxF -e "$dir" /proc/[0-9]*/cmdline
    find /proc -mindepth 2 -maxdepth 2 -name cwd \( -lname "$dir" -o -lname "$dir/*" \) 2>/dev/null
  } | while IFS= read -r f; do
    p=${f#/proc/}; p=${p%%/*}
    [[ $skip == *" $p "* ]] || echo "$p"
  done | sort -un
}

# Ends everything of the env in $1 (default $CENV_DIR) and removes the dir. Idempotent.
cenv_stop() {
  local dir=${1:-${CENV_DIR:-}} ns pid p m cg bundles addr sockets=() i
  [[ -n $dir && -d $dir && $dir == /* ]] || return 0
  [[ -e $dir/config.toml || -e $dir/env || $(basename -- "$dir") == cenv-* ]] || {
    _cenv_log "refusing to remove $dir: not a containerd-env dir"; return 1; }
  ns=e2e-${dir##*-}

  # Sockets the shims announced (outside the dir for runc: /run/containerd/s/...).
  bundles=$dir/state/io.containerd.runtime.v2.task/$ns
  for addr in "$bundles"/*/address; do
    [[ -r $addr ]] || continue
    p=$(<"$addr"); p=${p#unix://}
    [[ $p == /* ]] && sockets+=("$p")
  done

  if pid=$(cenv_containerd_pid "$dir"); then
    # Graceful first: lets shims unmount and delete their own state.
    local t c
    for t in $(timeout 10 ctr -a "$dir/containerd.sock" -n "$ns" tasks ls -q 2>/dev/null); do
      timeout 10 ctr -a "$dir/containerd.sock" -n "$ns" tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1
      timeout 20 ctr -a "$dir/containerd.sock" -n "$ns" tasks rm -f "$t" >/dev/null 2>&1
    done
    for c in $(timeout 10 ctr -a "$dir/containerd.sock" -n "$ns" containers ls -q 2>/dev/null); do
      timeout 20 ctr -a "$dir/containerd.sock" -n "$ns" containers rm "$c" >/dev/null 2>&1
    done
    _cenv_terminate "$pid" 10
  fi

  # Shims, VMs and anything else started with paths in our dir.
  for ((i = 0; i < 3; i++)); do
    local left=()
    mapfile -t left < <(_cenv_pids_referring_to "$dir")
    [[ ${#left[@]} -eq 0 ]] && break
    for p in "${left[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${left[@]}"; do _cenv_wait_gone "$p" 5; done
  done

  # Container processes (runc): they live in cgroups /<ns>/<id> of every hierarchy.
  for cg in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do
    [[ -d $cg ]] || continue
    for ((i = 0; i < 3; i++)); do
      local procs
      procs=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
      [[ -z $procs ]] && break
      for p in $procs; do kill -KILL "$p" 2>/dev/null; done
      for p in $procs; do _cenv_wait_gone "$p" 5; done
    done
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done

  # Mounts under the dir, deepest first.
  for ((i = 0; i < 5; i++)); do
    local mounts=()
    mapfile -t mounts < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo |
                          awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
    [[ ${#mounts[@]} -eq 0 ]] && break
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  done

  for p in "${sockets[@]}"; do
    [[ -S $p ]] && rm -f -- "$p"
  done
  [[ -d /run/containerd/runc/$ns ]] && rm -rf --one-file-system -- "/run/containerd/runc/$ns"
  rm -rf --one-file-system -- "$dir"
  [[ ${CENV_DIR:-} == "$dir" ]] && unset CENV_DIR
  [[ ! -e $dir ]] || { _cenv_log "could not remove $dir completely"; return 1; }
}

_cenv_main() {
  set -uo pipefail
  local cmd=${1:-}
  shift || true
  case $cmd in
    start)
      cenv_start "$@" || exit 1
      echo "$CENV_DIR" ;;
    stop)
      [[ $# -eq 1 ]] || { _cenv_log "usage: containerd-env.sh stop DIR"; exit 2; }
      cenv_stop "$1" ;;
    restart)
      [[ $# -eq 1 ]] || { _cenv_log "usage: containerd-env.sh restart DIR"; exit 2; }
      cenv_attach "$1" && cenv_restart "$1" ;;
    run)
      local opts=()
      while [[ $# -gt 0 && $1 != -- ]]; do opts+=("$1"); shift; done
      [[ ${1:-} == -- && $# -ge 2 ]] || { _cenv_log "usage: containerd-env.sh run [OPTIONS] -- CMD [ARG...]"; exit 2; }
      shift
      cenv_start "${opts[@]}" || exit 1
      trap 'cenv_stop "$CENV_DIR"' EXIT
      trap 'exit 130' INT
      trap 'exit 143' TERM
      export CENV_SCRIPT="$CENV_SCRIPT_DIR/containerd-env.sh"
      "$@"
      exit $? ;;
    *)
      sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 2 ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  _cenv_main "$@"
fi
