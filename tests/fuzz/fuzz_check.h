// Shared by the fuzz targets: an invariant that does not hold is a crash
// (libFuzzer keeps the input; corpus_replay fails its ctest).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace uvmshim::fuzz {

inline void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// Accepted text must never carry a NUL: the C APIs it reaches (paths, exec
// arguments, mount options) would silently cut it there.
inline bool HasNoNul(std::string_view text) { return text.find('\0') == std::string_view::npos; }

}  // namespace uvmshim::fuzz
