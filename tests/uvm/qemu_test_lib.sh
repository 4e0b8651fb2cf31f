# Sourced by the shell tests that boot QEMU themselves (scsi_rootfs_test.sh,
# plan9_fd_mount_test.sh): a private work dir, one QEMU at a time tracked by
# its pid (never by name: other copies of the suite run alongside), waits on
# the console log with a deadline, and a diagnosis when a boot ends early.
#   qemu_test_init PREFIX        sets $work (mktemp) and the cleanup traps
#   qemu_boot LOG QEMU_ARGS...   starts QEMU (TCG, q35, no reboot, console in LOG)
#   qemu_wait_console LOG REGEX SECONDS WHAT   until the console matches
#   qemu_wait_exit LOG SECONDS WHAT            until the guest ends by itself
#   qemu_stop                    kills the running QEMU and reaps it
#   qemu_fail LOG WHAT           fails with the console and QEMU's exit status
#   $qemu_kernel_params          kernel parameters every boot here needs
# Timeouts are generous: TCG on a machine shared by several suites is slow.

fail() { echo "FAIL: $*" >&2; exit 1; }

qemu_pid=
qemu_status=
work=
# For every -append: a TCG vCPU on a loaded host can miss the kernel's
# IO-APIC timer check ("IO-APIC + timer doesn't work!" panic, seen in
# uvm.plan9_fd_mount under load) and fail the TSC watchdog; the product's VMs
# pass the same two (QemuOptions::boot_params).
qemu_kernel_params="no_timer_check tsc=reliable"

qemu_test_init() {
  work=$(mktemp -d "/tmp/$1-XXXXXX")
  trap _qemu_test_cleanup EXIT
  trap "exit 1" INT TERM
}

_qemu_test_cleanup() {
  if [[ -n $qemu_pid ]]; then
    kill -9 "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  [[ -z $work ]] || rm -rf "$work"
}

qemu_boot() {
  local log=$1
  shift
  [[ -z $qemu_pid ]] || fail "qemu_boot: QEMU $qemu_pid still runs"
  local bios=()
  [[ -f /usr/share/qemu/qboot.rom ]] && bios=(-bios /usr/share/qemu/qboot.rom)
  : >"$log"
  qemu-system-x86_64 -machine q35 -accel tcg "${bios[@]}" -nodefaults -no-reboot -display none \
    -m 256 -smp 1 -chardev "file,id=console,path=$log" -serial chardev:console "$@" &
  qemu_pid=$!
  qemu_status=
}

# Reaps the QEMU that ended; its exit status goes to $qemu_status (not a
# command substitution: a subshell cannot wait for this shell's child).
_qemu_reap() {
  qemu_status=0
  wait "$qemu_pid" || qemu_status=$?
  qemu_pid=
}

# Fails naming WHAT, with the console and, when the VM ended, why it may have:
# a kernel file cut short (e.g. replaced in place while QEMU read it) ends
# the VM right after the boot stub's "Probing EDD" line, QEMU status 0.
qemu_fail() {
  local log=$1 what=$2
  cat "$log" >&2
  [[ -n $qemu_status ]] || fail "$what"
  grep -aq 'Linux version' "$log" ||
    fail "$what: the VM ended (QEMU status $qemu_status) before the kernel printed its banner: is the kernel file complete?"
  fail "$what: the VM ended (QEMU status $qemu_status)"
}

qemu_wait_console() {
  local log=$1 regex=$2 seconds=$3 what=$4
  local deadline=$((SECONDS + seconds))
  until grep -aqE "$regex" "$log"; do
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
      _qemu_reap
      # The last console bytes may have landed between the grep and the exit.
      grep -aqE "$regex" "$log" && return 0
      qemu_fail "$log" "no $what"
    fi
    ((SECONDS < deadline)) || qemu_fail "$log" "no $what after $seconds s"
    sleep 0.2
  done
}

qemu_wait_exit() {
  local log=$1 seconds=$2 what=$3
  local deadline=$((SECONDS + seconds))
  while kill -0 "$qemu_pid" 2>/dev/null; do
    ((SECONDS < deadline)) || qemu_fail "$log" "the guest still runs after $seconds s ($what)"
    sleep 0.2
  done
  _qemu_reap
}

qemu_stop() {
  [[ -n $qemu_pid ]] || return 0
  kill -9 "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
}
