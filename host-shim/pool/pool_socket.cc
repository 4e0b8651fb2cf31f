#include "pool/pool_socket.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "paths.h"
#include "pool/pool_dir.h"
#include "sandbox_share.h"

namespace uvmshim::host::pool {
namespace fs = std::filesystem;

fs::path KeeperSocketPath(const fs::path& vm_dir) { return SocketDirFor(vm_dir) / "keeper.sock"; }

UniqueFd ConnectKeeper(const fs::path& vm_dir) {
  const fs::path path = KeeperSocketPath(vm_dir);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof addr.sun_path) throw std::runtime_error("keeper socket path too long: " + path.string());
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error(fmt::format("connect {}: {}", path.string(), std::strerror(errno)));
  return fd;
}

bool SendLine(int fd, const std::string& line) {
  const std::string text = line + "\n";
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<std::string> ReadLine(int fd, int timeout_ms) {
  std::string line;
  // Byte by byte: the lines are short and nothing after the '\n' may be
  // consumed (the next line belongs to a later read).
  while (line.size() < 4096) {
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    char c = 0;
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    if (c == '\n') return line;
    line += c;
  }
  return std::nullopt;
}

namespace {

// Only a process whose command line names this VM's dir is ours to kill
// (pids are reused).
bool NamesDir(pid_t pid, const fs::path& vm_dir) {
  const std::string cmdline = ReadSmallFile(fmt::format("/proc/{}/cmdline", pid));
  return !cmdline.empty() && cmdline.find(vm_dir.filename().string()) != std::string::npos;
}

}  // namespace

void KeeperLeftovers(const fs::path& vm_dir) {
  const std::string conf = ReadSmallFile(vm_dir / "vm.conf");
  if (auto at = conf.find("qemu_pid="); at != std::string::npos) {
    const pid_t qemu = static_cast<pid_t>(std::strtol(conf.c_str() + at + 9, nullptr, 10));
    if (qemu > 0 && NamesDir(qemu, vm_dir)) ::kill(qemu, SIGKILL);
  }
  if (auto failed = DetachMountsUnder(vm_dir); !failed.empty()) {
    spdlog::error("pool: {}: {} mount(s) stay, dir kept", vm_dir.string(), failed.size());
    return;  // never remove through a mount
  }
  std::error_code ec;
  const fs::path sockets = SocketDirFor(vm_dir);
  if (sockets != vm_dir) fs::remove_all(sockets, ec);
  fs::remove_all(vm_dir, ec);
}

}  // namespace uvmshim::host::pool
