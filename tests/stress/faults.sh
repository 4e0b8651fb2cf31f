#!/usr/bin/env bash
# Fault injection against a private containerd: each fault hits a running
# task; the task's exit must reach containerd (STOPPED, or `ctr run` returns)
# within a bound, and after `ctr task delete`/`container rm` nothing may be
# left (processes referring to the env, mounts, shim state). One line per
# fault: FAULT name result seconds.
#
#   faults.sh [--build DIR] [--only NAME...]
# Faults: qemu_kill9 virtiofsd_kill9 host_agent_kill9 shim_kill9 guest_panic
#         guest_oom qemu_sigstop corrupt_state_json containerd_restart_in_create
#         state_disk_full_process state_disk_full_hyperv
# (kill -9 at each step of create/start/exec/delete: tests/e2e/fault_step_test.cc)
set -uo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
source "$here/../e2e/containerd-env.sh"

build=${UVMSHIM_BUILD:-$here/../../build} only=()
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --only) shift; while (($#)) && [[ $1 != --* ]]; do only+=("$1"); shift; done ;;
    *) echo "faults: unknown argument $1" >&2; exit 2 ;;
  esac
done
known=" qemu_kill9 virtiofsd_kill9 host_agent_kill9 shim_kill9 guest_panic guest_oom qemu_sigstop corrupt_state_json containerd_restart_in_create state_disk_full_process state_disk_full_hyperv "
for n in "${only[@]}"; do [[ $known == *" $n "* ]] || { echo "faults: unknown fault $n (known:$known)" >&2; exit 2; }; done
build=$(cd -- "$build" && pwd) || exit 2
images=${UVMSHIM_IMAGES:-$build/images}
# Each fault gets a containerd of its own: what one fault leaves cannot be
# blamed on the next.
env_up() {
  cenv_start --shim-dir "$build/bin" --image "$build/tests/e2e/busybox-oci.tar" --env "UVMSHIM_IMAGES=$images" >/dev/null \
    || { echo "faults: containerd did not start" >&2; return 1; }
  ctr=(ctr -a "$CONTAINERD_ADDRESS" -n "$CONTAINERD_NAMESPACE")
  printf 'isolation = "hyperv"\n[agent]\ncall_timeout_seconds = 5\n' > "$CENV_DIR/hyperv.toml"
  printf 'isolation = "process"\n[agent]\ncall_timeout_seconds = 5\n' > "$CENV_DIR/process.toml"
}
env_down() { cenv_stop >/dev/null 2>&1; }
trap env_down EXIT
failures=0

wanted() { ((${#only[@]} == 0)) && return 0; local n; for n in "${only[@]}"; do [[ $n == "$1" ]] && return 0; done; return 1; }
status_of() {  # STATUS column, "" when not listed, ERR when ctr failed
  local out
  out=$(timeout 30 "${ctr[@]}" task ls 2>/dev/null) || { echo ERR; return; }
  awk -v id="$1" '$1 == id {print $3}' <<< "$out"
}
state_of() { echo "$CENV_UVMSHIM_ROOT/$CONTAINERD_NAMESPACE/$1/state.json"; }
wait_for() {  # wait_for SECONDS CMD...: true once CMD succeeds
  local until=$((SECONDS + $1)); shift
  while ((SECONDS < until)); do "$@" && return 0; sleep 0.2; done
  return 1
}
stopped_or_gone() { local s; s=$(status_of "$1"); [[ -z $s || $s == STOPPED ]]; }
child_named() {  # pid of a descendant of $1 whose exe basename starts with $2
  local p
  for p in $(ps -o pid= --ppid "$1"); do
    [[ $(basename "$(readlink "/proc/$p/exe" 2>/dev/null)") == "$2"* ]] && { echo "$p"; return; }
    child_named "$p" "$2" && return
  done
  return 1
}
nothing_left() {
  local left procs mounts
  left=$(find "$CENV_UVMSHIM_ROOT" -mindepth 1 2>/dev/null | head -3)
  procs=$(_cenv_pids_referring_to "$CENV_DIR" | grep -vx "$(cenv_containerd_pid)" | head -3)
  mounts=$(awk -v d="$CENV_DIR" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | grep -v '/rootfs$' | head -3)
  [[ -z $left && -z $procs ]] && return 0
  echo "left: state=[$left] procs=[$procs $(for p in $procs; do tr '\0' ' ' < /proc/$p/cmdline | head -c 80; done)] mounts=[$mounts]" >&2
  return 1
}
# run_fault NAME MODE EXTRA_RUN_FLAGS CMD -- INJECT_FUNCTION
run_fault() {
  local name=$1 mode=$2 flags=$3 inject=$4 id result start
  wanted "$name" || return 0
  env_up || { failures=$((failures + 1)); return; }
  id=f-${name//_/-}
  start=$SECONDS
  # shellcheck disable=SC2086
  if ! timeout 300 "${ctr[@]}" run -d $flags --runtime io.containerd.uvm.v1 \
      --runtime-config-path "$CENV_DIR/$mode.toml" "$CENV_IMAGE_REF" "$id" sleep 100000 >/dev/null; then
    echo "FAULT $name start_failed"; failures=$((failures + 1)); env_down; return
  fi
  wait_for 240 test "$(status_of "$id")" == RUNNING || { echo "FAULT $name never_running"; failures=$((failures + 1)); env_down; return; }
  start=$SECONDS
  "$inject" "$id"
  if wait_for 90 stopped_or_gone "$id"; then result=exit_reported; else result=NO_EXIT; failures=$((failures + 1)); fi
  local took=$((SECONDS - start))
  timeout 120 "${ctr[@]}" task delete -f "$id" >/dev/null 2>&1
  timeout 60 "${ctr[@]}" container rm "$id" >/dev/null 2>&1
  if wait_for 20 nothing_left 2>/dev/null; then :; else nothing_left; result+=",LEFTOVERS"; failures=$((failures + 1)); fi
  echo "FAULT $name $result ${took}s"
  env_down
}

shim_of() { jq -r .shim_pid "$(state_of "$1")"; }
host_of() { jq -r .host_pid "$(state_of "$1")"; }
inject_kill_host() { kill -9 "$(host_of "$1")"; }
inject_kill_shim() { kill -9 "$(shim_of "$1")"; }
inject_kill_virtiofsd() { local v; v=$(child_named "$(shim_of "$1")" virtiofsd) && kill -9 "$v"; }
inject_sigstop() { kill -STOP "$(host_of "$1")"; timeout 60 "${ctr[@]}" task kill -s SIGKILL "$1" >/dev/null 2>&1; }
inject_panic() { timeout 60 "${ctr[@]}" task exec --exec-id panic "$1" sh -c 'echo c > /proc/sysrq-trigger' >/dev/null 2>&1; }
inject_oom() {  # the guest (256 MiB) runs out of memory: the container's memory hog is killed
  timeout 120 "${ctr[@]}" task exec --exec-id oom "$1" sh -c 'x=a; while true; do x=$x$x; done' >/dev/null 2>&1
  timeout 60 "${ctr[@]}" task kill -s SIGKILL "$1" >/dev/null 2>&1
}
inject_corrupt_state() {
  echo '{"id": 12, garbage' > "$(state_of "$1")"
  timeout 60 "${ctr[@]}" task kill -s SIGKILL "$1" >/dev/null 2>&1
}

# containerd killed and started again while a create is in the shim's hands:
# the shim is SIGSTOPped as soon as its VM exists (a hyperv create waits for
# the VM's agent, so the create cannot have finished: checked below) and only
# resumed once the new containerd runs. The task must then be deletable and
# nothing left.
fault_containerd_restart_in_create() {
  local name=containerd_restart_in_create id=f-restart result=exit_reported start shim="" qemu="" runner
  wanted "$name" || return 0
  env_up || { failures=$((failures + 1)); return; }
  start=$SECONDS
  timeout 300 "${ctr[@]}" run -d --runtime io.containerd.uvm.v1 --runtime-config-path "$CENV_DIR/hyperv.toml" \
    "$CENV_IMAGE_REF" "$id" sleep 100000 >/dev/null 2>&1 &
  runner=$!
  shim_with_vm() {  # state.json is written only at the end of the create: find the shim by its args
    local p args
    for p in $(_cenv_pids_referring_to "$CENV_DIR"); do
      [[ $(basename "$(readlink "/proc/$p/exe" 2>/dev/null)") == containerd-shim-uvm-v1 ]] || continue
      args=$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)
      [[ $args == *" -id $id "* && $args != *" start " ]] || continue
      qemu=$(child_named "$p" qemu-system) && [[ -n $qemu ]] && { shim=$p; return 0; }
    done
    return 1
  }
  if ! wait_for 120 shim_with_vm; then
    echo "FAULT $name no_vm_seen"; failures=$((failures + 1)); wait "$runner"; env_down; return
  fi
  kill -STOP "$shim"
  if ! kill -0 "$runner" 2>/dev/null; then
    echo "FAULT $name create_already_done (cannot stop inside the create)"; failures=$((failures + 1))
    kill -CONT "$shim"; env_down; return
  fi
  start=$SECONDS
  cenv_restart >/dev/null 2>&1 || { echo "FAULT $name restart_failed"; failures=$((failures + 1)); kill -CONT "$shim"; env_down; return; }
  kill -CONT "$shim"
  wait "$runner" 2>/dev/null  # the create's ctr lost its containerd: it returns (an error)
  # The task is running (the shim finished the create), stopped, or gone; a kill
  # and a forced delete must end it.
  timeout 60 "${ctr[@]}" task kill -s SIGKILL "$id" >/dev/null 2>&1
  wait_for 120 stopped_or_gone "$id" || { result=NO_EXIT; failures=$((failures + 1)); }
  local took=$((SECONDS - start))
  timeout 120 "${ctr[@]}" task delete -f "$id" >/dev/null 2>&1
  timeout 60 "${ctr[@]}" container rm "$id" >/dev/null 2>&1
  if wait_for 30 nothing_left 2>/dev/null; then :; else nothing_left; result+=",LEFTOVERS"; failures=$((failures + 1)); fi
  echo "FAULT $name $result ${took}s"
  env_down
}

# The shim's state directory's disk is full (a 256 KiB tmpfs filled up): the
# create fails with an error naming the lack of space, leaves nothing, and the
# next create after space came back works.
fault_state_disk_full() {
  local mode=$1 name=state_disk_full_$1 id=f-full-$1 result=clear_error out
  wanted "$name" || return 0
  env_up || { failures=$((failures + 1)); return; }
  mkdir -p "$CENV_UVMSHIM_ROOT"
  mount -t tmpfs -o size=256k,mode=0700 uvmshim-full "$CENV_UVMSHIM_ROOT" || { echo "FAULT $name no_tmpfs"; failures=$((failures + 1)); env_down; return; }
  dd if=/dev/zero of="$CENV_UVMSHIM_ROOT/filler" bs=4k >/dev/null 2>&1
  out=$(timeout 300 "${ctr[@]}" run -d --runtime io.containerd.uvm.v1 --runtime-config-path "$CENV_DIR/$mode.toml" \
    "$CENV_IMAGE_REF" "$id" sleep 100000 2>&1)
  if [[ $? -eq 0 ]]; then
    result=CREATE_SUCCEEDED; failures=$((failures + 1))
  elif ! grep -qi 'space' <<< "$out"; then
    result=UNCLEAR_ERROR; failures=$((failures + 1)); echo "  error was: $out" >&2
  fi
  timeout 120 "${ctr[@]}" task delete -f "$id" >/dev/null 2>&1
  timeout 60 "${ctr[@]}" container rm "$id" >/dev/null 2>&1
  rm -f "$CENV_UVMSHIM_ROOT/filler"
  if ! wait_for 20 nothing_left 2>/dev/null; then nothing_left; result+=",LEFTOVERS"; failures=$((failures + 1)); fi
  # Space is back: the same create works (nothing half-made blocks it).
  if timeout 300 "${ctr[@]}" run --rm --runtime io.containerd.uvm.v1 --runtime-config-path "$CENV_DIR/$mode.toml" \
      "$CENV_IMAGE_REF" "$id" echo ok 2>&1 | grep -qx ok; then :; else result+=",NEXT_CREATE_FAILED"; failures=$((failures + 1)); fi
  umount "$CENV_UVMSHIM_ROOT" 2>/dev/null
  echo "FAULT $name $result"
  env_down
}

run_fault qemu_kill9 hyperv "" inject_kill_host
run_fault virtiofsd_kill9 hyperv "" inject_kill_virtiofsd
run_fault host_agent_kill9 process "" inject_kill_host
run_fault shim_kill9 hyperv "" inject_kill_shim
run_fault guest_panic hyperv "--privileged" inject_panic
run_fault guest_oom hyperv "" inject_oom
run_fault qemu_sigstop hyperv "" inject_sigstop
run_fault corrupt_state_json process "" inject_corrupt_state
fault_containerd_restart_in_create
fault_state_disk_full process
fault_state_disk_full hyperv
echo "faults failures=$failures"
((failures == 0))
