#include "vm_test_support.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/unique_fd.h"

namespace uvmshim::uvm::test {

namespace fs = std::filesystem;

fs::path UvmImageDir() { return UVMSHIM_UVM_IMAGE_DIR; }
fs::path BareImageDir() { return UVMSHIM_BARE_IMAGE_DIR; }

VmConfig ImageConfig(const std::string& id, const fs::path& state_dir) {
  VmConfig config;
  config.id = id;
  config.kernel = UvmImageDir() / "vmlinuz";
  config.initrd = UvmImageDir() / "initrd.img";
  config.state_dir = state_dir;
  config.memory_mb = 256;
  config.cpus = 1;
  config.boot_timeout = std::chrono::seconds(120);
  return config;
}

std::vector<pid_t> ChildPids() {
  std::vector<pid_t> children;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream status(entry.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("PPid:", 0) == 0) {
        if (std::stoi(line.substr(5)) == self) children.push_back(std::stoi(name));
        break;
      }
    }
  }
  return children;
}

bool ProcessExists(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno != ESRCH); }

std::vector<fs::path> SocketsIn(const fs::path& dir) {
  std::vector<fs::path> sockets;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec))
    if (entry.is_socket(ec)) sockets.push_back(entry.path());
  return sockets;
}

int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WaitForFileText(const fs::path& path, const std::string& text, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const UniqueFd inotify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  // Watched before each read, so a write between the read and the poll still
  // wakes the poll. The file may not exist yet: then the poll's bound of 1 s
  // is the retry.
  bool watching = false;
  for (;;) {
    if (!watching && inotify) watching = ::inotify_add_watch(inotify.get(), path.c_str(), IN_MODIFY) >= 0;
    if (ReadFile(path).find(text) != std::string::npos) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fd{inotify.get(), POLLIN, 0};
    ::poll(&fd, 1, static_cast<int>(std::min<long long>(watching ? left.count() : 1000, left.count())));
    char events[4096];
    while (inotify && ::read(inotify.get(), events, sizeof events) > 0) {
    }
  }
}

}  // namespace uvmshim::uvm::test
