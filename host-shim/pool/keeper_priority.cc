#include "pool/keeper_priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace uvmshim::host::pool {
namespace fs = std::filesystem;

int CurrentNice() {
  errno = 0;
  const int value = ::getpriority(PRIO_PROCESS, 0);
  return errno == 0 ? value : 0;
}

void LowerPriorityForBoot() noexcept {
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, 0);
  if (errno == 0) ::setpriority(PRIO_PROCESS, 0, now + kBootNiceIncrement > 19 ? 19 : now + kBootNiceIncrement);
}

void RestorePriority(int nice) {
  auto set = [nice](pid_t pid) {
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(pid), nice) != 0)
      spdlog::warn("setpriority pid {} to {}: {}", pid, nice, std::strerror(errno));
  };
  // Every thread of ours (QEMU's children list is per thread that forked).
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/self/task", ec)) {
    const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
    set(tid);
    std::ifstream children(task.path() / "children");
    pid_t child = 0;
    while (children >> child) {
      // QEMU and virtiofsd are multi-threaded: nice is per thread.
      for (const auto& thread : fs::directory_iterator(fs::path("/proc") / std::to_string(child) / "task", ec))
        set(static_cast<pid_t>(std::stol(thread.path().filename().string())));
    }
  }
  if (ec) spdlog::warn("restoring priority: {}", ec.message());
}

}  // namespace uvmshim::host::pool
