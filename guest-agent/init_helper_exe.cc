#include "guest-agent/init_helper_exe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <string>

namespace uvmshim::agent {

UniqueFd OpenInitHelperBesideAgent() {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return {};
  std::string path(self, static_cast<size_t>(n));
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {};
  path = path.substr(0, slash + 1) + kInitHelperName;
  UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_IXUSR) == 0) {
    spdlog::info("event=init_helper path=/proc/self/exe reason={}", "no executable " + path);
    return {};
  }
  UniqueFd above(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 10));
  if (!above) return {};
  spdlog::info("event=init_helper path={}", path);
  return above;
}

}  // namespace uvmshim::agent
