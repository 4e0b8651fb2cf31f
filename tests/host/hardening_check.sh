#!/bin/sh
# Checks that each binary given was built hardened (cmake/hardening.cmake):
#   PIE          ELF type DYN with an interpreter or static-pie (DYN, no INTERP)
#   full RELRO   a GNU_RELRO segment and BIND_NOW (FLAGS: BIND_NOW or FLAGS_1: NOW)
#   canaries     __stack_chk_fail referenced (or, in a stripped static binary,
#                glibc's "stack smashing detected" handler linked in)
#   FORTIFY      a *_chk function referenced (or, stripped static, glibc's
#                "buffer overflow detected" handler)
#   --static     the binaries after it must be static (no interpreter, no
#                shared libraries): the initrd's agent runs before any exist
# Usage: hardening_check.sh BINARY... [--static BINARY...]
# Exit status 1 naming every failure.
set -u
status=0
static=0
fail() { echo "FAIL $1: $2"; status=1; }
for bin in "$@"; do
  if [ "$bin" = "--static" ]; then static=1; continue; fi
  [ -f "$bin" ] || { fail "$bin" "missing"; continue; }
  header=$(readelf -h "$bin") || { fail "$bin" "not an ELF file"; continue; }
  echo "$header" | grep -q 'Type:[[:space:]]*DYN' || fail "$bin" "not PIE (ELF type $(echo "$header" | sed -n 's/.*Type:[[:space:]]*//p'))"
  readelf -lW "$bin" | grep -q 'GNU_RELRO' || fail "$bin" "no GNU_RELRO segment"
  if [ $static -eq 1 ]; then
    readelf -lW "$bin" | grep -q 'INTERP' && fail "$bin" "must be static but requests an interpreter"
    readelf -dW "$bin" | grep -q '(NEEDED)' && fail "$bin" "must be static but needs shared libraries"
  fi
  dynamic=$(readelf -dW "$bin")
  echo "$dynamic" | grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW|\(BIND_NOW\)' || fail "$bin" "not BIND_NOW (partial RELRO only)"
  symbols=$(readelf -sW --dyn-syms "$bin" 2>/dev/null)
  if echo "$symbols" | grep -q ' __stack_chk_fail'; then :
  elif grep -aq 'stack smashing detected' "$bin"; then :
  else fail "$bin" "no stack protector (__stack_chk_fail)"; fi
  if echo "$symbols" | grep -Eq ' __[a-z_]+_chk(@|$| )'; then :
  elif grep -aq 'buffer overflow detected' "$bin"; then :
  else fail "$bin" "no _FORTIFY_SOURCE checks (__*_chk)"; fi
  [ $status -eq 0 ] && echo "ok $bin$([ $static -eq 1 ] && echo ' (static)')"
done
exit $status
