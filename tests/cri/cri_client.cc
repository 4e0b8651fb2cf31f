#include "cri_client.h"

namespace uvmshim::cri {

namespace {

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "Cancelled";
    case grpc::StatusCode::UNKNOWN: return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT: return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND: return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS: return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED: return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FailedPrecondition";
    case grpc::StatusCode::ABORTED: return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE: return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED: return "Unimplemented";
    case grpc::StatusCode::INTERNAL: return "Internal";
    case grpc::StatusCode::UNAVAILABLE: return "Unavailable";
    case grpc::StatusCode::DATA_LOSS: return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED: return "Unauthenticated";
    default: return "code " + std::to_string(static_cast<int>(code));
  }
}

void Check(const char* rpc, const grpc::Status& status) {
  if (!status.ok()) throw CriError(rpc, status);
}

}  // namespace

CriError::CriError(const std::string& rpc, const grpc::Status& status)
    : std::runtime_error("CRI " + rpc + " failed: " + CodeName(status.error_code()) + ": " +
                         status.error_message()),
      code_(status.error_code()) {}

CriClient::CriClient(const std::string& socket, std::chrono::milliseconds timeout)
    : channel_(grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials())),
      runtime_(v1::RuntimeService::NewStub(channel_)),
      images_(v1::ImageService::NewStub(channel_)),
      timeout_(timeout) {}

std::unique_ptr<grpc::ClientContext> CriClient::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout_);
  context->set_wait_for_ready(true);  // containerd may still be binding its socket
  return context;
}

v1::VersionResponse CriClient::Version() {
  v1::VersionRequest request;
  request.set_version("v1");
  v1::VersionResponse response;
  Check("Version", runtime_->Version(Context().get(), request, &response));
  return response;
}

std::string CriClient::RunPodSandbox(const v1::PodSandboxConfig& config, const std::string& handler) {
  v1::RunPodSandboxRequest request;
  *request.mutable_config() = config;
  request.set_runtime_handler(handler);
  v1::RunPodSandboxResponse response;
  Check("RunPodSandbox", runtime_->RunPodSandbox(Context().get(), request, &response));
  return response.pod_sandbox_id();
}

void CriClient::StopPodSandbox(const std::string& pod_id) {
  v1::StopPodSandboxRequest request;
  request.set_pod_sandbox_id(pod_id);
  v1::StopPodSandboxResponse response;
  Check("StopPodSandbox", runtime_->StopPodSandbox(Context().get(), request, &response));
}

void CriClient::RemovePodSandbox(const std::string& pod_id) {
  v1::RemovePodSandboxRequest request;
  request.set_pod_sandbox_id(pod_id);
  v1::RemovePodSandboxResponse response;
  Check("RemovePodSandbox", runtime_->RemovePodSandbox(Context().get(), request, &response));
}

v1::PodSandboxStatusResponse CriClient::PodSandboxStatus(const std::string& pod_id, bool verbose) {
  v1::PodSandboxStatusRequest request;
  request.set_pod_sandbox_id(pod_id);
  request.set_verbose(verbose);
  v1::PodSandboxStatusResponse response;
  Check("PodSandboxStatus", runtime_->PodSandboxStatus(Context().get(), request, &response));
  return response;
}

std::vector<v1::PodSandbox> CriClient::ListPodSandbox() {
  v1::ListPodSandboxRequest request;
  v1::ListPodSandboxResponse response;
  Check("ListPodSandbox", runtime_->ListPodSandbox(Context().get(), request, &response));
  return {response.items().begin(), response.items().end()};
}

std::string CriClient::CreateContainer(const std::string& pod_id, const v1::ContainerConfig& config,
                                       const v1::PodSandboxConfig& sandbox_config) {
  v1::CreateContainerRequest request;
  request.set_pod_sandbox_id(pod_id);
  *request.mutable_config() = config;
  *request.mutable_sandbox_config() = sandbox_config;
  v1::CreateContainerResponse response;
  Check("CreateContainer", runtime_->CreateContainer(Context().get(), request, &response));
  return response.container_id();
}

void CriClient::StartContainer(const std::string& id) {
  v1::StartContainerRequest request;
  request.set_container_id(id);
  v1::StartContainerResponse response;
  Check("StartContainer", runtime_->StartContainer(Context().get(), request, &response));
}

void CriClient::StopContainer(const std::string& id, int64_t timeout_seconds) {
  v1::StopContainerRequest request;
  request.set_container_id(id);
  request.set_timeout(timeout_seconds);
  v1::StopContainerResponse response;
  Check("StopContainer", runtime_->StopContainer(Context().get(), request, &response));
}

void CriClient::RemoveContainer(const std::string& id) {
  v1::RemoveContainerRequest request;
  request.set_container_id(id);
  v1::RemoveContainerResponse response;
  Check("RemoveContainer", runtime_->RemoveContainer(Context().get(), request, &response));
}

std::vector<v1::Container> CriClient::ListContainers(const std::string& pod_id) {
  v1::ListContainersRequest request;
  if (!pod_id.empty()) request.mutable_filter()->set_pod_sandbox_id(pod_id);
  v1::ListContainersResponse response;
  Check("ListContainers", runtime_->ListContainers(Context().get(), request, &response));
  return {response.containers().begin(), response.containers().end()};
}

v1::ContainerStatusResponse CriClient::ContainerStatus(const std::string& id, bool verbose) {
  v1::ContainerStatusRequest request;
  request.set_container_id(id);
  request.set_verbose(verbose);
  v1::ContainerStatusResponse response;
  Check("ContainerStatus", runtime_->ContainerStatus(Context().get(), request, &response));
  return response;
}

v1::ExecSyncResponse CriClient::ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                         int64_t timeout_seconds) {
  v1::ExecSyncRequest request;
  request.set_container_id(id);
  for (const auto& arg : cmd) request.add_cmd(arg);
  request.set_timeout(timeout_seconds);
  v1::ExecSyncResponse response;
  Check("ExecSync", runtime_->ExecSync(Context().get(), request, &response));
  return response;
}

v1::ContainerStats CriClient::ContainerStats(const std::string& id) {
  v1::ContainerStatsRequest request;
  request.set_container_id(id);
  v1::ContainerStatsResponse response;
  Check("ContainerStats", runtime_->ContainerStats(Context().get(), request, &response));
  return response.stats();
}

void CriClient::UpdateContainerResources(const std::string& id,
                                         const v1::LinuxContainerResources& resources) {
  v1::UpdateContainerResourcesRequest request;
  request.set_container_id(id);
  *request.mutable_linux() = resources;
  v1::UpdateContainerResourcesResponse response;
  Check("UpdateContainerResources",
        runtime_->UpdateContainerResources(Context().get(), request, &response));
}

bool CriClient::ImagePresent(const std::string& ref) {
  v1::ImageStatusRequest request;
  request.mutable_image()->set_image(ref);
  v1::ImageStatusResponse response;
  Check("ImageStatus", images_->ImageStatus(Context().get(), request, &response));
  return response.has_image() && !response.image().id().empty();
}

}  // namespace uvmshim::cri
