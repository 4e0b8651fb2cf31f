#include "shim/task_client.h"

#include <fmt/format.h>

#include "ttrpc/typed.h"

namespace uvmshim::shim {

TaskClient::TaskClient(const std::string& address, std::string ns)
    : client_(ttrpc::Client::Connect(address)), ns_(std::move(ns)) {}

void TaskClient::Invoke(const char* method, const google::protobuf::Message& request,
                        google::protobuf::Message& response) {
  auto status = ttrpc::CallTyped(*client_, "containerd.task.v2.Task", method, request, response,
                                 ttrpc::CallOptions::ForNamespace(ns_));
  if (!status.ok()) throw TaskCallError(status, fmt::format("{}: {}", method, status.message));
}

}  // namespace uvmshim::shim
