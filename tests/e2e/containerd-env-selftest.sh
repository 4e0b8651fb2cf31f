#!/usr/bin/env bash
# Checks the containerd fixture itself: the image is reproducible and imports, two
# private containerds run side by side, restart keeps a running task, and stop
# leaves nothing behind (processes, cgroups, mounts, runc state, temp dir) even
# with containers still running.
#   containerd-env-selftest.sh [IMAGE.tar]
set -uo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
source "$here/containerd-env.sh"

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

work=$(mktemp -d /tmp/cenv-selftest.XXXXXX)
envs=()
cleanup() {
  local d
  for d in "${envs[@]}"; do cenv_stop "$d" 2>/dev/null; done
  rm -rf -- "$work"
}
trap cleanup EXIT

image=${1:-}
"$here/make-oci-image.sh" "$work/a.tar" && "$here/make-oci-image.sh" "$work/b.tar"
check "make-oci-image.sh is reproducible" cmp -s "$work/a.tar" "$work/b.tar"
check "image members have no leading ./" bash -c "! tar tf '$work/a.tar' | grep -q '^\./'"
[[ -n $image && -r $image ]] || image=$work/a.tar

# Starts an env and remembers its dir (for the EXIT trap) in $started.
start_env() {
  started=$("$here/containerd-env.sh" start --image "$image" "$@") || return 1
  envs+=("$started")
}

leftovers_of() {  # prints anything of env dir $1 / namespace $2 still present
  local dir=$1 ns=$2
  [[ -e $dir ]] && echo "dir $dir exists"
  _cenv_pids_referring_to "$dir" | sed 's/^/pid /'
  ls -d /sys/fs/cgroup/*/"$ns" 2>/dev/null | sed 's/^/cgroup /'
  [[ -e /run/containerd/runc/$ns ]] && echo "runc state /run/containerd/runc/$ns"
  awk -v d="$dir" 'index($5, d) == 1 {print "mount " $5}' /proc/self/mountinfo
}

start_env || { fail "start env A"; exit 1; }; A=$started
start_env || { fail "start env B"; exit 1; }; B=$started
pass "two envs started: $A $B"
nsA=e2e-${A##*-}; nsB=e2e-${B##*-}
check "envs have distinct namespaces" test "$nsA" != "$nsB"

ctrA() { ctr -a "$A/containerd.sock" -n "$nsA" "$@"; }
ctrB() { ctr -a "$B/containerd.sock" -n "$nsB" "$@"; }

# Same container id in both: cgroups and runc state must not collide.
ctrA run -d local/busybox:latest same sleep 1000 >/dev/null && ctrB run -d local/busybox:latest same sleep 1000 >/dev/null
check "same container id runs in both envs" bash -c "ctr -a '$A/containerd.sock' -n '$nsA' task ls | grep -q 'same.*RUNNING' && ctr -a '$B/containerd.sock' -n '$nsB' task ls | grep -q 'same.*RUNNING'"

out=$(ctrA run --rm local/busybox:latest echo1 sh -c 'echo hi; exit 7'); rc=$?
check "runc: ctr run --rm prints output" test "$out" == hi
check "runc: exit code propagates (7)" test "$rc" == 7

out=$(ctrA task exec --exec-id e1 same sh -c 'echo from-exec') 
check "runc: ctr task exec" test "$out" == from-exec

"$here/containerd-env.sh" restart "$A" >/dev/null
check "restart: task still RUNNING" bash -c "ctr -a '$A/containerd.sock' -n '$nsA' task ls | grep -q 'same.*RUNNING'"
out=$(ctrA task exec --exec-id e2 same echo after-restart)
check "restart: exec works afterwards" test "$out" == after-restart

# Stop A with its container still running: everything of A goes, B is untouched.
"$here/containerd-env.sh" stop "$A"
left=$(leftovers_of "$A" "$nsA")
check "stop with a running container leaves nothing${left:+: $left}" test -z "$left"
check "B still runs its container after A stopped" bash -c "ctr -a '$B/containerd.sock' -n '$nsB' task ls | grep -q 'same.*RUNNING'"
out=$(ctrB run --rm local/busybox:latest echo2 echo still-ok)
check "B still runs new containers" test "$out" == still-ok

# Kill B's shim by pid, then stop: still nothing left.
shim=$(grep -lsazxF -e "$B/containerd.sock" /proc/[0-9]*/cmdline | cut -d/ -f3 | while read -r p; do
  [[ $(readlink /proc/$p/exe) == *containerd-shim* ]] && echo "$p"; done | head -1)
[[ -n $shim ]] && kill -KILL "$shim"
"$here/containerd-env.sh" stop "$B"
left=$(leftovers_of "$B" "$nsB")
check "stop after a shim was SIGKILLed leaves nothing${left:+: $left}" test -z "$left"

# Sourced use, run mode exit status.
(
  source "$here/containerd-env.sh"
  cenv_start --image "$image" >/dev/null || exit 1
  trap cenv_stop EXIT
  [[ $(ctrx run --rm local/busybox:latest s1 echo sourced) == sourced ]]
) 
check "sourced: cenv_start + ctrx + cenv_stop" test $? == 0
"$here/containerd-env.sh" run --image "$image" -- sh -c 'ctr run --rm local/busybox:latest r1 true && exit 3'
check "run mode returns the command's status" test $? == 3

envs=()
if [[ $failures -gt 0 ]]; then echo "$failures check(s) failed"; exit 1; fi
echo "all checks passed"
