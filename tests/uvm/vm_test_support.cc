#include "vm_test_support.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace uvmshim::uvm::test {

namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

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

}  // namespace uvmshim::uvm::test
