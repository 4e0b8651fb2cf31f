#include "runc/commands.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "paths.h"
#include "runc/container_record.h"
#include "runc/control_channel.h"
#include "sandbox_share.h"
#include "sandbox_state.h"
#include "common/unique_fd.h"

namespace uvmshim::runc {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

ContainerRecord RunningRecord(const CommandLine& cl) {
  auto record = RequireRecord(cl.global.root, cl.Id());
  if (!MonitorAlive(record)) throw std::runtime_error(fmt::format("container {} is not running", cl.Id()));
  return record;
}

// Waits for a process that is not our child to end (pidfd); false on timeout.
bool WaitGone(pid_t pid, std::chrono::milliseconds timeout) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd) return true;  // already gone
  pollfd p{fd.get(), POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

// Is pid still the agent host we recorded (not a reused pid)? Its command line
// names the sandbox's state or socket dir (QEMU) or its cgroup parent (the host agent).
bool IsOurAgentHost(const ContainerRecord& record) {
  if (record.host_pid <= 0 || record.sandbox_dir.empty()) return false;
  std::ifstream in(fmt::format("/proc/{}/cmdline", record.host_pid), std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), {});
  const std::string sockets = host::SocketDirFor(record.sandbox_dir).string();
  return cmdline.find(record.sandbox_dir) != std::string::npos || cmdline.find(sockets) != std::string::npos ||
         (!record.cgroup_parent.empty() && cmdline.find(record.cgroup_parent) != std::string::npos);
}

// What a monitor that was killed left behind: its agent host (QEMU or the host
// agent), the container's host processes and cgroups, mounts, sockets.
void CleanUpAfter(const std::string& root, const ContainerRecord& record) {
  if (IsOurAgentHost(record)) {
    ::kill(static_cast<pid_t>(record.host_pid), SIGKILL);
    WaitGone(static_cast<pid_t>(record.host_pid), std::chrono::seconds(10));
  }
  if (!record.cgroup_parent.empty()) host::KillSandboxCgroups(record.cgroup_parent);
  const fs::path dir = ContainerDir(root, record.id);
  auto left = host::DetachMountsUnder(dir);
  std::error_code ignored;
  if (!record.sandbox_dir.empty()) {
    const fs::path sockets = host::SocketDirFor(record.sandbox_dir);
    if (sockets != fs::path(record.sandbox_dir)) fs::remove_all(sockets, ignored);
  }
  if (!left.empty()) throw std::runtime_error(fmt::format("{}: {} mount(s) could not be detached", dir.string(), left.size()));
  fs::remove_all(dir, ignored);
}

}  // namespace

int ParseSignal(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) {
    int n = std::stoi(text);
    if (n <= 0 || n >= 65) throw std::invalid_argument(fmt::format("signal {} is out of range", text));
    return n;
  }
  std::string name = text;
  if (name.starts_with("SIG")) name = name.substr(3);
  static const std::map<std::string, int> kSignals = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},     {"TRAP", SIGTRAP},
      {"ABRT", SIGABRT}, {"BUS", SIGBUS},   {"FPE", SIGFPE},   {"KILL", SIGKILL},   {"USR1", SIGUSR1},
      {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
      {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
      {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM},
      {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},   {"PWR", SIGPWR},     {"SYS", SIGSYS}};
  auto it = kSignals.find(name);
  if (it == kSignals.end()) throw std::invalid_argument(fmt::format("unknown signal \"{}\"", text));
  return it->second;
}

int StartCommand(const CommandLine& cl) {
  auto record = RunningRecord(cl);
  Call(ContainerDir(cl.global.root, record.id), {{"op", "start"}});
  return 0;
}

int StateCommand(const CommandLine& cl) {
  std::cout << OciState(RequireRecord(cl.global.root, cl.Id())).dump(2) << "\n";
  return 0;
}

int KillCommand(const CommandLine& cl) {
  const int signal = ParseSignal(cl.positionals.size() > 1 ? cl.positionals[1] : "SIGTERM");
  auto record = RunningRecord(cl);
  Call(ContainerDir(cl.global.root, record.id), {{"op", "kill"}, {"signal", signal}, {"all", cl.Has("all") || cl.Has("a")}});
  return 0;
}

int DeleteCommand(const CommandLine& cl) {
  const bool force = cl.Has("force") || cl.Has("f");
  auto record = ReadRecord(cl.global.root, cl.Id());
  if (!record) {
    std::error_code ignored;
    fs::remove_all(ContainerDir(cl.global.root, cl.Id()), ignored);  // a create that died half-way
    if (force) return 0;
    throw std::runtime_error(fmt::format("container {} does not exist", cl.Id()));
  }
  const std::string status = EffectiveStatus(*record);
  if (status != "stopped") {
    if (status == "running" && !force)
      throw std::runtime_error(fmt::format("cannot delete container {} that is not stopped: {}", cl.Id(), status));
    try {  // a created container is ended by delete, as runc does
      Call(ContainerDir(cl.global.root, record->id), {{"op", "kill"}, {"signal", SIGKILL}, {"all", true}});
    } catch (const std::exception& e) {
      spdlog::debug("delete {}: kill: {}", cl.Id(), e.what());
    }
    if (!WaitGone(record->monitor_pid, std::chrono::seconds(120)) && MonitorAlive(*record)) {
      spdlog::warn("delete {}: the monitor (pid {}) did not end; killing it", cl.Id(), record->monitor_pid);
      ::kill(record->monitor_pid, SIGKILL);
      WaitGone(record->monitor_pid, std::chrono::seconds(10));
    }
  }
  CleanUpAfter(cl.global.root, *record);
  return 0;
}

int ListCommand(const CommandLine& cl) {
  std::vector<ContainerRecord> records;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cl.global.root, ec))
    if (auto r = ReadRecord(cl.global.root, entry.path().filename().string())) records.push_back(*r);
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a.created < b.created; });
  if (cl.Get("format", cl.Get("f", "table")) == "json") {
    json all = json::array();
    for (const auto& r : records) all.push_back(OciState(r));
    std::cout << all.dump() << "\n";
    return 0;
  }
  if (cl.Has("quiet") || cl.Has("q")) {
    for (const auto& r : records) std::cout << r.id << "\n";
    return 0;
  }
  std::cout << fmt::format("{:<20} {:<8} {:<10} {:<40} {:<32} {}\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
  for (const auto& r : records) {
    auto s = OciState(r);
    std::cout << fmt::format("{:<20} {:<8} {:<10} {:<40} {:<32} {}\n", r.id, s["pid"].get<int>(),
                             s["status"].get<std::string>(), r.bundle, r.created, "root");
  }
  return 0;
}

int PsCommand(const CommandLine& cl) {
  auto record = RunningRecord(cl);
  auto answer = Call(ContainerDir(cl.global.root, record.id), {{"op", "ps"}});
  if (cl.Get("format", cl.Get("f", "table")) == "json") {
    std::cout << answer["pids"].dump() << "\n";
  } else {
    std::cout << "PID\n";
    for (const auto& pid : answer["pids"]) std::cout << pid.get<int>() << "\n";
  }
  return 0;
}

int UpdateCommand(const CommandLine& cl) {
  auto record = RunningRecord(cl);
  json resources = json::object();
  const std::string file = cl.Get("resources", cl.Get("r"));
  if (!file.empty()) {
    std::string text;
    if (file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      std::ifstream in(file);
      if (!in) throw std::invalid_argument(fmt::format("--resources: cannot read {}", file));
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    resources = json::parse(text, nullptr, false);
    if (resources.is_discarded() || !resources.is_object())
      throw std::invalid_argument(fmt::format("--resources: {} is not a JSON object", file));
  }
  auto number = [&](const char* flag) { return std::stoll(cl.Get(flag)); };
  if (cl.Has("memory")) resources["memory"]["limit"] = number("memory");
  if (cl.Has("memory-swap")) resources["memory"]["swap"] = number("memory-swap");
  if (cl.Has("cpu-quota")) resources["cpu"]["quota"] = number("cpu-quota");
  if (cl.Has("cpu-period")) resources["cpu"]["period"] = number("cpu-period");
  if (cl.Has("cpu-shares")) resources["cpu"]["shares"] = number("cpu-shares");
  if (cl.Has("pids-limit")) resources["pids"]["limit"] = number("pids-limit");
  Call(ContainerDir(cl.global.root, record.id), {{"op", "update"}, {"resources", resources.dump()}});
  return 0;
}

int FeaturesCommand(const CommandLine&) {
  json features = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.0.2"},
      {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions", {"ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "private", "rprivate", "slave",
                        "rslave", "shared", "rshared"}},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "uts"}},
        {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
        {"seccomp", {{"enabled", true}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}}}},
      {"annotations", {{"io.uvmshim.isolation", "process|hyperv: overrides --isolation for this container"}}}};
  std::cout << features.dump(2) << "\n";
  return 0;
}

int PrintVersion() {
  std::cout << "uvm-runc version 0.1.0\nspec: 1.0.2\nisolation: process, hyperv (utility VM)\n";
  return 0;
}

}  // namespace uvmshim::runc
