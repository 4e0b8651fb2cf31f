#include "guest-agent/agent_service.h"
#include "guest-agent/identity.h"
#include "guest-agent/init_helper_exe.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <spdlog/spdlog.h>
#include <system_error>

#include "guest-agent/bulk_output_port.h"
#include "guest-agent/console_session.h"
#include "common/ids.h"
#include "guest-agent/launcher.h"
#include "guest-agent/logging.h"
#include "guest-agent/pod_network_setup.h"
#include "guest-agent/rpc_status.h"

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

void CheckContainerId(const std::string& id) {
  if (auto error = IdError("container id", id); !error.empty()) throw Error(ErrorCode::kInvalidArgument, error);
}

}  // namespace

AgentService::AgentService(AgentOptions options)
    : options_(std::move(options)), init_helper_(OpenInitHelperBesideAgent()), guest_storage_(options_.in_utility_vm, options_.guest_storage_root, "/sys", options_.load_storage_modules) {
  shutdown_event_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  shutdown_answered_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!shutdown_event_ || !shutdown_answered_) throw std::system_error(errno, std::generic_category(), "eventfd");
}

AgentService::~AgentService() { DestroyAllContainers(); }

void AgentService::RequestShutdown() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(shutdown_event_.get(), &one, sizeof one);
}

// A Shutdown call waiting for AnswerShutdown; counts itself in
// shutdown_answered_ once its answer was sent.
class AgentService::ShutdownCall final : public grpc::ServerUnaryReactor {
 public:
  explicit ShutdownCall(AgentService& service) : service_(service) {}
  void OnDone() override {
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(service_.shutdown_answered_.get(), &one, sizeof one);
    delete this;
  }

 private:
  AgentService& service_;
};

void AgentService::AnswerShutdown(std::chrono::milliseconds wait) {
  std::vector<ShutdownCall*> calls;
  {
    std::lock_guard lock(mu_);
    calls.swap(unanswered_shutdowns_);
  }
  for (ShutdownCall* call : calls) call->Finish(grpc::Status::OK);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (uint64_t sent = 0; sent < calls.size();) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd pfd{shutdown_answered_.get(), POLLIN, 0};
    if (left <= 0 || (poll(&pfd, 1, static_cast<int>(left)) < 0 && errno != EINTR)) {
      spdlog::warn("event=shutdown_answer_unsent calls={} sent={}", calls.size(), sent);
      return;
    }
    uint64_t count = 0;
    if (read(shutdown_answered_.get(), &count, sizeof count) == sizeof count) sent += count;
  }
}

void AgentService::DestroyAllContainers() {
  std::map<std::string, std::shared_ptr<Container>> containers;
  {
    std::lock_guard lock(mu_);
    containers.swap(containers_);
  }
  for (auto& [id, container] : containers) {
    try {
      container->Destroy(true, reaper_);
    } catch (const std::exception& e) {
      spdlog::warn("event=destroy_failed container={} error={}", id, LogQuote(e.what()));
    }
  }
}

std::shared_ptr<Container> AgentService::FindContainer(const std::string& id) {
  CheckContainerId(id);
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) throw Error(ErrorCode::kNotFound, "container " + id + " not found");
  return it->second;
}

std::shared_ptr<Process> AgentService::FindProcess(const std::string& container_id, const std::string& exec_id) {
  return FindContainer(container_id)->FindProcess(exec_id);
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
  grpc::Status status = ServeRpc("", [&] {
    CheckContainerId(id);
    if (!options_.guest_rootfs_error.empty() && OnGuestRootfs(request->rootfs_path()))
      throw Error(ErrorCode::kFailedPrecondition,
                  "create container " + id + ": the utility VM could not mount its rootfs at boot: " +
                      options_.guest_rootfs_error);
    std::lock_guard lock(mu_);
    if (containers_.count(id) || creating_.count(id))
      throw Error(ErrorCode::kAlreadyExists, "container " + id + " already exists");
    creating_.insert(id);
    return grpc::Status::OK;
  });
  if (!status.ok()) return status;
  std::shared_ptr<Container> container;
  status = ServeRpc("create container " + id, [&] {
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
    container_options.init_helper_fd = init_helper_.get();
    container_options.container_namespace_paths_only = options_.in_utility_vm;
    container_options.is_container_init = [this](pid_t pid) { return IsRunningContainerInit(pid); };
    if (request->has_network()) CheckNetworkRequest(*request);
    container = Container::Create(*request, reaper_, container_options);
    if (request->has_network()) ConfigureNetworkOrDestroy(*request, *container, reaper_);
    return grpc::Status::OK;
  });
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
  return ServeRpc("", [&] {
    const pid_t pid = FindContainer(request->container_id())->Start(reaper_);
    response->set_pid(static_cast<uint32_t>(pid));
    spdlog::debug("event=container_started container={} pid={}", request->container_id(), pid);
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::ExecProcess(grpc::ServerContext*, const pb::ExecProcessRequest* request,
                                       pb::ExecProcessResponse* response) {
  return ServeRpc("", [&] {
    const pid_t pid = FindContainer(request->container_id())->Exec(*request, reaper_);
    response->set_pid(static_cast<uint32_t>(pid));
    spdlog::debug("event=exec_started container={} exec={} pid={}", request->container_id(), request->exec_id(), pid);
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::SignalProcess(grpc::ServerContext*, const pb::SignalProcessRequest* request,
                                         pb::SignalProcessResponse*) {
  return ServeRpc("", [&] {
    FindContainer(request->container_id())->Signal(*request, reaper_);
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::WaitProcess(grpc::ServerContext* context, const pb::WaitProcessRequest* request,
                                       pb::WaitProcessResponse* response) {
  return ServeRpc("", [&] {
    auto exit = FindProcess(request->container_id(), request->exec_id())->Wait([context] { return context->IsCancelled(); });
    if (!exit) throw Error(ErrorCode::kCancelled, "wait cancelled");
    response->set_exit_status(exit->exit_status);
    response->set_exited_at_unix_nano(exit->exited_at_unix_nano);
    if (request->exec_id().empty()) {
      try {
        response->set_oom_killed(FindContainer(request->container_id())->OomKilled());
      } catch (const Error&) {
        // Deleted meanwhile: the exit stands without the OOM flag.
      }
    }
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::UpdateContainer(grpc::ServerContext*, const pb::UpdateContainerRequest* request,
                                           pb::UpdateContainerResponse*) {
  return ServeRpc("", [&] {
    FindContainer(request->container_id())->Update(request->resources_json());
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::ReadOutput(grpc::ServerContext* context, const pb::ReadOutputRequest* request,
                                      grpc::ServerWriter<pb::OutputChunk>* writer) {
  std::shared_ptr<Process> process;
  OutputKind kind = OutputKind::kStdout;
  if (auto status = ServeRpc("", [&] {
        process = FindProcess(request->container_id(), request->exec_id());
        switch (request->stream()) {
          case pb::STDOUT: kind = OutputKind::kStdout; break;
          case pb::STDERR: kind = OutputKind::kStderr; break;
          default: throw Error(ErrorCode::kInvalidArgument, "unknown output stream " + std::to_string(request->stream()));
        }
        return grpc::Status::OK;
      });
      !status.ok())
    return status;
  // Bulk (bulk_output_port.h) for a pipe when the host asks and the VM has
  // the port; a terminal's output and everything else go over gRPC.
  const bool bulk = request->bulk_stream_id() != 0 && options_.bulk_output_port && !process->terminal();
  if (bulk) return ReadOutputBulk(context, *request, *process, kind, writer);
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
  return ServeRpc("", [&] {
    if (!process->ReadOutput(kind, sink, [context] { return context->IsCancelled(); }, on_attached))
      throw Error(ErrorCode::kCancelled, "reader went away");
    return grpc::Status::OK;
  });
}

// The first chunk names the bulk stream (it also says "attached", as the
// empty chunk does on the gRPC path); the RPC ends only after the stream's
// end frame went out on the port, so the host has every byte before the end.
grpc::Status AgentService::ReadOutputBulk(grpc::ServerContext* context, const pb::ReadOutputRequest& request,
                                          Process& process, OutputKind kind,
                                          grpc::ServerWriter<pb::OutputChunk>* writer) {
  return ServeRpc("", [&] {
    auto stream = options_.bulk_output_port->Open(request.bulk_stream_id(), request.bulk_window_bytes());
    auto on_attached = [&] {
      pb::OutputChunk marker;
      marker.set_bulk_stream_id(stream->id());
      if (!writer->Write(marker)) return false;
      stream->MarkAnnounced();
      return true;
    };
    auto cancelled = [context] { return context->IsCancelled(); };
    // (On a throw the stream's destructor writes the end frame.)
    const bool ended = process.ReadOutputWith(
        kind, [&](const PumpSource& source) { return stream->Pump(source, cancelled); }, on_attached);
    stream->WriteEnd();
    if (!ended) throw Error(ErrorCode::kCancelled, "reader went away");
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::WriteStdin(grpc::ServerContext* context, grpc::ServerReader<pb::StdinChunk>* reader,
                                      pb::WriteStdinResponse* response) {
  pb::StdinChunk chunk;
  if (!reader->Read(&chunk)) return grpc::Status::OK;  // nothing sent
  std::shared_ptr<Process> process;
  if (auto status = ServeRpc("", [&] {
        process = FindProcess(chunk.container_id(), chunk.exec_id());
        return grpc::Status::OK;
      });
      !status.ok())
    return status;
  uint64_t written = 0;
  auto cancelled = [context] { return context->IsCancelled(); };
  return ServeRpc("", [&] {
    do {
      if (!chunk.data().empty()) {
        try {
          process->WriteStdin(chunk.data(), cancelled, &written);
        } catch (const Error&) {
          response->set_bytes_written(written);  // what was written counts even when the rest fails
          throw;
        }
        response->set_bytes_written(written);
      }
      if (chunk.eof()) {
        process->CloseStdin();
        break;
      }
    } while (reader->Read(&chunk));
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::CloseStdin(grpc::ServerContext*, const pb::CloseStdinRequest* request,
                                      pb::CloseStdinResponse*) {
  return ServeRpc("", [&] {
    FindProcess(request->container_id(), request->exec_id())->CloseStdin();
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::ResizePty(grpc::ServerContext*, const pb::ResizePtyRequest* request,
                                     pb::ResizePtyResponse*) {
  return ServeRpc("", [&] {
    auto process = FindProcess(request->container_id(), request->exec_id());
    if (request->width() == 0 || request->height() == 0 || request->width() > 65535 || request->height() > 65535)
      throw Error(ErrorCode::kInvalidArgument, "pty size must be between 1x1 and 65535x65535");
    process->ResizePty(request->width(), request->height());
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::Stats(grpc::ServerContext*, const pb::StatsRequest* request, pb::StatsResponse* response) {
  return ServeRpc("", [&] {
    FindContainer(request->container_id())->Stats(response);
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::ListProcesses(grpc::ServerContext*, const pb::ListProcessesRequest* request,
                                         pb::ListProcessesResponse* response) {
  return ServeRpc("", [&] {
    FindContainer(request->container_id())->ListProcesses(response);
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::DeleteContainer(grpc::ServerContext*, const pb::DeleteContainerRequest* request,
                                           pb::DeleteContainerResponse*) {
  return ServeRpc("", [&] {
    auto container = FindContainer(request->container_id());
    container->Destroy(request->force(), reaper_);
    {
      std::lock_guard lock(mu_);
      auto it = containers_.find(request->container_id());
      if (it != containers_.end() && it->second == container) containers_.erase(it);
    }
    spdlog::info("event=container_deleted container={}", request->container_id());
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AgentService::Shutdown(grpc::CallbackServerContext*, const pb::ShutdownRequest*,
                                                  pb::ShutdownResponse*) {
  spdlog::info("event=shutdown_requested");
  // Answered by the main thread (AnswerShutdown) once the containers are gone:
  // the answer then means the agent has nothing left to do but exit.
  auto* call = new ShutdownCall(*this);
  {
    std::lock_guard lock(mu_);
    unanswered_shutdowns_.push_back(call);
  }
  RequestShutdown();
  return call;
}

grpc::Status AgentService::Console(grpc::ServerContext* context,
                                   grpc::ServerReaderWriter<pb::ConsoleOutput, pb::ConsoleInput>* stream) {
  return ServeRpc("", [&] {
    RunConsoleSession(context, stream, reaper_);
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::SetIdentity(grpc::ServerContext*, const pb::SetIdentityRequest* request,
                                       pb::SetIdentityResponse*) {
  return ServeRpc("", [&] {
    ApplyIdentity(*request, options_.in_utility_vm);
    return grpc::Status::OK;
  });
}

}  // namespace uvmshim::agent

namespace uvmshim::agent {

grpc::Status AgentService::MountGuestStorage(grpc::ServerContext*, const pb::MountGuestStorageRequest* request,
                                             pb::MountGuestStorageResponse* response) {
  return ServeRpc("mount guest storage", [&] {
    response->set_device(guest_storage_.Mount(*request));
    return grpc::Status::OK;
  });
}

grpc::Status AgentService::UnmountGuestStorage(grpc::ServerContext*, const pb::UnmountGuestStorageRequest* request,
                                               pb::UnmountGuestStorageResponse*) {
  return ServeRpc("unmount guest storage", [&] {
    guest_storage_.Unmount(request->target());
    return grpc::Status::OK;
  });
}

}  // namespace uvmshim::agent
