#!/usr/bin/env bash
# The initrd's static agent links only gRPC's server-side plugins
# (guest-agent/vm/grpc_server_plugins.cc); its server must still be the same
# server as the full agent's. For each binary: start it on a unix socket with
# GRPC_TRACE=channel_stack, connect once (gRPC builds the server channel stack
# of an adopted connection at once), and list the filters gRPC logged. The
# two lists must be equal, in order. Also: no c-ares in the static binary.
# Usage: static_agent_grpc_check.sh STATIC_AGENT FULL_AGENT
set -u
static_agent=$1 full_agent=$2
work=$(mktemp -d /tmp/uvmshim-grpc-check-XXXXXX)
agent_pid=
cleanup() {
  [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# server_stack BINARY NAME: prints the filters of the stacks the agent built.
server_stack() {
  local bin=$1 name=$2 sock=$work/$2.sock log=$work/$2.log
  GRPC_TRACE=channel_stack GRPC_VERBOSITY=INFO "$bin" --listen "unix://$sock" --cgroup-parent "" \
    --log-level warn 2>"$log" &
  agent_pid=$!
  for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
  [[ -S $sock ]] || { echo "FAIL $name: no socket at $sock" >&2; cat "$log" >&2; return 1; }
  python3 - "$sock" <<'EOF' || return 1
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # preface + empty SETTINGS
time.sleep(0.5)
s.close()
EOF
  for _ in $(seq 50); do grep -q 'CHANNEL_STACK:   filter' "$log" && break; sleep 0.1; done
  sleep 0.2
  kill "$agent_pid" 2>/dev/null
  wait "$agent_pid" 2>/dev/null
  agent_pid=
  sed -n 's/.*CHANNEL_STACK: *\(init\|filter\) \(.*\)$/\1 \2/p' "$log"
}

status=0
static_stack=$(server_stack "$static_agent" static) || exit 1
full_stack=$(server_stack "$full_agent" full) || exit 1
if [[ -z $full_stack ]]; then
  echo "FAIL: the full agent logged no channel stack (GRPC_TRACE=channel_stack)"
  status=1
elif [[ $static_stack != "$full_stack" ]]; then
  echo "FAIL: the static agent's server channel stack differs from the full agent's"
  diff <(echo "$full_stack") <(echo "$static_stack") | sed 's/^/  /'
  status=1
fi
# c-ares's own error strings ("ares_init" is also a gRPC log word; these are not).
if grep -aq 'DNS server returned answer with no data' "$static_agent"; then
  echo "FAIL $static_agent: links c-ares (gRPC's DNS resolver); the agent resolves no names"
  status=1
fi
if [[ $status -eq 0 ]]; then
  echo "ok: same server channel stack ($(echo "$static_stack" | grep -c filter) filters:" \
    "$(echo "$static_stack" | sed -n 's/^filter //p' | tr '\n' ' ')), no c-ares in the static agent"
fi
exit $status
