// libFuzzer target: the agent's gRPC request messages, as bytes off the
// channel, into the service. The first byte picks the RPC, the rest is the
// serialized request. Create and Exec go through the checks they run before
// anything is launched (request_checks.h); the other unary RPCs call the real
// AgentService, which has no containers here: every answer must be a clean
// status (INVALID_ARGUMENT for a bad id, NOT_FOUND otherwise), never a crash.
#include <signal.h>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <memory>
#include <string>

#include "guest-agent/agent_service.h"
#include "common/ids.h"
#include "guest-agent/launcher.h"
#include "guest-agent/request_checks.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace uvmshim::agent;
using uvmshim::fuzz::Check;
using uvmshim::fuzz::HasNoNul;

AgentService& Service() {
  static AgentService* service = [] {
    // The reaper wants SIGCHLD blocked (as PrepareAgentProcess does).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    google::protobuf::SetLogHandler(nullptr);
    spdlog::set_level(spdlog::level::off);
    AgentOptions options;
    options.cgroup_parent = "";  // no cgroups: nothing is ever created here
    return new AgentService(options);  // lives as long as the fuzzer process
  }();
  return *service;
}

PolicyEnvironment Environment(bool in_utility_vm) {
  PolicyEnvironment environment;
  environment.in_utility_vm = in_utility_vm;
  return environment;
}

// With no containers, a request either names an invalid id or a missing one.
void ExpectRefused(const grpc::Status& status, const std::string& container_id) {
  Check(!status.ok(), "a call on a missing container succeeded");
  Check(status.error_code() == (::uvmshim::IsValidId(container_id) ? grpc::StatusCode::NOT_FOUND
                                                         : grpc::StatusCode::INVALID_ARGUMENT),
        "unexpected status for a missing container");
}

template <class Request>
bool Parse(Request& request, const std::string& bytes) {
  return request.ParseFromString(bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  AgentService& service = Service();
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  grpc::ServerContext* no_context = nullptr;  // only used once a process is found
  switch (data[0] % 12) {
    case 0: {
      pb::CreateContainerRequest request;
      if (!Parse(request, bytes)) return 0;
      try {
        auto checked = CheckCreateRequest(request, Environment(data[0] & 0x80));
        Check(::uvmshim::IsValidId(request.container_id()), "bad container id accepted");
        Check(!checked.rootfs.empty() && checked.rootfs.front() == '/' && HasNoNul(checked.rootfs), "rootfs");
      } catch (const ::uvmshim::Error& e) {
        Check(e.code() == ::uvmshim::ErrorCode::kInvalidArgument || e.code() == ::uvmshim::ErrorCode::kResourceExhausted,
              "create refused with an unexpected code");
      }
      return 0;
    }
    case 1: {
      pb::ExecProcessRequest request;
      if (!Parse(request, bytes)) return 0;
      try {
        auto checked = CheckExecRequest(request, Environment(data[0] & 0x80));
        Check(::uvmshim::IsValidId(request.exec_id()), "bad exec id accepted");
        Check(!checked.process.args.empty(), "exec without args accepted");
      } catch (const ::uvmshim::Error& e) {
        Check(e.code() == ::uvmshim::ErrorCode::kInvalidArgument || e.code() == ::uvmshim::ErrorCode::kResourceExhausted,
              "exec refused with an unexpected code");
      }
      pb::ExecProcessResponse response;
      ExpectRefused(service.ExecProcess(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 2: {
      pb::StartContainerRequest request;
      pb::StartContainerResponse response;
      if (Parse(request, bytes))
        ExpectRefused(service.StartContainer(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 3: {
      pb::SignalProcessRequest request;
      pb::SignalProcessResponse response;
      if (Parse(request, bytes))
        ExpectRefused(service.SignalProcess(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 4: {
      pb::WaitProcessRequest request;
      pb::WaitProcessResponse response;
      if (Parse(request, bytes))
        ExpectRefused(service.WaitProcess(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 5: {
      pb::CloseStdinRequest request;
      pb::CloseStdinResponse response;
      if (Parse(request, bytes))
        ExpectRefused(service.CloseStdin(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 6: {
      pb::ResizePtyRequest request;
      pb::ResizePtyResponse response;
      if (Parse(request, bytes))
        ExpectRefused(service.ResizePty(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 7: {
      pb::StatsRequest request;
      pb::StatsResponse response;
      if (Parse(request, bytes)) ExpectRefused(service.Stats(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 8: {
      pb::ListProcessesRequest request;
      pb::ListProcessesResponse response;
      if (Parse(request, bytes))
        ExpectRefused(service.ListProcesses(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 9: {
      pb::DeleteContainerRequest request;
      pb::DeleteContainerResponse response;
      if (Parse(request, bytes))
        ExpectRefused(service.DeleteContainer(no_context, &request, &response), request.container_id());
      return 0;
    }
    case 10: {
      pb::UpdateContainerRequest request;
      pb::UpdateContainerResponse response;
      if (Parse(request, bytes))
        ExpectRefused(service.UpdateContainer(no_context, &request, &response), request.container_id());
      return 0;
    }
    default: {
      pb::VersionRequest request;
      pb::VersionResponse response;
      if (Parse(request, bytes)) Check(service.Version(no_context, &request, &response).ok(), "Version failed");
      return 0;
    }
  }
}
