#include "guest-agent/agent_service.h"
#include "guest-agent/identity.h"

#include <sys/eventfd.h>
#include <sys/utsname.h>

#include <cerrno>
#include <spdlog/spdlog.h>
#include <system_error>

#include "guest-agent/console_session.h"
#include "common/ids.h"
#include "guest-agent/launcher.h"
#include "guest-agent/logging.h"
#include "guest-agent/pod_network_setup.h"

#ifndef UVMSHIM_AGENT_VERSION
#define UVMSHIM_AGENT_VERSION "0.0.0"
#endif

namespace uvmshim::agent {
namespace {

// vm::kGuestRootfsPath (the core does not link the PID-1 code).
constexpr std::string_view kGuestRootfsMount = "/run/rootfs";

bool OnGuestRootfs(const std::string& path) {
  return path.rfind(kGuestRootfsMount, 0) == 0 &&
         (path.size() == kGuestRootfsMount.size() || path[kGuestRootfsMount.size()] == '/');
}

grpc::Status Error(grpc::StatusCode code, const std::string& message) { return grpc::Status(code, message); }

grpc::Status CheckContainerId(const std::string& id) {
  if (auto error = IdError("container id", id); !error.empty()) return Error(grpc::StatusCode::INVALID_ARGUMENT, error);
  return grpc::Status::OK;
}

}  // namespace

AgentService::AgentService(AgentOptions options) : options_(std::move(options)) {
  shutdown_event_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!shutdown_event_) throw std::system_error(errno, std::generic_category(), "eventfd");
}

AgentService::~AgentService() { DestroyAllContainers(); }

void AgentService::RequestShutdown() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(shutdown_event_.get(), &one, sizeof one);
}

void AgentService::DestroyAllContainers() {
  std::map<std::string, std::shared_ptr<Container>> containers;
  {
    std::lock_guard lock(mu_);
    containers.swap(containers_);
  }
  for (auto& [id, container] : containers) {
    auto status = container->Destroy(true, reaper_);
    if (!status.ok()) spdlog::warn("event=destroy_failed container={} error={}", id, LogQuote(status.error_message()));
  }
}

grpc::Status AgentService::FindContainer(const std::string& id, std::shared_ptr<Container>* container) {
  if (auto status = CheckContainerId(id); !status.ok()) return status;
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return Error(grpc::StatusCode::NOT_FOUND, "container " + id + " not found");
  *container = it->second;
  return grpc::Status::OK;
}

grpc::Status AgentService::FindProcess(const std::string& container_id, const std::string& exec_id,
                                       std::shared_ptr<Process>* process) {
  std::shared_ptr<Container> container;
  if (auto status = FindContainer(container_id, &container); !status.ok()) return status;
  return container->FindProcess(exec_id, process);
}

grpc::Status AgentService::Version(grpc::ServerContext*, const pb::VersionRequest*, pb::VersionResponse* response) {
  response->set_agent_version(UVMSHIM_AGENT_VERSION);
  response->set_api_version(1);
  utsname name{};
  if (uname(&name) == 0) response->set_kernel_release(name.release);
  response->set_in_utility_vm(options_.in_utility_vm);
  return grpc::Status::OK;
}

grpc::Status AgentService::Ping(grpc::ServerContext*, const pb::PingRequest*, pb::PingResponse*) {
  return grpc::Status::OK;
}

bool AgentService::IsRunningContainerInit(pid_t pid) {
  std::lock_guard lock(mu_);
  for (const auto& [id, container] : containers_)
    if (container->init()->pid() == pid && container->init()->started() && !container->init()->exit()) return true;
  return false;
}

grpc::Status AgentService::CreateContainer(grpc::ServerContext*, const pb::CreateContainerRequest* request,
                                           pb::CreateContainerResponse* response) {
  const std::string& id = request->container_id();
  if (auto status = CheckContainerId(id); !status.ok()) return status;
  if (!options_.guest_rootfs_error.empty() && OnGuestRootfs(request->rootfs_path()))
    return Error(grpc::StatusCode::FAILED_PRECONDITION,
                 "create container " + id + ": the utility VM could not mount its rootfs at boot: " +
                     options_.guest_rootfs_error);
  {
    std::lock_guard lock(mu_);
    if (containers_.count(id) || creating_.count(id))
      return Error(grpc::StatusCode::ALREADY_EXISTS, "container " + id + " already exists");
    creating_.insert(id);
  }
  std::shared_ptr<Container> container;
  grpc::Status status;
  try {
    if (options_.in_utility_vm) {
      try {
        sandbox_shm_.EnsureFor(ParseOciSpec(request->spec_json()));
      } catch (const SpecError&) {
        // Container::Create reports a bad spec with its own status.
      }
    }
    ContainerOptions container_options;
    container_options.cgroup_parent = options_.cgroup_parent;
    container_options.in_utility_vm = options_.in_utility_vm;
    container_options.container_namespace_paths_only = options_.in_utility_vm;
    container_options.is_container_init = [this](pid_t pid) { return IsRunningContainerInit(pid); };
    if (request->has_network()) CheckNetworkRequest(*request);
    container = Container::Create(*request, reaper_, container_options);
    if (request->has_network()) ConfigureNetworkOrDestroy(*request, *container, reaper_);
  } catch (const LaunchError& e) {
    status = Error(e.code(), std::string("create container ") + id + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    status = Error(grpc::StatusCode::INVALID_ARGUMENT, std::string("create container ") + id + ": " + e.what());
  } catch (const std::exception& e) {
    status = Error(grpc::StatusCode::INTERNAL, std::string("create container ") + id + ": " + e.what());
  }
  std::lock_guard lock(mu_);
  creating_.erase(id);
  if (!status.ok()) {
    spdlog::info("event=create_failed container={} error={}", id, LogQuote(status.error_message()));
    return status;
  }
  containers_[id] = container;
  response->set_pid(static_cast<uint32_t>(container->init()->pid()));
  spdlog::info("event=container_created container={} pid={}", id, container->init()->pid());
  return grpc::Status::OK;
}

grpc::Status AgentService::StartContainer(grpc::ServerContext*, const pb::StartContainerRequest* request,
                                          pb::StartContainerResponse* response) {
  std::shared_ptr<Container> container;
  if (auto status = FindContainer(request->container_id(), &container); !status.ok()) return status;
  pid_t pid = 0;
  auto status = container->Start(&pid, reaper_);
  if (!status.ok()) return status;
  response->set_pid(static_cast<uint32_t>(pid));
  spdlog::debug("event=container_started container={} pid={}", request->container_id(), pid);
  return grpc::Status::OK;
}

grpc::Status AgentService::ExecProcess(grpc::ServerContext*, const pb::ExecProcessRequest* request,
                                       pb::ExecProcessResponse* response) {
  std::shared_ptr<Container> container;
  if (auto status = FindContainer(request->container_id(), &container); !status.ok()) return status;
  pid_t pid = 0;
  auto status = container->Exec(*request, reaper_, &pid);
  if (!status.ok()) return status;
  response->set_pid(static_cast<uint32_t>(pid));
  spdlog::debug("event=exec_started container={} exec={} pid={}", request->container_id(), request->exec_id(), pid);
  return grpc::Status::OK;
}

grpc::Status AgentService::SignalProcess(grpc::ServerContext*, const pb::SignalProcessRequest* request,
                                         pb::SignalProcessResponse*) {
  std::shared_ptr<Container> container;
  if (auto status = FindContainer(request->container_id(), &container); !status.ok()) return status;
  return container->Signal(*request, reaper_);
}

grpc::Status AgentService::WaitProcess(grpc::ServerContext* context, const pb::WaitProcessRequest* request,
                                       pb::WaitProcessResponse* response) {
  std::shared_ptr<Process> process;
  if (auto status = FindProcess(request->container_id(), request->exec_id(), &process); !status.ok()) return status;
  auto exit = process->Wait([context] { return context->IsCancelled(); });
  if (!exit) return Error(grpc::StatusCode::CANCELLED, "wait cancelled");
  response->set_exit_status(exit->exit_status);
  response->set_exited_at_unix_nano(exit->exited_at_unix_nano);
  if (request->exec_id().empty()) {
    std::shared_ptr<Container> container;
    if (FindContainer(request->container_id(), &container).ok()) response->set_oom_killed(container->OomKilled());
  }
  return grpc::Status::OK;
}

grpc::Status AgentService::UpdateContainer(grpc::ServerContext*, const pb::UpdateContainerRequest* request,
                                           pb::UpdateContainerResponse*) {
  std::shared_ptr<Container> container;
  if (auto status = FindContainer(request->container_id(), &container); !status.ok()) return status;
  return container->Update(request->resources_json());
}

grpc::Status AgentService::ReadOutput(grpc::ServerContext* context, const pb::ReadOutputRequest* request,
                                      grpc::ServerWriter<pb::OutputChunk>* writer) {
  std::shared_ptr<Process> process;
  if (auto status = FindProcess(request->container_id(), request->exec_id(), &process); !status.ok()) return status;
  OutputKind kind;
  switch (request->stream()) {
    case pb::STDOUT: kind = OutputKind::kStdout; break;
    case pb::STDERR: kind = OutputKind::kStderr; break;
    default: return Error(grpc::StatusCode::INVALID_ARGUMENT, "unknown output stream " + std::to_string(request->stream()));
  }
  pb::OutputChunk chunk;
  // The chunk takes the pump's buffer (swap, no copy) for the write.
  auto sink = [&](std::string& data) {
    chunk.mutable_data()->swap(data);
    bool ok = writer->Write(chunk);
    chunk.mutable_data()->swap(data);
    return ok;
  };
  // An empty first chunk tells the client it is attached: a WaitProcess sent
  // after it waits for this stream's output.
  auto on_attached = [&] { return writer->Write(pb::OutputChunk()); };
  return process->ReadOutput(kind, sink, [context] { return context->IsCancelled(); }, on_attached);
}

grpc::Status AgentService::WriteStdin(grpc::ServerContext* context, grpc::ServerReader<pb::StdinChunk>* reader,
                                      pb::WriteStdinResponse* response) {
  pb::StdinChunk chunk;
  if (!reader->Read(&chunk)) return grpc::Status::OK;  // nothing sent
  std::shared_ptr<Process> process;
  if (auto status = FindProcess(chunk.container_id(), chunk.exec_id(), &process); !status.ok()) return status;
  uint64_t written = 0;
  auto cancelled = [context] { return context->IsCancelled(); };
  do {
    if (!chunk.data().empty()) {
      auto status = process->WriteStdin(chunk.data(), cancelled, &written);
      response->set_bytes_written(written);
      if (!status.ok()) return status;
    }
    if (chunk.eof()) return process->CloseStdin();
  } while (reader->Read(&chunk));
  return grpc::Status::OK;
}

grpc::Status AgentService::CloseStdin(grpc::ServerContext*, const pb::CloseStdinRequest* request,
                                      pb::CloseStdinResponse*) {
  std::shared_ptr<Process> process;
  if (auto status = FindProcess(request->container_id(), request->exec_id(), &process); !status.ok()) return status;
  return process->CloseStdin();
}

grpc::Status AgentService::ResizePty(grpc::ServerContext*, const pb::ResizePtyRequest* request,
                                     pb::ResizePtyResponse*) {
  std::shared_ptr<Process> process;
  if (auto status = FindProcess(request->container_id(), request->exec_id(), &process); !status.ok()) return status;
  if (request->width() == 0 || request->height() == 0 || request->width() > 65535 || request->height() > 65535)
    return Error(grpc::StatusCode::INVALID_ARGUMENT, "pty size must be between 1x1 and 65535x65535");
  return process->ResizePty(request->width(), request->height());
}

grpc::Status AgentService::Stats(grpc::ServerContext*, const pb::StatsRequest* request, pb::StatsResponse* response) {
  std::shared_ptr<Container> container;
  if (auto status = FindContainer(request->container_id(), &container); !status.ok()) return status;
  return container->Stats(response);
}

grpc::Status AgentService::ListProcesses(grpc::ServerContext*, const pb::ListProcessesRequest* request,
                                         pb::ListProcessesResponse* response) {
  std::shared_ptr<Container> container;
  if (auto status = FindContainer(request->container_id(), &container); !status.ok()) return status;
  return container->ListProcesses(response);
}

grpc::Status AgentService::DeleteContainer(grpc::ServerContext*, const pb::DeleteContainerRequest* request,
                                           pb::DeleteContainerResponse*) {
  std::shared_ptr<Container> container;
  if (auto status = FindContainer(request->container_id(), &container); !status.ok()) return status;
  auto status = container->Destroy(request->force(), reaper_);
  if (!status.ok()) return status;
  {
    std::lock_guard lock(mu_);
    auto it = containers_.find(request->container_id());
    if (it != containers_.end() && it->second == container) containers_.erase(it);
  }
  spdlog::info("event=container_deleted container={}", request->container_id());
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* AgentService::Shutdown(grpc::CallbackServerContext*, const pb::ShutdownRequest*,
                                                  pb::ShutdownResponse*) {
  spdlog::info("event=shutdown_requested");
  // The main thread ends the process once woken: wake it only when the answer
  // has left (OnDone), so the client reads it instead of a broken connection.
  class AnswerThenShutdown final : public grpc::ServerUnaryReactor {
   public:
    explicit AnswerThenShutdown(AgentService& service) : service_(service) { Finish(grpc::Status::OK); }
    void OnDone() override {
      service_.RequestShutdown();
      delete this;
    }

   private:
    AgentService& service_;
  };
  return new AnswerThenShutdown(*this);
}

grpc::Status AgentService::Console(grpc::ServerContext* context,
                                   grpc::ServerReaderWriter<pb::ConsoleOutput, pb::ConsoleInput>* stream) {
  return RunConsoleSession(context, stream, reaper_);
}

grpc::Status AgentService::SetIdentity(grpc::ServerContext*, const pb::SetIdentityRequest* request,
                                       pb::SetIdentityResponse*) {
  return ApplyIdentity(*request, options_.in_utility_vm);
}

}  // namespace uvmshim::agent
