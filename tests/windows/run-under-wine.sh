#!/usr/bin/env bash
# Runs a cross-compiled Windows test executable under wine with a private,
# throw-away WINEPREFIX, so concurrent runs do not share state.
#   run-under-wine.sh EXE [ARGS...]
# Exit status: the executable's. Leaves no wine processes or files behind.
set -euo pipefail
exe=${1:?usage: run-under-wine.sh EXE [ARGS...]}
shift

wine=${UVMSHIM_WINE64:-}
if [[ -z $wine ]]; then
  wine=$(command -v wine64 || true)
  [[ -z $wine && -x /usr/lib/wine/wine64 ]] && wine=/usr/lib/wine/wine64
  [[ -z $wine ]] && wine=$(command -v wine || true)
fi
if [[ -z $wine ]]; then
  echo "run-under-wine: wine64 not found" >&2
  exit 127
fi
wineserver=$(dirname "$wine")/wineserver
[[ -x $wineserver ]] || wineserver=$(command -v wineserver || echo wineserver)

prefix=$(mktemp -d "${TMPDIR:-/tmp}/uvmshim-wine.XXXXXX")
cleanup() {
  # Ends only this private prefix's wineserver (and its processes).
  WINEPREFIX=$prefix "$wineserver" -k 2>/dev/null || true
  WINEPREFIX=$prefix "$wineserver" -w 2>/dev/null || true
  rm -rf "$prefix"
}
trap cleanup EXIT

export WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# A temp dir inside the prefix keeps the tests' files private as well.
rc=0
timeout --kill-after=10 "${UVMSHIM_WINE_TIMEOUT:-540}" "$wine" "$exe" "$@" || rc=$?
exit $rc
