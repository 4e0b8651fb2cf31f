// The task-API calls uvmctl's commands share: starting a container's shim,
// its bundle directory, and the small requests around a process's life
// (window size, stdin EOF, delete + shutdown).
#pragma once

#include <google/protobuf/any.pb.h>

#include <filesystem>
#include <string>

#include "shim/task_client.h"

namespace uvmshim::uvmctl {

inline constexpr int kRuntimeError = 125;  // docker's convention: the runtime failed

// <RuntimeRoot>/bundles/<ns>/<id>: the bundle `uvmctl run` writes.
std::filesystem::path BundleDir(const std::string& ns, const std::string& id);
// Removes a bundle and its bundles/<ns> and bundles parents once empty.
void RemoveBundle(const std::filesystem::path& bundle);

// Runs `containerd-shim-uvm-v1 ... start` in the bundle; returns the daemon's address.
std::string StartShim(const std::string& ns, const std::string& id, const std::filesystem::path& bundle);
// The runtime options that point the shim at a runtime config file.
google::protobuf::Any RuntimeOptions(const std::filesystem::path& config);

// Sends the host terminal's current size to the process's pty (if stdin is a terminal).
void SendWindowSize(shim::TaskClient& task, const std::string& id, const std::string& exec_id);
// Tells the shim our stdin is exhausted; a failure is only logged.
void CloseStdin(shim::TaskClient& task, const std::string& id, const std::string& exec_id);
// Deletes the container's task and shuts its shim down.
void DeleteAndShutdown(shim::TaskClient& task, const std::string& id);

}  // namespace uvmshim::uvmctl
