// Directories only their owner may enter (mode 0700): every sandbox's and
// VM's state and socket directories are made here. Std-only.
#pragma once

#include <filesystem>

namespace uvmshim {

// Creates `dir` and its missing parents and makes `dir` 0700 (also when it
// already existed). Throws uvmshim::Error naming the directory.
void CreatePrivateDir(const std::filesystem::path& dir);

}  // namespace uvmshim
