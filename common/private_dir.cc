#include "common/private_dir.h"

#include <system_error>

#include "common/error.h"

namespace uvmshim {
namespace fs = std::filesystem;

void CreatePrivateDir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(CodeForErrno(ec.value()), "create directory " + dir.string() + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) throw Error(CodeForErrno(ec.value()), "chmod 0700 " + dir.string() + ": " + ec.message());
}

}  // namespace uvmshim
