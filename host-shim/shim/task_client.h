// A client of a shim's containerd.task.v2.Task service: what uvmctl uses to
// drive shims exactly as containerd does.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include <google/protobuf/empty.pb.h>

#include "containerd/task/v2/shim.pb.h"
#include "ttrpc/client.h"
#include "ttrpc/status.h"

namespace uvmshim::shim {

class TaskCallError : public std::runtime_error {
 public:
  TaskCallError(ttrpc::Status status, const std::string& what)
      : std::runtime_error(what), status_(std::move(status)) {}
  const ttrpc::Status& status() const { return status_; }

 private:
  ttrpc::Status status_;
};

class TaskClient {
 public:
  TaskClient(const std::string& address, std::string ns);

  // Throws TaskCallError("<Method>: <message>") on a non-OK status.
  template <class Response = google::protobuf::Empty>
  Response Call(const char* method, const google::protobuf::Message& request) {
    Response response;
    Invoke(method, request, response);
    return response;
  }

 private:
  void Invoke(const char* method, const google::protobuf::Message& request,
              google::protobuf::Message& response);
  std::unique_ptr<ttrpc::Client> client_;
  std::string ns_;
};

}  // namespace uvmshim::shim
