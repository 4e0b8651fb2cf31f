#include "shim/task_service.h"

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "containerd/cgroups/v1/metrics.pb.h"
#include "containerd/events/task.pb.h"
#include "containerd/runtimeoptions/v1/options.pb.h"
#include "container_mounts.h"
#include "paths.h"
#include "sandbox.h"
#include "sandbox_share.h"
#include "sandbox_config.h"
#include "ttrpc/typed.h"

namespace uvmshim::shim {
namespace fs = std::filesystem;
using ttrpc::Code;
using nlohmann::json;
namespace agentpb = ::uvmshim::agent::v1;

namespace {

constexpr const char* kTaskService = "containerd.task.v2.Task";

Status FromAgentError(const host::AgentError& e) {
  return Status(static_cast<Code>(e.code()), e.what());
}

std::int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SetTimestamp(google::protobuf::Timestamp* ts, std::int64_t nanos) {
  ts->set_seconds(nanos / 1'000'000'000);
  ts->set_nanos(static_cast<std::int32_t>(nanos % 1'000'000'000));
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(fmt::format("{}: cannot be read", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The runtime configuration for a Create: runtime options (ctr
// --runtime-config-path, CRI options.ConfigPath), else $UVMSHIM_CONFIG, else
// /etc/uvmshim/config.toml when present, else defaults.
host::SandboxConfig ResolveConfig(const taskpb::CreateTaskRequest& request) {
  if (request.has_options() && !request.options().type_url().empty()) {
    const auto& any = request.options();
    if (!any.type_url().ends_with("runtimeoptions.v1.Options"))
      throw std::invalid_argument(fmt::format(
          "runtime options of type \"{}\" are not supported (expected runtimeoptions.v1.Options "
          "with ConfigPath)", any.type_url()));
    runtimeoptions::v1::Options options;
    if (!options.ParseFromString(any.value()))
      throw std::invalid_argument("runtime options: cannot decode runtimeoptions.v1.Options");
    if (!options.config_path().empty()) return host::LoadSandboxConfig(options.config_path());
  }
  if (const char* path = std::getenv("UVMSHIM_CONFIG"); path && *path)
    return host::LoadSandboxConfig(path);
  if (fs::exists("/etc/uvmshim/config.toml")) return host::LoadSandboxConfig("/etc/uvmshim/config.toml");
  return {};
}


}  // namespace

TaskService::TaskService(Options options, EventPublisher& events)
    : options_(std::move(options)), events_(events) {}

TaskService::~TaskService() {
  std::vector<Task*> tasks;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, task] : tasks_) tasks.push_back(task.get());
  }
  for (Task* task : tasks) TearDown(*task);
}

void TaskService::RegisterWith(ttrpc::Server& server) {
  auto wrap = [this]<class Req, class Resp>(ttrpc::Server& s, const char* method,
                                            Status (TaskService::*fn)(const Req&, Resp&)) {
    ttrpc::RegisterTyped<Req, Resp>(s, kTaskService, method,
                                    [this, fn](const ttrpc::RequestContext&, const Req& req, Resp& resp) {
                                      return (this->*fn)(req, resp);
                                    });
  };
  auto wrap_empty = [this]<class Req>(ttrpc::Server& s, const char* method,
                                      Status (TaskService::*fn)(const Req&)) {
    ttrpc::RegisterTyped<Req, google::protobuf::Empty>(
        s, kTaskService, method,
        [this, fn](const ttrpc::RequestContext&, const Req& req, google::protobuf::Empty&) {
          return (this->*fn)(req);
        });
  };
  wrap(server, "Create", &TaskService::Create);
  wrap(server, "Start", &TaskService::Start);
  wrap(server, "Delete", &TaskService::Delete);
  wrap(server, "State", &TaskService::State);
  wrap(server, "Pids", &TaskService::Pids);
  wrap(server, "Stats", &TaskService::Stats);
  wrap(server, "Connect", &TaskService::Connect);
  wrap_empty(server, "Exec", &TaskService::Exec);
  wrap_empty(server, "Kill", &TaskService::Kill);
  wrap_empty(server, "ResizePty", &TaskService::ResizePty);
  wrap_empty(server, "CloseIO", &TaskService::CloseIO);
  wrap_empty(server, "Shutdown", &TaskService::Shutdown);
  ttrpc::RegisterTyped<taskpb::WaitRequest, taskpb::WaitResponse>(
      server, kTaskService, "Wait",
      [this](const ttrpc::RequestContext& ctx, const taskpb::WaitRequest& req,
             taskpb::WaitResponse& resp) { return Wait(ctx, req, resp); });
}

TaskService::Task* TaskService::FindTask(const std::string& id, Status& status) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) {
    status = Status(Code::kNotFound, fmt::format("task {}: not found", id));
    return nullptr;
  }
  if (!it->second->agent) {
    status = Status(Code::kFailedPrecondition, fmt::format("task {}: still being created", id));
    return nullptr;
  }
  return it->second.get();
}

TaskService::Process* TaskService::FindProcess(Task& task, const std::string& exec_id,
                                               Status& status) {
  auto it = task.processes.find(exec_id);
  if (it == task.processes.end()) {
    status = Status(Code::kNotFound, fmt::format("process {} of task {}: not found", exec_id, task.id));
    return nullptr;
  }
  return it->second.get();
}

void TaskService::SaveState(Task& task) {
  try {
    host::WriteState(task.state_dir, task.state);
  } catch (const std::exception& e) {
    spdlog::warn("task {}: saving state: {}", task.id, e.what());
  }
}

Status TaskService::Create(const taskpb::CreateTaskRequest& request,
                           taskpb::CreateTaskResponse& response) {
  const std::string& id = request.id();
  if (!host::IsValidId(id))
    return Status(Code::kInvalidArgument, fmt::format("task id \"{}\" is not valid", id));
  {
    std::lock_guard lock(mutex_);
    if (tasks_.contains(id)) return Status(Code::kAlreadyExists, fmt::format("task {}: already exists", id));
    tasks_[id] = std::make_unique<Task>();  // reserved while it boots
  }
  auto task = std::make_unique<Task>();
  task->id = id;
  task->bundle = request.bundle();
  task->state_dir = host::StateDir(options_.ns, id);
  auto fail = [&](Code code, const std::string& message) {
    spdlog::error("create {}: {}", id, message);
    if (task->agent) {
      try {
        task->agent->DeleteContainer(id, true);
      } catch (...) {
      }
    }
    if (task->host) {
      task->host->Kill();
      task->host->ReleaseContainer(id);
      task->host.reset();  // unmounts the sandbox share before its dir goes
    }
    task->rootfs.Unmount();
    std::error_code ignored;
    host::RemoveStateDir(task->state_dir);
    fs::remove(task->state_dir.parent_path(), ignored);  // the namespace dir, once empty
    std::lock_guard lock(mutex_);
    tasks_.erase(id);
    return Status(code, message);
  };
  try {
    const fs::path bundle = request.bundle();
    std::string spec_text = ReadFile(bundle / "config.json");
    json spec;
    try {
      spec = json::parse(spec_text);
    } catch (const json::exception& e) {
      return fail(Code::kInvalidArgument, fmt::format("{}/config.json: {}", bundle.string(), e.what()));
    }
    if (!spec.is_object() || !spec.contains("process"))
      return fail(Code::kInvalidArgument,
                  fmt::format("{}/config.json: not an OCI spec (no \"process\")", bundle.string()));
    host::SandboxConfig config = ResolveConfig(request);
    std::map<std::string, std::string> annotations;
    if (spec.contains("annotations") && spec["annotations"].is_object())
      for (auto& [k, v] : spec["annotations"].items())
        if (v.is_string()) annotations[k] = v.get<std::string>();
    host::ApplyAnnotations(config, annotations);
    // Bad bind mounts fail here, before a sandbox (maybe a VM) is started for nothing.
    host::BindMountsOf(spec, config.isolation == host::Isolation::kHyperv);

    fs::path rootfs = bundle / "rootfs";
    if (request.rootfs_size() > 0) {
      std::vector<MountSpec> mounts;
      for (const auto& m : request.rootfs())
        mounts.push_back({m.type(), m.source(), {m.options().begin(), m.options().end()}});
      fs::create_directories(rootfs);
      task->rootfs = RootfsMount(mounts, rootfs);
    } else if (spec.contains("root") && spec["root"].contains("path")) {
      fs::path root = spec["root"]["path"].get<std::string>();
      rootfs = root.is_absolute() ? root : bundle / root;
    }
    if (!fs::is_directory(rootfs))
      return fail(Code::kInvalidArgument, fmt::format("rootfs {}: not a directory", rootfs.string()));

    fs::create_directories(task->state_dir);
    fs::permissions(task->state_dir, fs::perms::owner_all);
    spdlog::info("create {}: isolation={} bundle={}", id, host::ToString(config.isolation),
                 bundle.string());
    task->host = host::StartAgentHost(
        {id, config, task->state_dir, rootfs, host::SandboxCgroupParent(options_.ns, id)});
    auto agent = std::make_unique<host::AgentClient>(task->host->channel());

    const host::GuestContainer guest = task->host->PrepareContainer(id, rootfs, spec_text);
    agentpb::CreateContainerRequest create;
    create.set_container_id(id);
    create.set_spec_json(guest.spec_json);
    create.set_rootfs_path(guest.rootfs);
    create.set_terminal(request.terminal());
    create.set_stdin(!request.stdin().empty());
    const std::uint32_t pid = agent->CreateContainer(create);
    task->agent = std::move(agent);

    auto init = std::make_unique<Process>();
    init->pid = pid;
    init->stdio = {request.stdin(), request.stdout(), request.stderr(), request.terminal()};
    init->files = std::make_unique<StdioFiles>(init->stdio, id, options_.ns);
    StartRelay(*task, *init);
    task->processes[""] = std::move(init);

    task->state = {id, options_.ns, task->bundle, host::ToString(config.isolation),
                   options_.shim_address, task->host->debug_target(),
                   task->host->console_log().string(), "created", ::getpid(), task->host->pid(),
                   pid, std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count()};
    SaveState(*task);
    response.set_pid(pid);

    containerd::events::TaskCreate event;
    event.set_container_id(id);
    event.set_bundle(task->bundle);
    *event.mutable_rootfs() = request.rootfs();
    event.mutable_io()->set_stdin(request.stdin());
    event.mutable_io()->set_stdout(request.stdout());
    event.mutable_io()->set_stderr(request.stderr());
    event.mutable_io()->set_terminal(request.terminal());
    event.set_checkpoint(request.checkpoint());
    event.set_pid(pid);
    events_.Publish("/tasks/create", event);
  } catch (const host::AgentError& e) {
    return fail(static_cast<Code>(e.code()), e.what());
  } catch (const std::invalid_argument& e) {
    return fail(Code::kInvalidArgument, e.what());
  } catch (const std::exception& e) {
    return fail(Code::kFailedPrecondition, e.what());
  }
  std::lock_guard lock(mutex_);
  tasks_[id] = std::move(task);
  return Status::Ok();
}

void TaskService::StartRelay(Task& task, Process& process) {
  host::StdioFds fds{process.files->stdin_fd(), process.files->stdout_fd(),
                     process.files->stderr_fd()};
  process.relay = std::make_unique<host::StdioRelay>(*task.agent, task.id, process.exec_id, fds,
                                                     process.stdio.terminal);
  process.relay->Start();
  if (process.stdin_closed) process.relay->FinishStdin();
}

Status TaskService::Start(const taskpb::StartRequest& request, taskpb::StartResponse& response) {
  std::unique_lock lock(mutex_);
  Status status;
  Task* task = FindTask(request.id(), status);
  if (!task) return status;
  Process* process = FindProcess(*task, request.exec_id(), status);
  if (!process) return status;
  if (process->status != ProcessStatus::kCreated)
    return Status(Code::kFailedPrecondition,
                  fmt::format("process {} of task {}: already started", request.exec_id(), task->id));
  try {
    if (request.exec_id().empty()) {
      process->pid = task->agent->StartContainer(task->id);
      task->state.status = "running";
      SaveState(*task);
      containerd::events::TaskStart event;
      event.set_container_id(task->id);
      event.set_pid(process->pid);
      events_.Publish("/tasks/start", event);
    } else {
      agentpb::ExecProcessRequest exec;
      exec.set_container_id(task->id);
      exec.set_exec_id(process->exec_id);
      exec.set_process_json(process->process_json);
      exec.set_terminal(process->stdio.terminal);
      exec.set_stdin(!process->stdio.stdin_path.empty());
      process->pid = task->agent->ExecProcess(exec);
      StartRelay(*task, *process);
      containerd::events::TaskExecStarted event;
      event.set_container_id(task->id);
      event.set_exec_id(process->exec_id);
      event.set_pid(process->pid);
      events_.Publish("/tasks/exec-started", event);
    }
  } catch (const host::AgentError& e) {
    return FromAgentError(e);
  }
  process->status = ProcessStatus::kRunning;
  process->waiter = std::thread([this, task, process] { WatchExit(task, process); });
  response.set_pid(process->pid);
  return Status::Ok();
}

// Every byte the process wrote reaches its reader before the exit is reported.
void TaskService::WatchExit(Task* task, Process* process) {
  process->relay->WaitOutputDone();
  spdlog::debug("task {} process \"{}\": output done", task->id, process->exec_id);
  std::uint32_t exit_status = 0;
  std::int64_t exited_at = 0;
  try {
    auto exit = task->agent->WaitProcess(task->id, process->exec_id);
    exit_status = exit.exit_status;
    exited_at = exit.exited_at_unix_nano;
  } catch (const host::AgentError& e) {
    // The agent is gone (VM killed, agent crashed): the process died with it.
    auto why = task->host->unexpected_exit();
    spdlog::error("task {} process \"{}\": {}{}", task->id, process->exec_id, e.what(),
                  why ? " (" + *why + ")" : "");
    exit_status = 128 + 9;
    exited_at = NowNanos();
  }
  process->relay->StopStdin();
  process->files->CloseOutputs();
  {
    std::lock_guard lock(mutex_);
    process->status = ProcessStatus::kStopped;
    process->exit_status = exit_status;
    process->exited_at_ns = exited_at;
    if (process->exec_id.empty()) {
      task->state.status = "stopped";
      SaveState(*task);
    }
  }
  exited_.notify_all();
  containerd::events::TaskExit event;
  event.set_container_id(task->id);
  event.set_id(process->exec_id.empty() ? task->id : process->exec_id);
  event.set_pid(process->pid);
  event.set_exit_status(exit_status);
  SetTimestamp(event.mutable_exited_at(), exited_at);
  events_.Publish("/tasks/exit", event);
}

Status TaskService::Wait(const ttrpc::RequestContext& ctx, const taskpb::WaitRequest& request,
                         taskpb::WaitResponse& response) {
  std::unique_lock lock(mutex_);
  Status status;
  Task* task = FindTask(request.id(), status);
  if (!task) return status;
  Process* process = FindProcess(*task, request.exec_id(), status);
  if (!process) return status;
  if (!exited_.wait(lock, ctx.stop, [&] { return process->status == ProcessStatus::kStopped; }))
    return Status(Code::kCanceled, "wait canceled: the client went away");
  response.set_exit_status(process->exit_status);
  SetTimestamp(response.mutable_exited_at(), process->exited_at_ns);
  return Status::Ok();
}

void TaskService::TearDown(Task& task) {
  for (auto& [exec_id, process] : task.processes) {
    if (process->status == ProcessStatus::kRunning && task.agent) {
      try {
        task.agent->SignalProcess(task.id, exec_id, 9, exec_id.empty());
      } catch (...) {
      }
    }
    if (process->waiter.joinable()) process->waiter.join();
    process->relay.reset();
  }
  if (task.agent) {
    try {
      task.agent->DeleteContainer(task.id, true);
      task.agent->Shutdown(std::chrono::seconds(5));
    } catch (const host::AgentError& e) {
      spdlog::debug("task {}: agent teardown: {}", task.id, e.what());
    }
  }
  spdlog::info("task {}: agent asked to shut down", task.id);
  if (task.host) {
    task.host->WaitEnded(std::chrono::seconds(10));
    task.host->ReleaseContainer(task.id);
    task.host.reset();  // unmounts the sandbox share before its dir goes
  }
  spdlog::info("task {}: sandbox ended", task.id);
  task.rootfs.Unmount();
  std::error_code ignored;
  host::RemoveStateDir(task.state_dir);
  fs::remove(task.state_dir.parent_path(), ignored);  // the namespace dir, once empty
}

Status TaskService::Delete(const taskpb::DeleteRequest& request, taskpb::DeleteResponse& response) {
  std::unique_lock lock(mutex_);
  Status status;
  Task* task = FindTask(request.id(), status);
  if (!task) return status;
  Process* process = FindProcess(*task, request.exec_id(), status);
  if (!process) return status;
  if (process->status == ProcessStatus::kRunning)
    return Status(Code::kFailedPrecondition,
                  fmt::format("process {} of task {} is still running", request.exec_id(), task->id));
  response.set_pid(process->pid);
  response.set_exit_status(process->exit_status);
  SetTimestamp(response.mutable_exited_at(), process->exited_at_ns ? process->exited_at_ns : NowNanos());
  if (!request.exec_id().empty()) {
    if (process->waiter.joinable()) process->waiter.join();
    task->processes.erase(request.exec_id());
    return Status::Ok();
  }
  std::unique_ptr<Task> owned = std::move(tasks_[request.id()]);
  tasks_.erase(request.id());
  lock.unlock();
  TearDown(*owned);
  containerd::events::TaskDelete event;
  event.set_container_id(owned->id);
  event.set_pid(response.pid());
  event.set_exit_status(response.exit_status());
  *event.mutable_exited_at() = response.exited_at();
  events_.Publish("/tasks/delete", event);
  return Status::Ok();
}

Status TaskService::Exec(const taskpb::ExecProcessRequest& request) {
  std::lock_guard lock(mutex_);
  Status status;
  Task* task = FindTask(request.id(), status);
  if (!task) return status;
  if (!host::IsValidId(request.exec_id()))
    return Status(Code::kInvalidArgument, fmt::format("exec id \"{}\" is not valid", request.exec_id()));
  if (task->processes.contains(request.exec_id()))
    return Status(Code::kAlreadyExists,
                  fmt::format("exec {} of task {}: already exists", request.exec_id(), task->id));
  if (task->processes[""]->status != ProcessStatus::kRunning) {
    task->processes.erase(request.exec_id());
    return Status(Code::kFailedPrecondition, fmt::format("task {} is not running", task->id));
  }
  auto process = std::make_unique<Process>();
  process->exec_id = request.exec_id();
  process->process_json = request.spec().value();
  process->stdio = {request.stdin(), request.stdout(), request.stderr(), request.terminal()};
  try {
    process->files = std::make_unique<StdioFiles>(process->stdio, task->id, options_.ns);
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, e.what());
  }
  task->processes[request.exec_id()] = std::move(process);
  containerd::events::TaskExecAdded event;
  event.set_container_id(task->id);
  event.set_exec_id(request.exec_id());
  events_.Publish("/tasks/exec-added", event);
  return Status::Ok();
}

Status TaskService::State(const taskpb::StateRequest& request, taskpb::StateResponse& response) {
  std::lock_guard lock(mutex_);
  Status status;
  Task* task = FindTask(request.id(), status);
  if (!task) return status;
  Process* process = FindProcess(*task, request.exec_id(), status);
  if (!process) return status;
  response.set_id(request.exec_id().empty() ? task->id : request.exec_id());
  response.set_exec_id(request.exec_id());
  response.set_bundle(task->bundle);
  response.set_pid(process->pid);
  response.set_status(process->status == ProcessStatus::kCreated   ? containerd::v1::types::CREATED
                      : process->status == ProcessStatus::kRunning ? containerd::v1::types::RUNNING
                                                                   : containerd::v1::types::STOPPED);
  response.set_stdin(process->stdio.stdin_path);
  response.set_stdout(process->stdio.stdout_path);
  response.set_stderr(process->stdio.stderr_path);
  response.set_terminal(process->stdio.terminal);
  response.set_exit_status(process->exit_status);
  if (process->exited_at_ns) SetTimestamp(response.mutable_exited_at(), process->exited_at_ns);
  return ttrpc::Status::Ok();
}

// Runs `call` against the task's agent outside the service lock (agent calls
// may take a while); missing tasks and agent errors become statuses.
template <class Call>
Status TaskService::WithAgent(const std::string& id, Call&& call) {
  std::unique_lock lock(mutex_);
  Status status;
  Task* task = FindTask(id, status);
  if (!task) return status;
  host::AgentClient* agent = task->agent.get();
  lock.unlock();
  try {
    call(*agent);
  } catch (const host::AgentError& e) {
    return FromAgentError(e);
  }
  return Status::Ok();
}

Status TaskService::Kill(const taskpb::KillRequest& request) {
  {
    std::lock_guard lock(mutex_);
    Status status;
    Task* task = FindTask(request.id(), status);
    if (!task) return status;
    Process* process = FindProcess(*task, request.exec_id(), status);
    if (!process) return status;
    if (process->status == ProcessStatus::kStopped)
      return Status(Code::kNotFound, fmt::format("process {} of task {}: already finished",
                                                 request.exec_id(), task->id));
  }
  return WithAgent(request.id(), [&](host::AgentClient& agent) {
    agent.SignalProcess(request.id(), request.exec_id(), request.signal(), request.all());
  });
}

Status TaskService::Pids(const taskpb::PidsRequest& request, taskpb::PidsResponse& response) {
  return WithAgent(request.id(), [&](host::AgentClient& agent) {
    const auto listed = agent.ListProcesses(request.id());
    for (const auto& p : listed.processes()) response.add_processes()->set_pid(p.pid());
  });
}

Status TaskService::ResizePty(const taskpb::ResizePtyRequest& request) {
  return WithAgent(request.id(), [&](host::AgentClient& agent) {
    agent.ResizePty(request.id(), request.exec_id(), request.width(), request.height());
  });
}

Status TaskService::CloseIO(const taskpb::CloseIORequest& request) {
  std::lock_guard lock(mutex_);
  Status status;
  Task* task = FindTask(request.id(), status);
  if (!task) return status;
  Process* process = FindProcess(*task, request.exec_id(), status);
  if (!process) return status;
  if (request.stdin() && process->relay) process->relay->FinishStdin();
  if (request.stdin() && !process->relay) process->stdin_closed = true;  // applied by StartRelay
  return Status::Ok();
}

Status TaskService::Stats(const taskpb::StatsRequest& request, taskpb::StatsResponse& response) {
  return WithAgent(request.id(), [&](host::AgentClient& agent) {
    auto stats = agent.Stats(request.id());
    io::containerd::cgroups::v1::Metrics metrics;
    metrics.mutable_pids()->set_current(stats.pids_current());
    metrics.mutable_pids()->set_limit(stats.pids_limit());
    auto* cpu = metrics.mutable_cpu()->mutable_usage();
    cpu->set_total(stats.cpu_usage_ns());
    cpu->set_user(stats.cpu_user_ns());
    cpu->set_kernel(stats.cpu_system_ns());
    auto* memory = metrics.mutable_memory()->mutable_usage();
    memory->set_usage(stats.memory_usage_bytes());
    memory->set_limit(stats.memory_limit_bytes());
    memory->set_max(stats.memory_max_usage_bytes());
    response.mutable_stats()->set_type_url("io.containerd.cgroups.v1.Metrics");
    response.mutable_stats()->set_value(metrics.SerializeAsString());
  });
}

Status TaskService::Connect(const taskpb::ConnectRequest& request, taskpb::ConnectResponse& response) {
  std::lock_guard lock(mutex_);
  response.set_shim_pid(static_cast<std::uint32_t>(::getpid()));
  response.set_version("uvmshim");
  if (auto it = tasks_.find(request.id()); it != tasks_.end() && it->second->agent)
    response.set_task_pid(it->second->processes[""]->pid);
  return Status::Ok();
}

Status TaskService::Shutdown(const taskpb::ShutdownRequest& request) {
  std::lock_guard lock(mutex_);
  if (!tasks_.empty() && !request.now()) return Status::Ok();
  if (options_.request_exit) options_.request_exit();
  return Status::Ok();
}

}  // namespace uvmshim::shim
