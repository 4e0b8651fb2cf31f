#include "guest-agent/container.h"

#include <dirent.h>
#include <signal.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <spdlog/spdlog.h>
#include <thread>

#include "common/ids.h"
#include "guest-agent/launcher.h"
#include "guest-agent/logging.h"
#include "guest-agent/request_checks.h"
#include "guest-agent/spec_policy.h"

namespace uvmshim::agent {
namespace {

std::string ReadComm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

std::string NamespaceId(pid_t pid, const char* name) {
  char target[128];
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + name;
  ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
  if (n <= 0) return {};
  return std::string(target, static_cast<size_t>(n));
}

int CloneFlagOf(const std::string& type) {
  if (type == "network") return CLONE_NEWNET;
  if (type == "ipc") return CLONE_NEWIPC;
  if (type == "uts") return CLONE_NEWUTS;
  if (type == "pid") return CLONE_NEWPID;
  return 0;
}

// The pid of "/proc/<pid>/ns/<file>", or 0.
pid_t ProcNsPid(const std::string& path, const std::string& file) {
  const std::string prefix = "/proc/", suffix = "/ns/" + file;
  if (path.size() <= prefix.size() + suffix.size() || path.compare(0, prefix.size(), prefix) != 0 ||
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return 0;
  const std::string digits = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return static_cast<pid_t>(std::stol(digits));
}

// Opens every linux.namespaces[].path (close-on-exec) after checking it names
// a namespace of the right type (and, in a UVM, of one of our containers).
std::vector<UniqueFd> OpenNamespacePaths(const OciSpec& spec, const ContainerOptions& options) {
  std::vector<UniqueFd> fds;
  for (size_t i = 0; i < spec.namespaces.size(); ++i) {
    const auto& ns = spec.namespaces[i];
    if (ns.path.empty()) continue;
    const std::string field = "linux.namespaces[" + std::to_string(i) + "].path \"" + ns.path + "\"";
    const std::string file = ns.type == "network" ? "net" : ns.type;
    pid_t pid = ProcNsPid(ns.path, file);
    auto ours = [&] { return pid > 1 && pid != getpid() && options.is_container_init && options.is_container_init(pid); };
    if (options.container_namespace_paths_only && !ours())
      throw Error(ErrorCode::kInvalidArgument,
                        field + ": in a utility VM only /proc/<pid>/ns/" + file + " of a running container can be joined");
    UniqueFd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      int error = errno;
      throw Error(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument,
                        field + ": " + std::strerror(error));
    }
    int type = ioctl(fd.get(), NS_GET_NSTYPE);
    if (type != CloneFlagOf(ns.type))
      throw Error(ErrorCode::kInvalidArgument, field + ": not a " + ns.type + " namespace");
    // Still one of ours once opened: the pid was not reused in between.
    if (options.container_namespace_paths_only && !ours())
      throw Error(ErrorCode::kInvalidArgument, field + ": the container ended");
    fds.push_back(std::move(fd));
  }
  return fds;
}

}  // namespace

std::shared_ptr<Container> Container::Create(const pb::CreateContainerRequest& request, Reaper& reaper,
                                             const ContainerOptions& options) {
  StepTimer steps;
  // Ids, spec, field policy, seccomp: everything checkable without a container.
  CheckedCreate checked = CheckCreateRequest(request, PolicyEnvironment::Probe(options.in_utility_vm));
  for (const auto& warning : checked.warnings)
    spdlog::warn("event=spec_field_ignored container={} field={}", request.container_id(), LogQuote(warning));
  OciSpec spec = std::move(checked.spec);
  const std::string rootfs = std::move(checked.rootfs);
  struct stat st {};
  if (stat(rootfs.c_str(), &st) != 0) {
    int error = errno;
    throw Error(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument,
                      "rootfs " + rootfs + ": " + std::strerror(error));
  }
  if (!S_ISDIR(st.st_mode)) throw Error(ErrorCode::kInvalidArgument, "rootfs " + rootfs + ": Not a directory");
  std::shared_ptr<const SeccompProgram> seccomp = std::move(checked.seccomp);
  steps.Mark("check_request");

  std::vector<UniqueFd> namespace_fds = OpenNamespacePaths(spec, options);
  bool terminal = request.terminal() || spec.process.terminal;
  std::shared_ptr<Container> container(new Container(request.container_id(), std::move(spec)));
  container->seccomp_ = std::move(seccomp);
  container->in_utility_vm_ = options.in_utility_vm;
  if (!options.in_utility_vm) {
    try {
      container->hooks_ = ParseOciHooks(request.spec_json());
    } catch (const SpecError& e) {
      throw Error(ErrorCode::kInvalidArgument, e.what());
    }
    container->bundle_ = rootfs.substr(0, std::max<size_t>(rootfs.find_last_of('/'), 1));
  }
  std::string warning;
  if (!options.cgroup_parent.empty())  // "" = no cgroups at all
    container->cgroup_ = Cgroup::Create(options.cgroup_parent, container->id_, container->spec_.resources, &warning);
  steps.Mark("cgroup");
  if (!warning.empty()) spdlog::warn("event=cgroup_unavailable container={} reason={}", container->id_, LogQuote(warning));
  // The device allowlist: a spec that lists rules is refused when they
  // cannot be enforced; without rules the default list applies where it can.
  bool explicit_device_rules = !container->spec_.resources.devices.empty();
  std::string device_error;
  if (container->cgroup_)
    device_error = container->cgroup_->ApplyDeviceRules(EffectiveDeviceRules(container->spec_));
  else
    device_error = "the container has no cgroup (" + (warning.empty() ? "the agent runs without --cgroup-parent" : warning) + ")";
  if (!device_error.empty()) {
    if (explicit_device_rules)
      throw Error(ErrorCode::kFailedPrecondition,
                        "spec: linux.resources.devices cannot be enforced: " + device_error);
    if (container->cgroup_)
      spdlog::warn("event=device_rules_unavailable container={} reason={}", container->id_, LogQuote(device_error));
  }
  const OciResources& limits = container->spec_.resources;
  bool wants_limits = (limits.memory_limit && *limits.memory_limit > 0) || (limits.pids_limit && *limits.pids_limit > 0) ||
                      (limits.cpu_shares && *limits.cpu_shares > 0) || (limits.cpu_quota && *limits.cpu_quota > 0);
  if (wants_limits && (!container->cgroup_ || !warning.empty()))  // never run without the asked limits
    throw Error(ErrorCode::kFailedPrecondition,
                      "spec: linux.resources cannot be applied: " +
                          (warning.empty() ? std::string("the agent runs without cgroups") : warning));

  steps.Mark("device_rules");
  container->init_ = std::make_shared<Process>(container->id_, "", terminal);
  InitLaunch launch;
  launch.spec_json = request.spec_json();
  launch.spec = &container->spec_;
  launch.rootfs = rootfs;
  launch.terminal = terminal;
  launch.open_stdin = request.stdin();
  launch.namespace_fds = std::move(namespace_fds);
  if (container->cgroup_) launch.cgroup_procs = container->cgroup_->OpenProcsFiles();
  launch.seccomp = container->seccomp_;
  launch.steps = &steps;
  launch.init_helper_fd = options.init_helper_fd;
  try {
    container->init_sync_ = LaunchContainerInit(std::move(launch), container->init_, reaper);
  } catch (...) {
    container->init_->WaitExitFor(std::chrono::seconds(5));  // then the cgroup is empty
    throw;
  }
  try {
    HookState state{container->id_, "created", container->init_->pid(), container->bundle_,
                    &container->hooks_.annotations};
    RunHooks(container->hooks_.prestart, "prestart", state, reaper);
    RunHooks(container->hooks_.create_runtime, "createRuntime", state, reaper);
  } catch (const std::exception& e) {
    container->init_sync_.reset();
    container->init_->SignalQuietly(SIGKILL, reaper);
    container->init_->WaitExitFor(std::chrono::seconds(5));
    throw Error(ErrorCode::kFailedPrecondition, e.what());
  }
  if (!container->hooks_.prestart.empty() || !container->hooks_.create_runtime.empty()) steps.Mark("hooks");
  spdlog::info("event=container_create_steps container={} ms={} {}", container->id_, FormatMs(steps.TotalNs()),
               steps.text());
  return container;
}

void Container::Update(const std::string& resources_json) {
  OciResources resources;
  try {
    resources = ParseOciResources(resources_json);
  } catch (const SpecError& e) {
    throw Error(ErrorCode::kInvalidArgument, "update container " + id_ + ": " + e.what());
  }
  if (!cgroup_) throw Error(ErrorCode::kFailedPrecondition, "update container " + id_ + ": it has no cgroup");
  std::string error;
  if (!cgroup_->Apply(resources, &error))
    throw Error(ErrorCode::kInvalidArgument, "update container " + id_ + ": " + error);
  spdlog::info("event=container_updated container={}", id_);
}

bool Container::OomKilled() const { return cgroup_ && cgroup_->OomKills() > 0; }

pid_t Container::Start(Reaper& reaper) {
  UniqueFd sync;
  {
    std::lock_guard lock(mu_);
    if (starting_ || init_->started())
      throw Error(ErrorCode::kFailedPrecondition, "container " + id_ + " was already started");
    if (init_->exit()) throw Error(ErrorCode::kFailedPrecondition, "container " + id_ + " has exited");
    starting_ = true;
    sync = std::move(init_sync_);
  }
  const std::int64_t start_ns = MonotonicNs();
  try {
    StartContainerInit(std::move(sync), *init_);
  } catch (Error& e) {
    throw e.AddContext("start container " + id_);
  }
  const pid_t pid = init_->pid();
  spdlog::info("event=container_start_steps container={} exec_ms={}", id_, FormatMs(MonotonicNs() - start_ns));
  if (!hooks_.poststart.empty()) {
    try {
      RunHooks(hooks_.poststart, "poststart", HookState{id_, "running", pid, bundle_, &hooks_.annotations}, reaper);
    } catch (const std::exception& e) {
      spdlog::warn("event=hook_failed container={} error={}", id_, LogQuote(e.what()));
    }
  }
  return pid;
}

std::vector<std::string> Container::ExecNamespaces() const {
  // mnt last: after it, /proc paths would resolve inside the container.
  std::vector<std::string> names;
  for (const auto& [type, name] : {std::pair{"ipc", "ipc"}, std::pair{"uts", "uts"}, std::pair{"network", "net"},
                                   std::pair{"pid", "pid"}, std::pair{"cgroup", "cgroup"}, std::pair{"mount", "mnt"}})
    if (spec_.HasNamespace(type)) names.push_back(name);
  return names;
}

void Container::ForgetOldExecsLocked() {
  size_t exited = 0;
  for (const auto& [id, process] : execs_) exited += process->exit().has_value();
  while (exited > kMaxExitedExecs && !exec_order_.empty()) {
    auto it = std::find_if(exec_order_.begin(), exec_order_.end(),
                           [&](const std::string& id) { return execs_.at(id)->exit().has_value(); });
    if (it == exec_order_.end()) break;
    execs_.erase(*it);
    exec_order_.erase(it);
    --exited;
  }
}

pid_t Container::Exec(const pb::ExecProcessRequest& request, Reaper& reaper) {
  CheckedExec checked = CheckExecRequest(request, PolicyEnvironment::Probe(in_utility_vm_));
  for (const auto& warning : checked.warnings)
    spdlog::warn("event=spec_field_ignored container={} exec={} field={}", id_, request.exec_id(), LogQuote(warning));
  OciProcess process_spec = std::move(checked.process);
  bool terminal = request.terminal() || process_spec.terminal;
  auto process = std::make_shared<Process>(id_ + "/" + request.exec_id(), request.exec_id(), terminal);
  {
    std::lock_guard lock(mu_);
    auto it = execs_.find(request.exec_id());
    if (it != execs_.end()) {
      if (!it->second->exit())
        throw Error(ErrorCode::kAlreadyExists, "exec " + request.exec_id() + " already exists in container " + id_);
      execs_.erase(it);  // an exited exec's id may be reused
      exec_order_.erase(std::find(exec_order_.begin(), exec_order_.end(), request.exec_id()));
    }
    // Reserve the id; a failed launch removes it again.
    execs_[request.exec_id()] = process;
    exec_order_.push_back(request.exec_id());
  }
  auto unreserve = [&] {
    std::lock_guard lock(mu_);
    auto it = execs_.find(request.exec_id());
    if (it != execs_.end() && it->second == process) {
      execs_.erase(it);
      exec_order_.erase(std::find(exec_order_.begin(), exec_order_.end(), request.exec_id()));
    }
  };
  ExecLaunch launch;
  launch.process = &process_spec;
  launch.terminal = terminal;
  launch.open_stdin = request.stdin();
  launch.namespaces = ExecNamespaces();
  if (spec_.personality) launch.personality = static_cast<long>(*spec_.personality);
  bool running = false;
  try {
    std::vector<UniqueFd> ns_fds;
    {
      // The init's pid must still be the init while its namespaces are opened.
      auto pin = reaper.PinPids();
      running = init_->started() && !init_->exit();
      if (running) {
        launch.init_pid = init_->pid();
        ns_fds = OpenNamespaces(launch.init_pid, launch.namespaces);
      }
    }
    if (running) {
      if (cgroup_) launch.cgroup_procs = cgroup_->OpenProcsFiles();
      launch.seccomp = seccomp_;
      LaunchExec(std::move(launch), std::move(ns_fds), process, reaper);
    }
  } catch (Error& e) {
    unreserve();
    throw e.AddContext("exec " + request.exec_id() + " in container " + id_);
  } catch (const std::exception& e) {
    unreserve();
    throw Error(ErrorCode::kInternal, "exec " + request.exec_id() + " in container " + id_ + ": " + e.what());
  }
  if (!running) {
    unreserve();
    throw Error(ErrorCode::kFailedPrecondition, "container " + id_ + " is not running");
  }
  {
    std::lock_guard lock(mu_);
    ForgetOldExecsLocked();
  }
  return process->pid();
}

std::shared_ptr<Process> Container::FindProcess(const std::string& exec_id) {
  if (exec_id.empty()) return init_;
  std::lock_guard lock(mu_);
  auto it = execs_.find(exec_id);
  if (it == execs_.end()) throw Error(ErrorCode::kNotFound, "exec " + exec_id + " not found in container " + id_);
  return it->second;
}

std::vector<pid_t> Container::Pids() {
  if (cgroup_) return cgroup_->Pids();
  std::vector<pid_t> pids;
  pid_t init_pid = init_->pid();
  if (init_->exit()) return pids;
  if (!spec_.HasNamespace("pid")) {
    // Only what the agent started is known.
    pids.push_back(init_pid);
    std::lock_guard lock(mu_);
    for (const auto& [id, process] : execs_)
      if (!process->exit()) pids.push_back(process->pid());
    return pids;
  }
  std::string ns = NamespaceId(init_pid, "pid");
  DIR* dir = opendir("/proc");
  if (!dir) return pids;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (!ns.empty() && NamespaceId(static_cast<pid_t>(pid), "pid") == ns) pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(dir);
  return pids;
}

void Container::Signal(const pb::SignalProcessRequest& request, Reaper& reaper) {
  int signal = static_cast<int>(request.signal());
  if (signal <= 0 || signal >= NSIG) throw Error(ErrorCode::kInvalidArgument, "signal " + std::to_string(signal) + " is invalid");
  if (!request.all()) {
    FindProcess(request.exec_id())->Signal(signal, reaper);
    return;
  }
  if (init_->exit()) throw Error(ErrorCode::kNotFound, "process " + id_ + " has exited");
  auto pin = reaper.PinPids();
  for (pid_t pid : Pids()) kill(pid, signal);
}

void Container::Stats(pb::StatsResponse* response) {
  if (!cgroup_) {
    response->set_pids_current(Pids().size());
    return;
  }
  CgroupStats stats = cgroup_->ReadStats();
  response->set_cpu_usage_ns(stats.cpu_usage_ns);
  response->set_cpu_user_ns(stats.cpu_user_ns);
  response->set_cpu_system_ns(stats.cpu_system_ns);
  response->set_memory_usage_bytes(stats.memory_usage_bytes);
  response->set_memory_limit_bytes(stats.memory_limit_bytes);
  response->set_memory_max_usage_bytes(stats.memory_max_usage_bytes);
  response->set_pids_current(stats.pids_current);
  response->set_pids_limit(stats.pids_limit);
}

void Container::ListProcesses(pb::ListProcessesResponse* response) {
  std::map<pid_t, std::string> exec_ids;
  {
    std::lock_guard lock(mu_);
    if (!init_->exit()) exec_ids[init_->pid()] = "";
    for (const auto& [id, process] : execs_)
      if (!process->exit()) exec_ids[process->pid()] = id;
  }
  auto pids = Pids();
  std::sort(pids.begin(), pids.end());
  for (pid_t pid : pids) {
    auto* info = response->add_processes();
    info->set_pid(static_cast<uint32_t>(pid));
    if (auto it = exec_ids.find(pid); it != exec_ids.end()) info->set_exec_id(it->second);
    info->set_command(ReadComm(pid));
  }
}

void Container::Destroy(bool force, Reaper& reaper) {
  if (init_->started() && !init_->exit() && !force)
    throw Error(ErrorCode::kFailedPrecondition,
                 "container " + id_ + " is running; kill it first or delete with force");
  std::vector<std::shared_ptr<Process>> processes{init_};
  {
    std::lock_guard lock(mu_);
    init_sync_.reset();  // a never-started init helper sees EOF and exits
    for (const auto& [id, process] : execs_) processes.push_back(process);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int round = 0;; ++round) {
    {
      auto pin = reaper.PinPids();
      for (const auto& process : processes)
        if (!process->exit() && process->pid() > 0) kill(process->pid(), SIGKILL);
    }
    if (cgroup_) cgroup_->KillAll(SIGKILL);
    bool all_exited = true;
    for (const auto& process : processes)
      all_exited = process->WaitExitFor(std::chrono::milliseconds(round == 0 ? 2000 : 200)) && all_exited;
    bool cgroup_empty = !cgroup_ || cgroup_->Pids().empty();
    if (all_exited && cgroup_empty) break;
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(ErrorCode::kDeadlineExceeded, "container " + id_ + ": processes did not exit after SIGKILL");
  }
  if (cgroup_) {
    // The kernel may need a moment after the last exit before rmdir works
    // (cgroup v1 has no event for it): retry soon, then less often, for
    // ~0.5 s in all. A fixed 10 ms pause put 10 ms on every Delete that
    // caught the moment (issue #13).
    auto pause = std::chrono::microseconds(500);
    for (int attempt = 0; attempt < 60 && !cgroup_->Remove(); ++attempt) {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(10000));
    }
    cgroup_.reset();
  }
  if (!hooks_.poststop.empty() && !poststop_ran_) {
    poststop_ran_ = true;
    try {
      RunHooks(hooks_.poststop, "poststop", HookState{id_, "stopped", 0, bundle_, &hooks_.annotations}, reaper);
    } catch (const std::exception& e) {
      spdlog::warn("event=hook_failed container={} error={}", id_, LogQuote(e.what()));
    }
  }
}

}  // namespace uvmshim::agent
