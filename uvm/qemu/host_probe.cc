#include "uvm/qemu/host_probe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/unique_fd.h"
#include "uvm/utility_vm.h"

namespace uvmshim::uvm {
namespace fs = std::filesystem;

void CheckReadableFile(const char* what, const fs::path& path) {
  if (path.empty()) throw VmError(fmt::format("{}: no path configured", what));
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw VmError(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
  struct stat st {};
  const bool regular = ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode);
  if (!regular) throw VmError(fmt::format("{} {}: not a regular file", what, path.string()));
}

std::optional<std::string> FindInPath(const std::string& program) {
  if (program.find('/') != std::string::npos)
    return ::access(program.c_str(), X_OK) == 0 ? std::optional(program) : std::nullopt;
  const char* path_env = std::getenv("PATH");
  std::stringstream dirs(path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::uint64_t HostMemoryMb() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) / (1024 * 1024);
}

bool KvmUsable(std::string& why_not) {
  if (!UniqueFd(::open("/dev/kvm", O_RDWR | O_CLOEXEC))) {
    why_not = fmt::format("no usable /dev/kvm ({})", std::strerror(errno));
    return false;
  }
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::stringstream flags(line);
    std::string flag;
    while (flags >> flag)
      if (flag == "vmx" || flag == "svm") return true;
    break;
  }
  why_not = "/dev/kvm exists but the CPU has no vmx/svm";
  return false;
}

}  // namespace uvmshim::uvm
