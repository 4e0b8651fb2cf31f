// uvm-guest-storage-client: the host side of uvm.guest_storage_hotplug
// (guest_storage_test.sh), speaking to a real agent in a QEMU guest over its
// virtio-serial socket. One RPC per run; prints "CODE message" (CODE is the
// gRPC status number, 0 = OK) and, for cat, the file's bytes.
//   mount-scsi SOCKET CONTROLLER LUN TARGET WAIT_MS [ro]
//   mount-plan9 SOCKET SHARE PORT TARGET
//   unmount SOCKET TARGET
//   cat SOCKET PATH          /bin/cat PATH in the agent's environment (Console)
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <string>

#include "agent.grpc.pb.h"
#include "uvm/agent_channel.h"

namespace pb = uvmshim::agent::v1;

namespace {

int Report(const grpc::Status& status, const std::string& extra = "") {
  std::cout << static_cast<int>(status.error_code()) << " " << status.error_message() << extra << std::endl;
  return status.ok() ? 0 : 1;
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  // TCG guests under load: generous, but bounded.
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(240));
  context->set_wait_for_ready(true);
  return context;
}

int Cat(pb::Agent::Stub& stub, const std::string& path) {
  auto context = Context();
  auto stream = stub.Console(context.get());
  pb::ConsoleInput first;
  first.add_command("/bin/cat");
  first.add_command(path);
  if (!stream->Write(first)) return Report(stream->Finish());
  stream->WritesDone();
  std::string output;
  pb::ConsoleOutput chunk;
  std::uint32_t exit_status = 255;
  while (stream->Read(&chunk)) {
    output += chunk.data();
    if (chunk.exited()) exit_status = chunk.exit_status();
  }
  const auto status = stream->Finish();
  std::cout << static_cast<int>(status.error_code()) << " exit=" << exit_status << std::endl << output;
  return status.ok() && exit_status == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " mount-scsi|mount-plan9|unmount|cat SOCKET ARGS...\n";
    return 2;
  }
  const std::string verb = argv[1];
  auto channel = uvmshim::uvm::MakeAgentChannel(std::string("unix:") + argv[2]);
  auto stub = pb::Agent::NewStub(channel);
  try {
    if (verb == "mount-scsi" && argc >= 7) {
      pb::MountGuestStorageRequest request;
      request.mutable_scsi()->set_controller(static_cast<unsigned>(std::stoul(argv[3])));
      request.mutable_scsi()->set_lun(static_cast<unsigned>(std::stoul(argv[4])));
      request.set_target(argv[5]);
      request.set_wait_ms(static_cast<unsigned>(std::stoul(argv[6])));
      request.set_read_only(argc >= 8 && std::string(argv[7]) == "ro");
      pb::MountGuestStorageResponse response;
      auto context = Context();
      const auto status = stub->MountGuestStorage(context.get(), request, &response);
      return Report(status, status.ok() ? "device=" + response.device() : "");
    }
    if (verb == "mount-plan9" && argc >= 6) {
      pb::MountGuestStorageRequest request;
      request.mutable_plan9()->set_share(argv[3]);
      request.mutable_plan9()->set_vsock_port(static_cast<unsigned>(std::stoul(argv[4])));
      request.set_target(argv[5]);
      pb::MountGuestStorageResponse response;
      auto context = Context();
      return Report(stub->MountGuestStorage(context.get(), request, &response));
    }
    if (verb == "unmount" && argc >= 4) {
      pb::UnmountGuestStorageRequest request;
      request.set_target(argv[3]);
      pb::UnmountGuestStorageResponse response;
      auto context = Context();
      return Report(stub->UnmountGuestStorage(context.get(), request, &response));
    }
    if (verb == "cat" && argc >= 4) return Cat(*stub, argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "bad argument: " << e.what() << "\n";
    return 2;
  }
  std::cerr << "unknown verb or missing arguments: " << verb << "\n";
  return 2;
}
