#include "runc/forked_monitor.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace uvmshim::runc {
namespace fs = std::filesystem;

ForkedMonitor ForkMonitor(const std::function<int(UniqueFd ready)>& body) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
  UniqueFd read_end(ready[0]), write_end(ready[1]);
  ForkedMonitor monitor;
  monitor.pid = ::fork();
  if (monitor.pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (monitor.pid == 0) {
    read_end.reset();
    ::_exit(body(std::move(write_end)));
  }
  write_end.reset();
  char buffer[4096];
  for (ssize_t n; (n = ::read(read_end.get(), buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    monitor.answer.append(buffer, static_cast<std::size_t>(n));
  }
  return monitor;
}

void WritePidFile(const fs::path& file, pid_t pid) {
  const fs::path temp = file.string() + ".uvm-runc.tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << pid;
    if (!out.flush()) throw std::runtime_error(fmt::format("writing --pid-file {}", file.string()));
  }
  fs::rename(temp, file);
}

}  // namespace uvmshim::runc
