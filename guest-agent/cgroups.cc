#include "guest-agent/cgroups.h"
#include "common/error.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <set>
#include <spdlog/spdlog.h>
#include <sstream>

namespace uvmshim::agent {
namespace {

bool WriteFile(const std::string& path, const std::string& value, std::string* error) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (error) *error = "open " + path + ": " + std::strerror(errno);
    return false;
  }
  ssize_t n = write(fd, value.data(), value.size());
  int saved = errno;
  close(fd);
  if (n < 0) {
    if (error) *error = "write " + value + " to " + path + ": " + std::strerror(saved);
    return false;
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

uint64_t ReadNumber(const std::string& path, bool* unlimited = nullptr) {
  std::string text = ReadFile(path);
  if (unlimited) *unlimited = text.rfind("max", 0) == 0;
  try {
    return std::stoull(text);
  } catch (...) {
    return 0;
  }
}

uint64_t ReadKey(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string name;
  uint64_t value;
  while (in >> name >> value)
    if (name == key) return value;
  return 0;
}

// The mount points of the v1 hierarchies, from /proc/self/mountinfo.
std::vector<std::pair<std::string, std::string>> V1Hierarchies(const std::vector<std::string>& wanted) {
  std::vector<std::pair<std::string, std::string>> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype, source, options;
    tail >> fstype >> source >> options;
    if (fstype != "cgroup") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, devno, root, mountpoint;
    head >> id >> parent >> devno >> root >> mountpoint;
    if (root != "/") continue;  // a bind of a sub-cgroup: not the hierarchy root
    std::stringstream opts(options);
    std::string opt;
    while (std::getline(opts, opt, ',')) {
      for (const auto& controller : wanted) {
        if (opt != controller) continue;
        bool seen = false;
        for (const auto& [c, m] : found) seen |= (c == controller);
        if (!seen) found.emplace_back(controller, mountpoint);
      }
    }
  }
  return found;
}

bool MakeDirs(const std::string& base, const std::string& relative, std::vector<std::string>* created_parents,
              std::string* error) {
  std::string path = base;
  std::stringstream parts(relative);
  std::string part;
  std::vector<std::string> components;
  while (std::getline(parts, part, '/'))
    if (!part.empty()) components.push_back(part);
  for (size_t i = 0; i < components.size(); ++i) {
    path += "/" + components[i];
    if (mkdir(path.c_str(), 0755) != 0) {
      if (errno == EEXIST && i + 1 < components.size()) continue;
      if (errno == EEXIST) {
        // A leftover of an agent that died: reuse it when empty.
        if (ReadFile(path + "/cgroup.procs").empty()) return true;
        *error = "cgroup " + path + " exists and has processes";
        return false;
      }
      *error = "mkdir " + path + ": " + std::strerror(errno);
      return false;
    }
    if (i + 1 < components.size() && created_parents) created_parents->push_back(path);
  }
  return true;
}

}  // namespace

std::unique_ptr<Cgroup> Cgroup::Create(const std::string& parent, const std::string& name,
                                       const OciResources& resources, std::string* warning,
                                       const std::string& root) {
  const char* cgroup_root = root.c_str();
  std::unique_ptr<Cgroup> cgroup(new Cgroup());
  std::string relative = parent + "/" + name;
  std::string error;
  if (access((std::string(cgroup_root) + "/cgroup.controllers").c_str(), F_OK) == 0) {
    cgroup->v2_ = true;
    // Delegate the controllers down to our parent (best effort: some may be
    // unavailable or already enabled).
    std::string path = cgroup_root;
    std::stringstream parts(parent);
    std::string part;
    WriteFile(path + "/cgroup.subtree_control", "+cpu +memory +pids", nullptr);
    if (!MakeDirs(cgroup_root, parent, nullptr, &error)) {
      *warning = error;
      return nullptr;
    }
    while (std::getline(parts, part, '/')) {
      if (part.empty()) continue;
      path += "/" + part;
      WriteFile(path + "/cgroup.subtree_control", "+cpu +memory +pids", nullptr);
    }
    std::vector<std::string> created;
    if (!MakeDirs(cgroup_root, relative, &created, &error)) {
      *warning = error;
      return nullptr;
    }
    std::string dir = std::string(cgroup_root) + "/" + relative;
    cgroup->directories_.push_back(dir);
    for (const char* controller : {"cpu", "memory", "pids"}) cgroup->controller_dirs_.emplace_back(controller, dir);
  } else {
    auto hierarchies = V1Hierarchies({"cpu", "cpuacct", "memory", "pids", "devices"});
    if (hierarchies.empty()) {
      *warning = "no cgroup hierarchies are mounted";
      return nullptr;
    }
    std::set<std::string> made;
    for (const auto& [controller, mountpoint] : hierarchies) {
      std::string dir = mountpoint + "/" + relative;
      if (!made.count(mountpoint)) {
        if (!MakeDirs(mountpoint, relative, nullptr, &error)) {
          *warning = error;
          return nullptr;  // the destructor removes what was made
        }
        made.insert(mountpoint);
        cgroup->directories_.push_back(dir);
      }
      cgroup->controller_dirs_.emplace_back(controller, dir);
    }
    auto file = [&](const char* controller, const char* name_) { return cgroup->FileIn(controller, name_); };
    // A limit whose hierarchy is not mounted cannot be applied: say so (the
    // container refuses to start without it).
    auto missing = [&](const char* controller) {
      if (file(controller, "").empty()) error = std::string("the ") + controller + " cgroup hierarchy is not mounted";
    };
    if (resources.memory_limit && *resources.memory_limit > 0) missing("memory");
    if (resources.pids_limit && *resources.pids_limit > 0) missing("pids");
    if ((resources.cpu_shares && *resources.cpu_shares > 0) || resources.cpu_quota) missing("cpu");
  }
  cgroup->Apply(resources, &error);
  if (!error.empty()) *warning = "cgroup limits: " + error;
  return cgroup;
}

std::string Cgroup::ApplyDeviceRules(const std::vector<DeviceRule>& rules) {
  if (v2_) return AttachDeviceBpfProgram(directories_.front(), DeviceBpfProgram(rules));
  std::string dir = FileIn("devices", "");
  if (dir.empty()) return "no cgroup v1 devices hierarchy is mounted";
  std::string error;
  for (const auto& [file, line] : DeviceCgroupV1Writes(rules))
    if (!WriteFile(dir + "/" + file, line, &error)) return error;
  return "";
}

bool Cgroup::Apply(const OciResources& resources, std::string* error) const {
  std::string first;
  std::string* e = &first;
  // -1 = unlimited (runc's convention for Update); 0/absent = leave as is.
  auto limit = [this](int64_t value) { return value < 0 ? std::string(v2_ ? "max" : "-1") : std::to_string(value); };
  if (v2_) {
    const std::string& dir = directories_.front();
    if (resources.memory_limit && *resources.memory_limit != 0)
      WriteFile(dir + "/memory.max", limit(*resources.memory_limit), e);
    if (resources.pids_limit && *resources.pids_limit != 0)
      WriteFile(dir + "/pids.max", limit(*resources.pids_limit), e);
    if (resources.cpu_shares && *resources.cpu_shares > 0) {
      uint64_t shares = std::clamp<uint64_t>(*resources.cpu_shares, 2, 262144);
      uint64_t weight = 1 + ((shares - 2) * 9999) / 262142;
      WriteFile(dir + "/cpu.weight", std::to_string(weight), e);
    }
    if (resources.cpu_quota && *resources.cpu_quota != 0)
      WriteFile(dir + "/cpu.max",
                (*resources.cpu_quota > 0 ? std::to_string(*resources.cpu_quota) : std::string("max")) + " " +
                    std::to_string(resources.cpu_period.value_or(100000)),
                e);
  } else {
    auto file = [&](const char* controller, const char* name_) { return FileIn(controller, name_); };
    if (resources.memory_limit && *resources.memory_limit != 0 && !file("memory", "").empty())
      WriteFile(file("memory", "memory.limit_in_bytes"), limit(*resources.memory_limit), e);
    if (resources.pids_limit && *resources.pids_limit != 0 && !file("pids", "").empty())
      WriteFile(file("pids", "pids.max"), *resources.pids_limit < 0 ? "max" : limit(*resources.pids_limit), e);
    if (resources.cpu_shares && *resources.cpu_shares > 0 && !file("cpu", "").empty())
      WriteFile(file("cpu", "cpu.shares"), std::to_string(*resources.cpu_shares), e);
    if (resources.cpu_quota && !file("cpu", "").empty()) {
      if (resources.cpu_period) WriteFile(file("cpu", "cpu.cfs_period_us"), std::to_string(*resources.cpu_period), e);
      WriteFile(file("cpu", "cpu.cfs_quota_us"), std::to_string(*resources.cpu_quota), e);
    }
  }
  if (error && !first.empty()) *error = first;
  return first.empty();
}

uint64_t Cgroup::OomKills() const {
  // v2: memory.events "oom_kill N" (this cgroup and below); v1: memory.oom_control (kernel 4.13+).
  const std::string path = v2_ ? directories_.front() + "/memory.events" : FileIn("memory", "memory.oom_control");
  if (path.empty()) return 0;
  std::ifstream in(path);
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value)
    if (key == "oom_kill") return value;
  return 0;
}

Cgroup::~Cgroup() {
  if (!removed_ && !Remove())
    spdlog::warn("event=cgroup_remove_failed dir={}", directories_.empty() ? "" : directories_.front());
}

std::string Cgroup::FileIn(const std::string& controller, const std::string& file) const {
  for (const auto& [c, dir] : controller_dirs_)
    if (c == controller) return file.empty() ? dir : dir + "/" + file;
  return {};
}

std::vector<UniqueFd> Cgroup::OpenProcsFiles() const {
  std::vector<UniqueFd> files;
  const char* file = v2_ ? "/cgroup.procs" : "/tasks";
  for (const auto& dir : directories_) {
    UniqueFd fd(open((dir + file).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) throw ErrnoError("open " + dir + file + " to join the container's cgroup", errno);
    files.push_back(std::move(fd));
  }
  return files;
}

int JoinProcsFiles(const std::vector<UniqueFd>& files) noexcept {
  for (const auto& fd : files)
    if (write(fd.get(), "0", 1) != 1) return errno != 0 ? errno : EIO;
  return 0;
}

std::vector<pid_t> Cgroup::Pids() const {
  std::vector<pid_t> pids;
  if (directories_.empty()) return pids;
  std::ifstream in(directories_.front() + "/cgroup.procs");
  pid_t pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

void Cgroup::KillAll(int signal) const {
  if (v2_ && signal == SIGKILL && WriteFile(directories_.front() + "/cgroup.kill", "1", nullptr)) return;
  for (pid_t pid : Pids()) kill(pid, signal);
}

CgroupStats Cgroup::ReadStats() const {
  CgroupStats stats;
  bool unlimited = false;
  if (v2_) {
    const std::string& dir = directories_.front();
    stats.cpu_usage_ns = ReadKey(dir + "/cpu.stat", "usage_usec") * 1000;
    stats.cpu_user_ns = ReadKey(dir + "/cpu.stat", "user_usec") * 1000;
    stats.cpu_system_ns = ReadKey(dir + "/cpu.stat", "system_usec") * 1000;
    stats.memory_usage_bytes = ReadNumber(dir + "/memory.current");
    stats.memory_limit_bytes = ReadNumber(dir + "/memory.max", &unlimited);
    if (unlimited) stats.memory_limit_bytes = 0;
    stats.memory_max_usage_bytes = ReadNumber(dir + "/memory.peak");
    stats.pids_current = ReadNumber(dir + "/pids.current");
    stats.pids_limit = ReadNumber(dir + "/pids.max", &unlimited);
    if (unlimited) stats.pids_limit = 0;
    return stats;
  }
  if (auto dir = FileIn("cpuacct", ""); !dir.empty()) {
    stats.cpu_usage_ns = ReadNumber(dir + "/cpuacct.usage");
    // cpuacct.stat counts USER_HZ ticks.
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t ns_per_tick = hz > 0 ? 1'000'000'000ull / static_cast<uint64_t>(hz) : 10'000'000ull;
    stats.cpu_user_ns = ReadKey(dir + "/cpuacct.stat", "user") * ns_per_tick;
    stats.cpu_system_ns = ReadKey(dir + "/cpuacct.stat", "system") * ns_per_tick;
  }
  if (auto dir = FileIn("memory", ""); !dir.empty()) {
    stats.memory_usage_bytes = ReadNumber(dir + "/memory.usage_in_bytes");
    stats.memory_limit_bytes = ReadNumber(dir + "/memory.limit_in_bytes");
    if (stats.memory_limit_bytes >= (uint64_t{1} << 62)) stats.memory_limit_bytes = 0;  // "unlimited"
    stats.memory_max_usage_bytes = ReadNumber(dir + "/memory.max_usage_in_bytes");
  }
  if (auto dir = FileIn("pids", ""); !dir.empty()) {
    stats.pids_current = ReadNumber(dir + "/pids.current");
    stats.pids_limit = ReadNumber(dir + "/pids.max", &unlimited);
    if (unlimited) stats.pids_limit = 0;
  }
  return stats;
}

bool Cgroup::Remove() {
  bool all = true;
  for (const auto& dir : directories_) {
    if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      all = false;
      spdlog::debug("event=cgroup_rmdir_failed dir={} error={}", dir, std::strerror(errno));
    }
  }
  if (all) removed_ = true;
  return all;
}

void Cgroup::RemoveParent(const std::string& parent, const std::string& root) {
  const char* cgroup_root = root.c_str();
  std::vector<std::string> roots;
  if (access((std::string(cgroup_root) + "/cgroup.controllers").c_str(), F_OK) == 0) {
    roots.push_back(cgroup_root);
  } else {
    for (const auto& [controller, mountpoint] : V1Hierarchies({"cpu", "cpuacct", "memory", "pids", "devices"}))
      roots.push_back(mountpoint);
  }
  std::vector<std::string> components;
  std::stringstream parts(parent);
  std::string part;
  while (std::getline(parts, part, '/'))
    if (!part.empty()) components.push_back(part);
  for (const auto& base : roots) {
    // Deepest first; a directory still in use (EBUSY/ENOTEMPTY) stays.
    for (size_t depth = components.size(); depth > 0; --depth) {
      std::string dir = base;
      for (size_t i = 0; i < depth; ++i) dir += "/" + components[i];
      if (rmdir(dir.c_str()) != 0 && errno != ENOENT) break;
    }
  }
}

}  // namespace uvmshim::agent
