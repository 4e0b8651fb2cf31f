#include "pool/pool_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "paths.h"
#include "sandbox_config.h"

namespace uvmshim::host::pool {
namespace fs = std::filesystem;

namespace {

// True when one argument of a NUL-separated command line is `id` or a path
// ending in "/id" (the keeper's --dir): a substring would take any process
// whose arguments merely contain the id's letters.
bool CommandLineNames(const std::string& cmdline, const std::string& id) {
  std::size_t start = 0;
  while (start < cmdline.size()) {
    std::size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    const std::string_view arg(cmdline.data() + start, end - start);
    if (arg == id || (arg.size() > id.size() && arg.substr(arg.size() - id.size()) == id &&
                      arg[arg.size() - id.size() - 1] == '/'))
      return true;
    start = end + 1;
  }
  return false;
}

std::string FileIdentity(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return fmt::format("{}:{}.{}", st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

std::uint64_t Fnv1a(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

unsigned ParseUnsigned(const std::string& value, const std::string& line) {
  try {
    std::size_t used = 0;
    const unsigned long number = std::stoul(value, &used);
    if (used != value.size() || number > (1u << 20)) throw std::out_of_range(value);
    return static_cast<unsigned>(number);
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format("pool key: \"{}\": not a number", line));
  }
}

}  // namespace

std::string PoolKey::Serialize() const {
  return fmt::format("kernel={}\ninitrd={}\nmemory_mb={}\ncpus={}\nkernel_cmdline_extra={}\nconsole_log={}\n"
                     "boot_timeout_seconds={}\n",
                     kernel.string(), initrd.string(), memory_mb, cpus, kernel_cmdline_extra, console_log ? 1 : 0,
                     boot_timeout_seconds);
}

std::string PoolKey::Hash() const {
  return fmt::format("{:016x}", Fnv1a(Serialize() + FileIdentity(kernel) + "|" + FileIdentity(initrd)));
}

PoolKey PoolKey::Parse(const std::string& text) {
  PoolKey key;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw std::invalid_argument(fmt::format("pool key: \"{}\": no '='", line));
    const std::string name = line.substr(0, eq), value = line.substr(eq + 1);
    if (name == "kernel") key.kernel = value;
    else if (name == "initrd") key.initrd = value;
    else if (name == "memory_mb") key.memory_mb = ParseUnsigned(value, line);
    else if (name == "cpus") key.cpus = ParseUnsigned(value, line);
    else if (name == "kernel_cmdline_extra") key.kernel_cmdline_extra = value;
    else if (name == "console_log") key.console_log = value == "1";
    else if (name == "boot_timeout_seconds") key.boot_timeout_seconds = ParseUnsigned(value, line);
    else throw std::invalid_argument(fmt::format("pool key: unknown field \"{}\"", name));
  }
  if (key.kernel.empty() || key.initrd.empty() || key.memory_mb == 0 || key.cpus == 0)
    throw std::invalid_argument("pool key: kernel, initrd, memory_mb and cpus are required");
  return key;
}

PoolKey KeyFor(const SandboxConfig& config) {
  PoolKey key;
  const fs::path images = ImagesDir();
  key.kernel = config.kernel.empty() ? images / "vmlinuz" : config.kernel;
  key.initrd = config.initrd.empty() ? images / "initrd.img" : config.initrd;
  key.kernel = fs::absolute(key.kernel).lexically_normal();
  key.initrd = fs::absolute(key.initrd).lexically_normal();
  key.memory_mb = config.memory_mb;
  key.cpus = config.cpus;
  key.kernel_cmdline_extra = config.kernel_cmdline_extra;
  if (config.agent_log_level != "info") key.kernel_cmdline_extra += " uvm.log=" + config.agent_log_level;
  key.console_log = config.console_log;
  key.boot_timeout_seconds = static_cast<unsigned>(config.boot_timeout.count());
  return key;
}

fs::path PoolRoot() { return RuntimeRoot() / "pool"; }
fs::path KeyDir(const PoolKey& key) { return PoolRoot() / key.Hash(); }

const char* ToString(VmState state) {
  switch (state) {
    case VmState::kBooting: return "booting";
    case VmState::kReady: return "ready";
    case VmState::kClaimed: return "claimed";
    case VmState::kEnding: return "ending";
    case VmState::kUnknown: break;
  }
  return "unknown";
}

VmState ParseVmState(const std::string& text) {
  for (auto state : {VmState::kBooting, VmState::kReady, VmState::kClaimed, VmState::kEnding})
    if (text == ToString(state)) return state;
  return VmState::kUnknown;
}

void WriteFileAtomic(const fs::path& path, const std::string& text) {
  const fs::path temp = path.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("write " + temp.string());
  }
  fs::rename(temp, path);
}

std::string ReadSmallFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string result = text.str();
  while (!result.empty() && (result.back() == '\n' || result.back() == ' ')) result.pop_back();
  return result;
}

std::vector<PoolVm> ListVms(const fs::path& key_dir) {
  std::vector<PoolVm> vms;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(key_dir, ec)) {
    if (!entry.is_directory(ec)) continue;
    PoolVm vm;
    vm.dir = entry.path();
    vm.id = entry.path().filename().string();
    vm.state = ParseVmState(ReadSmallFile(vm.dir / "state"));
    std::istringstream conf(ReadSmallFile(vm.dir / "vm.conf"));
    for (std::string line; std::getline(conf, line);) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string name = line.substr(0, eq);
      const long value = std::strtol(line.c_str() + eq + 1, nullptr, 10);
      if (name == "memory_mb") vm.memory_mb = static_cast<unsigned>(value);
      if (name == "keeper_pid") vm.keeper_pid = static_cast<pid_t>(value);
      if (name == "qemu_pid") vm.qemu_pid = static_cast<pid_t>(value);
    }
    // Alive = that pid runs and names this VM on its command line (its
    // --dir): a reused pid is never taken for the keeper (nor signalled).
    vm.keeper_alive = vm.keeper_pid > 0 && ::kill(vm.keeper_pid, 0) == 0 &&
                      CommandLineNames(ReadSmallFile(fmt::format("/proc/{}/cmdline", vm.keeper_pid)), vm.id);
    vms.push_back(std::move(vm));
  }
  std::sort(vms.begin(), vms.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return vms;
}

std::vector<fs::path> ListKeyDirs() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(PoolRoot(), ec))
    if (entry.is_directory(ec)) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace uvmshim::host::pool
