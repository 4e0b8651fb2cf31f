#include "guest-agent/container.h"

#include <dirent.h>
#include <signal.h>
#include <linux/nsfs.h>
#include <sched.h>
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
#include "guest-agent/spec_policy.h"

namespace uvmshim::agent {
namespace {

grpc::Status Error(grpc::StatusCode code, const std::string& message) { return grpc::Status(code, message); }

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
      throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT,
                        field + ": in a utility VM only /proc/<pid>/ns/" + file + " of a running container can be joined");
    UniqueFd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      int error = errno;
      throw LaunchError(error == ENOENT ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::INVALID_ARGUMENT,
                        field + ": " + std::strerror(error));
    }
    int type = ioctl(fd.get(), NS_GET_NSTYPE);
    if (type != CloneFlagOf(ns.type))
      throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, field + ": not a " + ns.type + " namespace");
    // Still one of ours once opened: the pid was not reused in between.
    if (options.container_namespace_paths_only && !ours())
      throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, field + ": the container ended");
    fds.push_back(std::move(fd));
  }
  return fds;
}

}  // namespace

std::shared_ptr<Container> Container::Create(const pb::CreateContainerRequest& request, Reaper& reaper,
                                             const ContainerOptions& options) {
  if (auto error = IdError("container id", request.container_id()); !error.empty())
    throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, error);
  OciSpec spec;
  try {
    spec = ParseOciSpec(request.spec_json());
    // Every field honoured or refused by name (spec_policy.h).
    for (const auto& warning : CheckSpecPolicy(request.spec_json(), PolicyEnvironment::Probe(options.in_utility_vm)))
      spdlog::warn("event=spec_field_ignored container={} field={}", request.container_id(), LogQuote(warning));
  } catch (const SpecTooLarge& e) {
    throw LaunchError(grpc::StatusCode::RESOURCE_EXHAUSTED, e.what());
  } catch (const SpecError& e) {
    throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, e.what());
  }
  std::string rootfs = request.rootfs_path().empty() ? spec.root_path : request.rootfs_path();
  if (rootfs.empty()) throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, "no rootfs: set rootfs_path or spec root.path");
  if (rootfs.front() != '/')
    throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, "rootfs " + rootfs + " is not an absolute path");
  struct stat st {};
  if (stat(rootfs.c_str(), &st) != 0) {
    int error = errno;
    throw LaunchError(error == ENOENT ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::INVALID_ARGUMENT,
                      "rootfs " + rootfs + ": " + std::strerror(error));
  }
  if (!S_ISDIR(st.st_mode)) throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, "rootfs " + rootfs + ": Not a directory");

  std::shared_ptr<const SeccompProgram> seccomp;
  if (spec.seccomp) {
    try {
      seccomp = CompileSeccompProfile(*spec.seccomp);
    } catch (const SpecError& e) {
      throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, e.what());
    }
  }

  std::vector<UniqueFd> namespace_fds = OpenNamespacePaths(spec, options);
  bool terminal = request.terminal() || spec.process.terminal;
  std::shared_ptr<Container> container(new Container(request.container_id(), std::move(spec)));
  container->seccomp_ = std::move(seccomp);
  container->in_utility_vm_ = options.in_utility_vm;
  if (!options.in_utility_vm) {
    try {
      container->hooks_ = ParseOciHooks(request.spec_json());
    } catch (const SpecError& e) {
      throw LaunchError(grpc::StatusCode::INVALID_ARGUMENT, e.what());
    }
    container->bundle_ = rootfs.substr(0, std::max<size_t>(rootfs.find_last_of('/'), 1));
  }
  std::string warning;
  if (!options.cgroup_parent.empty())  // "" = no cgroups at all
    container->cgroup_ = Cgroup::Create(options.cgroup_parent, container->id_, container->spec_.resources, &warning);
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
      throw LaunchError(grpc::StatusCode::FAILED_PRECONDITION,
                        "spec: linux.resources.devices cannot be enforced: " + device_error);
    if (container->cgroup_)
      spdlog::warn("event=device_rules_unavailable container={} reason={}", container->id_, LogQuote(device_error));
  }
  const OciResources& limits = container->spec_.resources;
  bool wants_limits = (limits.memory_limit && *limits.memory_limit > 0) || (limits.pids_limit && *limits.pids_limit > 0) ||
                      (limits.cpu_shares && *limits.cpu_shares > 0) || (limits.cpu_quota && *limits.cpu_quota > 0);
  if (wants_limits && (!container->cgroup_ || !warning.empty()))  // never run without the asked limits
    throw LaunchError(grpc::StatusCode::FAILED_PRECONDITION,
                      "spec: linux.resources cannot be applied: " +
                          (warning.empty() ? std::string("the agent runs without cgroups") : warning));

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
    container->init_->Signal(SIGKILL, reaper);
    container->init_->WaitExitFor(std::chrono::seconds(5));
    throw LaunchError(grpc::StatusCode::FAILED_PRECONDITION, e.what());
  }
  return container;
}

grpc::Status Container::Update(const std::string& resources_json) {
  OciResources resources;
  try {
    resources = ParseOciResources(resources_json);
  } catch (const SpecError& e) {
    return Error(grpc::StatusCode::INVALID_ARGUMENT, "update container " + id_ + ": " + e.what());
  }
  if (!cgroup_)
    return Error(grpc::StatusCode::FAILED_PRECONDITION, "update container " + id_ + ": it has no cgroup");
  std::string error;
  if (!cgroup_->Apply(resources, &error))
    return Error(grpc::StatusCode::INVALID_ARGUMENT, "update container " + id_ + ": " + error);
  spdlog::info("event=container_updated container={}", id_);
  return grpc::Status::OK;
}

bool Container::OomKilled() const { return cgroup_ && cgroup_->OomKills() > 0; }

grpc::Status Container::Start(pid_t* pid, Reaper& reaper) {
  UniqueFd sync;
  {
    std::lock_guard lock(mu_);
    if (starting_ || init_->started())
      return Error(grpc::StatusCode::FAILED_PRECONDITION, "container " + id_ + " was already started");
    if (init_->exit())
      return Error(grpc::StatusCode::FAILED_PRECONDITION, "container " + id_ + " has exited");
    starting_ = true;
    sync = std::move(init_sync_);
  }
  try {
    StartContainerInit(std::move(sync), *init_);
  } catch (const LaunchError& e) {
    return Error(e.code(), "start container " + id_ + ": " + e.what());
  }
  *pid = init_->pid();
  if (!hooks_.poststart.empty()) {
    try {
      RunHooks(hooks_.poststart, "poststart", HookState{id_, "running", *pid, bundle_, &hooks_.annotations}, reaper);
    } catch (const std::exception& e) {
      spdlog::warn("event=hook_failed container={} error={}", id_, LogQuote(e.what()));
    }
  }
  return grpc::Status::OK;
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

grpc::Status Container::Exec(const pb::ExecProcessRequest& request, Reaper& reaper, pid_t* pid) {
  if (request.exec_id().empty()) return Error(grpc::StatusCode::INVALID_ARGUMENT, "exec id is empty");
  if (auto error = IdError("exec id", request.exec_id()); !error.empty())
    return Error(grpc::StatusCode::INVALID_ARGUMENT, error);
  OciProcess process_spec;
  try {
    process_spec = ParseOciProcess(request.process_json());
    for (const auto& warning : CheckProcessPolicy(request.process_json(), PolicyEnvironment::Probe(in_utility_vm_)))
      spdlog::warn("event=spec_field_ignored container={} exec={} field={}", id_, request.exec_id(), LogQuote(warning));
  } catch (const SpecTooLarge& e) {
    return Error(grpc::StatusCode::RESOURCE_EXHAUSTED, e.what());
  } catch (const SpecError& e) {
    return Error(grpc::StatusCode::INVALID_ARGUMENT, e.what());
  }
  bool terminal = request.terminal() || process_spec.terminal;
  auto process = std::make_shared<Process>(id_ + "/" + request.exec_id(), request.exec_id(), terminal);
  {
    std::lock_guard lock(mu_);
    auto it = execs_.find(request.exec_id());
    if (it != execs_.end()) {
      if (!it->second->exit())
        return Error(grpc::StatusCode::ALREADY_EXISTS,
                     "exec " + request.exec_id() + " already exists in container " + id_);
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
  try {
    std::vector<UniqueFd> ns_fds;
    {
      // The init's pid must still be the init while its namespaces are opened.
      auto pin = reaper.PinPids();
      if (!init_->started() || init_->exit()) {
        unreserve();
        return Error(grpc::StatusCode::FAILED_PRECONDITION, "container " + id_ + " is not running");
      }
      launch.init_pid = init_->pid();
      ns_fds = OpenNamespaces(launch.init_pid, launch.namespaces);
    }
    if (cgroup_) launch.cgroup_procs = cgroup_->OpenProcsFiles();
    launch.seccomp = seccomp_;
    LaunchExec(std::move(launch), std::move(ns_fds), process, reaper);
  } catch (const LaunchError& e) {
    unreserve();
    return Error(e.code(), "exec " + request.exec_id() + " in container " + id_ + ": " + e.what());
  } catch (const std::exception& e) {
    unreserve();
    return Error(grpc::StatusCode::INTERNAL, "exec " + request.exec_id() + " in container " + id_ + ": " + e.what());
  }
  {
    std::lock_guard lock(mu_);
    ForgetOldExecsLocked();
  }
  *pid = process->pid();
  return grpc::Status::OK;
}

grpc::Status Container::FindProcess(const std::string& exec_id, std::shared_ptr<Process>* process) {
  if (exec_id.empty()) {
    *process = init_;
    return grpc::Status::OK;
  }
  std::lock_guard lock(mu_);
  auto it = execs_.find(exec_id);
  if (it == execs_.end())
    return Error(grpc::StatusCode::NOT_FOUND, "exec " + exec_id + " not found in container " + id_);
  *process = it->second;
  return grpc::Status::OK;
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

grpc::Status Container::Signal(const pb::SignalProcessRequest& request, Reaper& reaper) {
  int signal = static_cast<int>(request.signal());
  if (signal <= 0 || signal >= NSIG) return Error(grpc::StatusCode::INVALID_ARGUMENT, "signal " + std::to_string(signal) + " is invalid");
  if (!request.all()) {
    std::shared_ptr<Process> process;
    if (auto status = FindProcess(request.exec_id(), &process); !status.ok()) return status;
    return process->Signal(signal, reaper);
  }
  if (init_->exit()) return Error(grpc::StatusCode::NOT_FOUND, "process " + id_ + " has exited");
  auto pin = reaper.PinPids();
  for (pid_t pid : Pids()) kill(pid, signal);
  return grpc::Status::OK;
}

grpc::Status Container::Stats(pb::StatsResponse* response) {
  if (!cgroup_) {
    response->set_pids_current(Pids().size());
    return grpc::Status::OK;
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
  return grpc::Status::OK;
}

grpc::Status Container::ListProcesses(pb::ListProcessesResponse* response) {
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
  return grpc::Status::OK;
}

grpc::Status Container::Destroy(bool force, Reaper& reaper) {
  if (init_->started() && !init_->exit() && !force)
    return Error(grpc::StatusCode::FAILED_PRECONDITION,
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
      return Error(grpc::StatusCode::DEADLINE_EXCEEDED, "container " + id_ + ": processes did not exit after SIGKILL");
  }
  if (cgroup_) {
    // The kernel may need a moment after the last exit before rmdir works.
    for (int attempt = 0; attempt < 50 && !cgroup_->Remove(); ++attempt)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
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
  return grpc::Status::OK;
}

}  // namespace uvmshim::agent
