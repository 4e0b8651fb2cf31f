#!/bin/sh
# The initrd's static agent stays small (issue #13: kernel + initrd <= 8 MiB,
# the agent's RSS in the guest is mostly its own file pages):
#   - at most MAX_BYTES (the stripped binary, cmake/static_agent.cmake)
#   - protobuf-lite only: no descriptor/reflection runtime linked in (the full
#     runtime embeds google/protobuf/descriptor.proto; it cost 1.1 MB)
# Usage: static_agent_size_check.sh BINARY MAX_BYTES
set -u
bin=$1 max=$2
[ -f "$bin" ] || { echo "FAIL $bin: missing"; exit 1; }
status=0
size=$(stat -c %s "$bin")
if [ "$size" -gt "$max" ]; then
  echo "FAIL $bin: $size bytes, more than $max (see README: Figures, rss_agent_guest, for the breakdown)"
  status=1
fi
if grep -aq 'google/protobuf/descriptor.proto' "$bin"; then
  echo "FAIL $bin: links the full protobuf runtime (descriptors); the agent's messages must be protobuf-lite"
  status=1
fi
[ $status -eq 0 ] && echo "ok $bin: $size bytes (max $max), protobuf-lite"
exit $status
