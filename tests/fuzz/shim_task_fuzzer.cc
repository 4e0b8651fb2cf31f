// libFuzzer target: bytes a local peer writes to the shim's ttrpc socket,
// all the way into the task service. Frames are decoded and classified as
// the server does (ttrpc/frame.h, protocol.h); each request for
// containerd.task.v2.Task is decoded into its containerd message and handed
// to a real TaskService that has no tasks, the way RegisterWith dispatches.
// Create, the one method that would start a sandbox, gets the checks that run
// before anything starts (id, runtime options, the event it would publish);
// Update's LinuxResources JSON is decoded as the shim does.
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "containerd/task/v2/shim.pb.h"
#include "common/ids.h"
#include "shim/create_request.h"
#include "shim/event_publisher.h"
#include "shim/task_service.h"
#include "tests/fuzz/fuzz_check.h"
#include "ttrpc/frame.h"
#include "ttrpc/protocol.h"

namespace {

using namespace uvmshim;
using uvmshim::fuzz::Check;
namespace taskpb = ::containerd::task::v2;
using ttrpc::Code;
using ttrpc::Status;

struct Shim {
  shim::EventPublisher events{"", "fuzz"};  // nothing is published without tasks
  shim::TaskService service{{"fuzz", "", [] {}}, events};
};

Shim& TheShim() {
  static Shim* shim = [] {
    google::protobuf::SetLogHandler(nullptr);
    spdlog::set_level(spdlog::level::off);
    return new Shim;  // lives as long as the fuzzer process
  }();
  return *shim;
}

// A task service without tasks answers every task-specific call with a clean
// refusal and never succeeds on one.
void ExpectNoTask(const Status& status) {
  Check(!status.ok(), "a call on a missing task succeeded");
  Check(status.code == static_cast<std::int32_t>(Code::kNotFound) ||
            status.code == static_cast<std::int32_t>(Code::kInvalidArgument),
        "unexpected status code");
}

template <class Request>
bool Decode(Request& request, const std::string& payload) {
  return request.ParseFromString(payload);
}

void CheckCreate(const taskpb::CreateTaskRequest& request) {
  if (!::uvmshim::IsValidId(request.id())) return;  // Create refuses it first
  (void)shim::CreateEventOf(request, 1);
  const auto& options = request.options();
  // A config path is a file the shim would read: parsing stops there.
  if (options.type_url().empty() || !options.type_url().ends_with("runtimeoptions.v1.Options")) {
    try {
      shim::ResolveConfig(request);
    } catch (const std::invalid_argument&) {
    }
  }
}

void Dispatch(const ttrpc::RequestMessage& message) {
  if (message.service != "containerd.task.v2.Task") return;  // the server answers Unimplemented
  auto& service = TheShim().service;
  const std::string& method = message.method;
  const std::string& payload = message.payload;
  if (method == "Create") {
    taskpb::CreateTaskRequest request;
    if (Decode(request, payload)) CheckCreate(request);
  } else if (method == "Start") {
    taskpb::StartRequest request;
    taskpb::StartResponse response;
    if (Decode(request, payload)) ExpectNoTask(service.Start(request, response));
  } else if (method == "Delete") {
    taskpb::DeleteRequest request;
    taskpb::DeleteResponse response;
    if (Decode(request, payload)) ExpectNoTask(service.Delete(request, response));
  } else if (method == "State") {
    taskpb::StateRequest request;
    taskpb::StateResponse response;
    if (Decode(request, payload)) ExpectNoTask(service.State(request, response));
  } else if (method == "Pids") {
    taskpb::PidsRequest request;
    taskpb::PidsResponse response;
    if (Decode(request, payload)) ExpectNoTask(service.Pids(request, response));
  } else if (method == "Stats") {
    taskpb::StatsRequest request;
    taskpb::StatsResponse response;
    if (Decode(request, payload)) ExpectNoTask(service.Stats(request, response));
  } else if (method == "Exec") {
    taskpb::ExecProcessRequest request;
    if (Decode(request, payload)) ExpectNoTask(service.Exec(request));
  } else if (method == "Kill") {
    taskpb::KillRequest request;
    if (Decode(request, payload)) ExpectNoTask(service.Kill(request));
  } else if (method == "ResizePty") {
    taskpb::ResizePtyRequest request;
    if (Decode(request, payload)) ExpectNoTask(service.ResizePty(request));
  } else if (method == "CloseIO") {
    taskpb::CloseIORequest request;
    if (Decode(request, payload)) ExpectNoTask(service.CloseIO(request));
  } else if (method == "Update") {
    taskpb::UpdateTaskRequest request;
    if (!Decode(request, payload)) return;
    try {
      shim::ResourcesJsonOf(request);
    } catch (const std::invalid_argument&) {
    }
    ExpectNoTask(service.Update(request));
  } else if (method == "Wait") {
    taskpb::WaitRequest request;
    taskpb::WaitResponse response;
    ttrpc::RequestContext context;
    if (Decode(request, payload)) ExpectNoTask(service.Wait(context, request, response));
  } else if (method == "Connect") {
    taskpb::ConnectRequest request;
    taskpb::ConnectResponse response;
    if (Decode(request, payload)) Check(service.Connect(request, response).ok(), "Connect failed");
  }
  // Shutdown is left out: it is the one call that ends the shim.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  TheShim();
  ttrpc::FrameDecoder decoder(ttrpc::kMaxMessageSize);
  decoder.Feed(std::string_view(reinterpret_cast<const char*>(data), size));
  while (auto decoded = decoder.Next()) {
    auto action = ttrpc::ClassifyServerFrame(*decoded);
    if (auto* request = std::get_if<ttrpc::ServerRequest>(&action)) Dispatch(request->request);
    if (std::holds_alternative<ttrpc::ServerProtocolError>(action)) break;  // the server hangs up
  }
  return 0;
}
