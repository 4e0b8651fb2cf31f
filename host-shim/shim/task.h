// One containerd task: a container of a sandbox with its init and exec
// processes. Holds its sandbox (and through it the agent) by shared_ptr, so a
// call that runs outside the service lock keeps the agent alive.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <google/protobuf/timestamp.pb.h>

#include "agent_client.h"
#include "sandbox_state.h"
#include "shim/rootfs_mount.h"
#include "shim/sandbox.h"
#include "shim/stdio_files.h"
#include "stdio_relay.h"

namespace uvmshim::shim {

std::int64_t NowNanos();  // wall clock, for exit times
void SetTimestamp(google::protobuf::Timestamp* ts, std::int64_t nanos);

enum class ProcessStatus { kCreated, kRunning, kStopped };

struct Process {
  std::string exec_id;        // "" = the task's init
  std::string process_json;   // exec processes: the OCI Process to start
  StdioPaths stdio;
  std::uint32_t pid = 0;
  ProcessStatus status = ProcessStatus::kCreated;
  std::uint32_t exit_status = 0;
  std::int64_t exited_at_ns = 0;
  std::unique_ptr<StdioFiles> files;
  std::unique_ptr<host::StdioRelay> relay;
  bool stdin_closed = false;  // CloseIO came before Start made the relay (exec)
  bool starting = false;      // Start's agent call is in flight (outside the service lock)
  std::thread waiter;

  // Starts relaying stdio between the host files and the agent.
  void StartRelay(host::AgentClient& agent, const std::string& container_id);
};

// Teardown runs in the destructor, step by step as far as creation got:
// processes killed and joined, the agent's container deleted, the sandbox's
// view of it released, the rootfs unmounted, the state removed, and (for the
// sandbox's own task) the sandbox stopped.
struct Task {
  Task(std::string id, std::string bundle, std::shared_ptr<Sandbox> sandbox);
  ~Task();
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  // The sandbox task: its id names the sandbox; deleting it ends the sandbox.
  bool owns_sandbox() const { return sandbox && sandbox->id() == id; }
  std::filesystem::path state_dir() const;
  void SaveState();  // best effort: logs failures

  const std::string id;
  const std::string bundle;
  const std::shared_ptr<Sandbox> sandbox;
  const std::shared_ptr<host::AgentClient> agent;
  RootfsMount rootfs;
  bool prepared = false;           // the sandbox holds a view of the rootfs
  bool created_in_agent = false;   // the agent knows the container
  host::SandboxState state;
  std::map<std::string, std::unique_ptr<Process>> processes;  // "" = init
};

}  // namespace uvmshim::shim
