// A small CRI v1 client (runtime.v1 over gRPC on a Unix socket), the way kubelet talks to
// containerd's CRI plugin. Every call has a deadline and throws CriError, carrying the RPC name,
// the gRPC code and containerd's message, when it fails.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cri_api.grpc.pb.h"

namespace uvmshim::cri {

namespace v1 = ::runtime::v1;

class CriError : public std::runtime_error {
 public:
  CriError(const std::string& rpc, const grpc::Status& status);
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

class CriClient {
 public:
  // socket: containerd's gRPC socket (its CRI plugin serves on the same socket).
  // timeout: the deadline of every call (VM pods boot under emulation here: be generous).
  CriClient(const std::string& socket, std::chrono::milliseconds timeout);

  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  v1::VersionResponse Version();

  std::string RunPodSandbox(const v1::PodSandboxConfig& config, const std::string& handler);
  void StopPodSandbox(const std::string& pod_id);
  void RemovePodSandbox(const std::string& pod_id);
  v1::PodSandboxStatusResponse PodSandboxStatus(const std::string& pod_id, bool verbose = false);
  std::vector<v1::PodSandbox> ListPodSandbox();

  std::string CreateContainer(const std::string& pod_id, const v1::ContainerConfig& config,
                              const v1::PodSandboxConfig& sandbox_config);
  void StartContainer(const std::string& id);
  void StopContainer(const std::string& id, int64_t timeout_seconds);
  void RemoveContainer(const std::string& id);
  std::vector<v1::Container> ListContainers(const std::string& pod_id = "");
  v1::ContainerStatusResponse ContainerStatus(const std::string& id, bool verbose = false);
  v1::ExecSyncResponse ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                int64_t timeout_seconds = 0);
  v1::ContainerStats ContainerStats(const std::string& id);
  void UpdateContainerResources(const std::string& id, const v1::LinuxContainerResources& resources);

  // True when the image service knows `ref` (no pull: the suite runs offline).
  bool ImagePresent(const std::string& ref);

 private:
  std::unique_ptr<grpc::ClientContext> Context() const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<v1::ImageService::Stub> images_;
  std::chrono::milliseconds timeout_;
};

}  // namespace uvmshim::cri
