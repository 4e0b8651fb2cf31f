#include "uvm/qemu/boot_file_release.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/unique_fd.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

namespace uvmshim::uvm {
namespace fs = std::filesystem;

namespace {

// The mapped ranges of /proc/<pid>/maps whose path is one of `files`.
std::vector<iovec> MappingsOf(pid_t pid, const std::vector<std::string>& files) {
  std::vector<iovec> ranges;
  std::ifstream maps(fmt::format("/proc/{}/maps", pid));
  std::string line;
  while (std::getline(maps, line)) {
    // start-end perms offset dev inode path (the path may hold spaces: the rest of the line)
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode;
    if (!(fields >> range >> perms >> offset >> dev >> inode)) continue;
    std::string path;
    std::getline(fields >> std::ws, path);
    bool wanted = false;
    for (const auto& file : files) wanted = wanted || path == file;
    if (!wanted) continue;
    const auto dash = range.find('-');
    if (dash == std::string::npos) continue;
    const auto start = std::stoull(range.substr(0, dash), nullptr, 16);
    const auto end = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (end > start) ranges.push_back({reinterpret_cast<void*>(start), static_cast<size_t>(end - start)});
  }
  return ranges;
}

}  // namespace

BootFileRelease ReleaseBootFileMappings(pid_t vmm, const std::vector<fs::path>& files) {
  BootFileRelease result;
  std::vector<std::string> paths;
  for (const auto& file : files) {
    if (file.empty()) continue;
    std::error_code ec;
    const fs::path canonical = fs::canonical(file, ec);
    paths.push_back(ec ? file.string() : canonical.string());
  }
  if (vmm <= 0 || paths.empty()) return result;
  // The pidfd pins the process: the ranges are never applied to another one
  // that reused the pid after reading its maps.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, vmm, 0)));
  if (!pidfd) {
    result.error = fmt::format("pidfd_open({}): {}", vmm, std::strerror(errno));
    return result;
  }
  for (const iovec& range : MappingsOf(vmm, paths)) {
    const long done = ::syscall(SYS_process_madvise, pidfd.get(), &range, 1, MADV_PAGEOUT, 0);
    if (done < 0) {
      result.error = fmt::format("process_madvise(MADV_PAGEOUT) on pid {}: {}", vmm, std::strerror(errno));
      return result;
    }
    result.bytes += static_cast<std::uint64_t>(done);
  }
  return result;
}

}  // namespace uvmshim::uvm
