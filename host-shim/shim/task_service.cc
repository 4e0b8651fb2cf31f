#include "shim/task_service.h"

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>

#include "common/ids.h"
#include "shim/agent_status.h"
#include "containerd/events/task.pb.h"
#include "container_mounts.h"
#include "paths.h"
#include "shim/create_request.h"
#include "shim/pod_spec.h"
#include "sandbox_config.h"
#include "ttrpc/typed.h"

namespace uvmshim::shim {
namespace fs = std::filesystem;
using ttrpc::Code;
using nlohmann::json;
namespace agentpb = ::uvmshim::agent::v1;

namespace {

constexpr const char* kTaskService = "containerd.task.v2.Task";

// Per-call durations for start-time breakdowns (tests/bench/pool_breakdown).
void LogCallTime(const char* method, std::chrono::steady_clock::time_point started) {
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - started;
  spdlog::debug("event=ttrpc_call method={} ms={:.1f}", method, took.count());
}

}  // namespace

TaskService::TaskService(Options options, EventPublisher& events)
    : options_(std::move(options)), events_(events) {}

TaskService::~TaskService() {
  std::map<std::string, std::unique_ptr<Task>> tasks;
  {
    std::lock_guard lock(mutex_);
    tasks.swap(tasks_);
    sandboxes_.clear();
  }
  // App containers first, the sandbox tasks (which stop their sandboxes) last.
  for (auto it = tasks.begin(); it != tasks.end();)
    it = it->second && !it->second->owns_sandbox() ? tasks.erase(it) : std::next(it);
  tasks.clear();
}

void TaskService::RegisterWith(ttrpc::Server& server) {
  auto wrap = [this]<class Req, class Resp>(ttrpc::Server& s, const char* method,
                                            Status (TaskService::*fn)(const Req&, Resp&)) {
    ttrpc::RegisterTyped<Req, Resp>(s, kTaskService, method,
                                    [this, fn, method](const ttrpc::RequestContext&, const Req& req, Resp& resp) {
                                      const auto started = std::chrono::steady_clock::now();
                                      auto status = (this->*fn)(req, resp);
                                      LogCallTime(method, started);
                                      return status;
                                    });
  };
  auto wrap_empty = [this]<class Req>(ttrpc::Server& s, const char* method,
                                      Status (TaskService::*fn)(const Req&)) {
    ttrpc::RegisterTyped<Req, google::protobuf::Empty>(
        s, kTaskService, method,
        [this, fn, method](const ttrpc::RequestContext&, const Req& req, google::protobuf::Empty&) {
          const auto started = std::chrono::steady_clock::now();
          auto status = (this->*fn)(req);
          LogCallTime(method, started);
          return status;
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
  wrap_empty(server, "Update", &TaskService::Update);
  ttrpc::RegisterTyped<taskpb::WaitRequest, taskpb::WaitResponse>(
      server, kTaskService, "Wait",
      [this](const ttrpc::RequestContext& ctx, const taskpb::WaitRequest& req,
             taskpb::WaitResponse& resp) { return Wait(ctx, req, resp); });
}

Task* TaskService::FindTask(const std::string& id, Status& status) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) {
    status = Status(Code::kNotFound, fmt::format("task {}: not found", id));
    return nullptr;
  }
  if (!it->second) {
    status = Status(Code::kFailedPrecondition, fmt::format("task {}: still being created", id));
    return nullptr;
  }
  return it->second.get();
}

Process* TaskService::FindProcess(Task& task, const std::string& exec_id, Status& status) {
  auto it = task.processes.find(exec_id);
  if (it == task.processes.end()) {
    status = Status(Code::kNotFound, fmt::format("process {} of task {}: not found", exec_id, task.id));
    return nullptr;
  }
  return it->second.get();
}

Process* TaskService::FindProcess(const std::string& task_id, const std::string& exec_id, Task** task,
                                  Status& status) {
  *task = FindTask(task_id, status);
  return *task ? FindProcess(**task, exec_id, status) : nullptr;
}

std::shared_ptr<Sandbox> TaskService::RunningSandbox(const std::string& sandbox_id) {
  std::lock_guard lock(mutex_);
  auto it = sandboxes_.find(sandbox_id);
  if (it == sandboxes_.end() || it->second->stopped())
    throw std::logic_error(fmt::format("pod sandbox {} is not running in this shim", sandbox_id));
  return it->second;
}

bool TaskService::IsRunningTaskOf(const std::shared_ptr<Sandbox>& sandbox, std::uint32_t pid) {
  std::lock_guard lock(mutex_);
  for (const auto& [task_id, other] : tasks_) {
    if (!other || other->sandbox != sandbox || !other->processes.contains("")) continue;
    const auto& init = *other->processes.at("");
    if (init.pid == pid && init.status == ProcessStatus::kRunning) return true;
  }
  return false;
}

std::unique_ptr<Task> TaskService::CreateTask(const taskpb::CreateTaskRequest& request, std::uint32_t& pid) {
  const std::string& id = request.id();
  const fs::path bundle = request.bundle();
  json spec = ReadBundleSpec(bundle);
  const auto annotations = AnnotationsOf(spec);
  const PodRole role = PodRoleOf(id, annotations);

  // Everything that can be checked is checked before a new sandbox boots.
  std::shared_ptr<Sandbox> sandbox;
  if (role.kind == PodRole::Kind::kContainer) sandbox = RunningSandbox(role.sandbox_id);
  host::SandboxConfig config = sandbox ? sandbox->config() : SandboxConfigFor(request, annotations);
  const auto pod_netns = ResolveNamespacePaths(
      spec, config.isolation, [&](std::uint32_t task_pid) { return sandbox && IsRunningTaskOf(sandbox, task_pid); },
      /*starts_sandbox=*/!sandbox);
  // Bad bind mounts fail here, before a sandbox (maybe a VM) is started for nothing.
  host::BindMountsOf(spec, config.isolation == host::Isolation::kHyperv);
  RootfsMount rootfs_mount;
  const fs::path rootfs = MountRootfs(request, spec, rootfs_mount);
  const bool new_sandbox = !sandbox;
  if (new_sandbox) sandbox = Sandbox::Start({id, options_.ns, std::move(config), pod_netns});
  auto task = std::make_unique<Task>(id, request.bundle(), sandbox);
  task->rootfs = std::move(rootfs_mount);

  spdlog::info("create {}: sandbox={} isolation={} bundle={}", id, sandbox->id(),
               host::ToString(sandbox->isolation()), bundle.string());
  auto guest = sandbox->PrepareContainer(id, rootfs, spec.dump());
  task->prepared = true;
  const auto state_of = [&](const char* status, std::uint32_t task_pid) {
    return host::SandboxState{id, options_.ns, task->bundle, host::ToString(sandbox->isolation()),
                              options_.shim_address, sandbox->debug_target(), sandbox->console_log(), status,
                              ::getpid(), sandbox->host_pid(), task_pid,
                              std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch()).count(),
                              sandbox->id()};
  };
  agentpb::CreateContainerRequest create;
  create.set_container_id(id);
  create.set_spec_json(guest.spec_json);
  create.set_rootfs_path(guest.rootfs);
  create.set_terminal(request.terminal());
  create.set_stdin(!request.stdin().empty());
  if (new_sandbox && sandbox->pod_network()) *create.mutable_network() = *sandbox->pod_network();
  // The state is on disk before the container exists (`shim delete` cleans up
  // from it): a full disk fails the create here, naming it, with nothing to undo
  // in the agent (a silent failure used to leave an empty state.json).
  host::WriteState(task->state_dir(), state_of("creating", 0));
  const auto create_started = std::chrono::steady_clock::now();
  pid = task->agent->CreateContainer(create);
  LogCallTime("agent.CreateContainer", create_started);
  task->created_in_agent = true;

  auto init = std::make_unique<Process>();
  init->pid = pid;
  init->stdio = {request.stdin(), request.stdout(), request.stderr(), request.terminal()};
  init->files = std::make_unique<StdioFiles>(init->stdio, id, options_.ns);
  init->StartRelay(*task->agent, id);
  task->processes[""] = std::move(init);

  task->state = state_of("created", pid);
  task->SaveState();
  return task;
}

Status TaskService::Create(const taskpb::CreateTaskRequest& request,
                           taskpb::CreateTaskResponse& response) {
  const std::string& id = request.id();
  if (!IsValidId(id))
    return Status(Code::kInvalidArgument, fmt::format("task id \"{}\" is not valid", id));
  {
    std::lock_guard lock(mutex_);
    if (tasks_.contains(id)) return Status(Code::kAlreadyExists, fmt::format("task {}: already exists", id));
    tasks_[id] = nullptr;  // reserved while it is created
  }
  auto fail = [&](Code code, const std::string& message) {
    spdlog::error("create {}: {}", id, message);
    std::lock_guard lock(mutex_);
    tasks_.erase(id);
    return Status(code, message);
  };
  std::unique_ptr<Task> task;
  std::uint32_t pid = 0;
  try {
    task = CreateTask(request, pid);
  } catch (const host::AgentError& e) {
    return fail(TtrpcCodeFor(e.code()), e.what());
  } catch (const std::invalid_argument& e) {
    return fail(Code::kInvalidArgument, e.what());
  } catch (const std::exception& e) {
    return fail(Code::kFailedPrecondition, e.what());
  }
  response.set_pid(pid);
  const auto event = CreateEventOf(request, pid);
  {
    std::lock_guard lock(mutex_);
    if (task->owns_sandbox()) sandboxes_[id] = task->sandbox;
    tasks_[id] = std::move(task);
  }
  events_.Publish("/tasks/create", event);
  return Status::Ok();
}

// Every byte the process wrote reaches its reader before the exit is reported.
// The WaitProcess goes out now, not after the output: its round trip to the
// guest (slow under TCG) then overlaps the output's end instead of following it.
void TaskService::WatchExit(Task* task, Process* process) {
  auto waited = std::async(std::launch::async, [agent = task->agent, id = task->id, exec_id = process->exec_id] {
    return agent->WaitProcess(id, exec_id);
  });
  process->relay->WaitOutputDone();
  spdlog::debug("task {} process \"{}\": output done", task->id, process->exec_id);
  std::uint32_t exit_status = 0;
  std::int64_t exited_at = 0;
  bool agent_lost = false;
  try {
    auto exit = waited.get();
    exit_status = exit.exit_status;
    exited_at = exit.exited_at_unix_nano;
    if (exit.oom_killed) {
      // containerd (and CRI's OOMKilled reason) expects it before the exit.
      containerd::events::TaskOOM oom;
      oom.set_container_id(task->id);
      events_.Publish("/tasks/oom", oom);
    }
  } catch (const host::AgentError& e) {
    // The agent is gone (VM killed, agent crashed, sandbox stopped): the process died with it.
    auto why = task->sandbox->unexpected_exit();
    spdlog::error("task {} process \"{}\": {}{}", task->id, process->exec_id, e.what(),
                  why ? " (" + *why + ")" : "");
    exit_status = 128 + 9;
    exited_at = NowNanos();
    agent_lost = true;
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
      task->SaveState();
    }
  }
  exited_.notify_all();
  containerd::events::TaskExit event;
  event.set_container_id(task->id);
  event.set_id(process->exec_id.empty() ? task->id : process->exec_id);
  event.set_pid(process->pid);
  event.set_exit_status(exit_status);
  SetTimestamp(event.mutable_exited_at(), exited_at);
  spdlog::debug("event=exit_published task={} exec=\"{}\"", task->id, process->exec_id);
  events_.Publish("/tasks/exit", event);
  // A VM that died takes its pod link down now, not when the pod is stopped.
  if (agent_lost) task->sandbox->ReleaseLinkIfHostEnded(std::chrono::seconds(5));
}

Status TaskService::Wait(const ttrpc::RequestContext& ctx, const taskpb::WaitRequest& request,
                         taskpb::WaitResponse& response) {
  std::unique_lock lock(mutex_);
  Status status;
  Task* task = nullptr;
  Process* process = FindProcess(request.id(), request.exec_id(), &task, status);
  if (!process) return status;
  if (!exited_.wait(lock, ctx.stop, [&] { return process->status == ProcessStatus::kStopped; }))
    return Status(Code::kCanceled, "wait canceled: the client went away");
  response.set_exit_status(process->exit_status);
  SetTimestamp(response.mutable_exited_at(), process->exited_at_ns);
  return Status::Ok();
}

Status TaskService::Delete(const taskpb::DeleteRequest& request, taskpb::DeleteResponse& response) {
  std::unique_lock lock(mutex_);
  Status status;
  Task* task = nullptr;
  Process* process = FindProcess(request.id(), request.exec_id(), &task, status);
  if (!process) return status;
  if (process->status == ProcessStatus::kRunning || process->starting)
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
  if (owned->owns_sandbox()) sandboxes_.erase(owned->id);  // no new containers join it
  lock.unlock();
  owned.reset();  // tears down; the sandbox task also ends the sandbox (UVM, host agent)
  containerd::events::TaskDelete event;
  event.set_container_id(request.id());
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
  if (!IsValidId(request.exec_id()))
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
  Task* task = nullptr;
  Process* process = FindProcess(request.id(), request.exec_id(), &task, status);
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
  std::shared_ptr<host::AgentClient> agent = task->agent;  // outlives a concurrent Delete
  lock.unlock();
  try {
    call(*agent);
  } catch (const host::AgentError& e) {
    return FromAgentError(e);
  }
  return Status::Ok();
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
  Task* task = nullptr;
  Process* process = FindProcess(request.id(), request.exec_id(), &task, status);
  if (!process) return status;
  if (request.stdin() && process->relay) process->relay->FinishStdin();
  if (request.stdin() && !process->relay) process->stdin_closed = true;  // applied by StartRelay
  return Status::Ok();
}

Status TaskService::Update(const taskpb::UpdateTaskRequest& request) {
  std::string resources;
  try {
    resources = ResourcesJsonOf(request);
  } catch (const std::invalid_argument& e) {
    return Status(Code::kInvalidArgument, e.what());
  }
  return WithAgent(request.id(), [&](host::AgentClient& agent) { agent.UpdateContainer(request.id(), resources); });
}

Status TaskService::Stats(const taskpb::StatsRequest& request, taskpb::StatsResponse& response) {
  return WithAgent(request.id(), [&](host::AgentClient& agent) {
    auto stats = agent.Stats(request.id());
    *response.mutable_stats() = MetricsOf(stats);
  });
}

Status TaskService::Connect(const taskpb::ConnectRequest& request, taskpb::ConnectResponse& response) {
  std::lock_guard lock(mutex_);
  response.set_shim_pid(static_cast<std::uint32_t>(::getpid()));
  response.set_version("uvmshim");
  if (auto it = tasks_.find(request.id()); it != tasks_.end() && it->second)
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
