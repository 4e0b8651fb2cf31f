#include "uvm/guest_storage_mount.h"

#include <grpcpp/grpcpp.h>

#include "agent.grpc.pb.h"

namespace uvmshim::uvm {
namespace {

ErrorCode CodeOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT: return ErrorCode::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND: return ErrorCode::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS: return ErrorCode::kAlreadyExists;
    case grpc::StatusCode::FAILED_PRECONDITION: return ErrorCode::kFailedPrecondition;
    case grpc::StatusCode::UNIMPLEMENTED: return ErrorCode::kUnimplemented;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return ErrorCode::kDeadlineExceeded;
    case grpc::StatusCode::UNAVAILABLE: return ErrorCode::kUnavailable;
    default: return ErrorCode::kInternal;
  }
}

}  // namespace

agent::v1::MountGuestStorageRequest MountGuestStorageRequestFor(const GuestStorageLocation& location,
                                                               const std::string& guest_target, bool read_only) {
  agent::v1::MountGuestStorageRequest request;
  switch (location.kind) {
    case GuestStorageLocation::Kind::kPlan9Share:
      request.mutable_plan9()->set_share(location.share);
      request.mutable_plan9()->set_vsock_port(location.vsock_port);
      break;
    case GuestStorageLocation::Kind::kScsiDisk:
      request.mutable_scsi()->set_controller(location.controller);
      request.mutable_scsi()->set_lun(location.lun);
      break;
  }
  request.set_target(guest_target);
  request.set_read_only(read_only);
  return request;
}

GuestStorageLocation AttachAndMountStorage(UtilityVm& vm, const HostStorage& storage,
                                           const std::string& guest_target, std::chrono::milliseconds timeout) {
  auto channel = vm.AgentChannel();
  if (!channel)
    throw VmError("mount " + storage.host_path.string() + " at " + guest_target + ": the VM's agent is not connected",
                  ErrorCode::kFailedPrecondition);
  const GuestStorageLocation location = vm.AttachStorage(storage);
  auto stub = agent::v1::Agent::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  agent::v1::MountGuestStorageResponse response;
  const grpc::Status status = stub->MountGuestStorage(
      &context, MountGuestStorageRequestFor(location, guest_target, storage.read_only), &response);
  if (!status.ok())
    throw VmError("mount " + storage.host_path.string() + " at " + guest_target + " in the guest: " +
                      status.error_message(),
                  CodeOf(status.error_code()));
  return location;
}

}  // namespace uvmshim::uvm
