#!/usr/bin/env bash
# Cross-builds the Windows host parts with mingw-w64 and runs the Windows
# test executable under wine when wine is installed.
#   tests/windows/cross-build-and-test.sh BUILD_DIR
# Exit status non-zero when the build or the tests fail. Without wine the
# build is still checked and the test run is skipped (said on stderr).
set -euo pipefail
build_dir=${1:?usage: cross-build-and-test.sh BUILD_DIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
jobs=${JOBS:-2}

cmake -S "$src" -B "$build_dir" \
  -DCMAKE_TOOLCHAIN_FILE="$src/cmake/mingw-w64.cmake" \
  -DCMAKE_BUILD_TYPE=Release
cmake --build "$build_dir" -j "$jobs"

exe=$(find "$build_dir" -name uvmshim_windows_tests.exe -type f -print -quit)
[[ -n $exe ]] || { echo "cross-build-and-test: uvmshim_windows_tests.exe was not built" >&2; exit 1; }

listed=$(ctest --test-dir "$build_dir" -N -L wine)
if [[ $listed != *windows_tests_under_wine* ]]; then
  echo "cross-build-and-test: wine64 not available; built $exe but did not run it" >&2
  exit 0
fi
ctest --test-dir "$build_dir" -L wine --output-on-failure
