// One exec in a container, as the container's monitor runs it for an exec
// monitor (`uvm-runc exec`): the exec monitor's stdio (or pty slave) came over
// the control connection; its exit status goes back over it, and signals and
// resizes come in over it. The exec monitor going away kills the process.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent_client.h"
#include "stdio_relay.h"
#include "common/unique_fd.h"

namespace uvmshim::runc {

class ExecSession {
 public:
  // request: {"op":"exec","process":<OCI process JSON text>,"terminal":bool,"stdin":bool};
  // fds: stdin, stdout, stderr, or the pty slave with a terminal. `connection` is duplicated.
  ExecSession(host::AgentClient& agent, std::string container_id, const nlohmann::json& request,
              std::vector<UniqueFd> fds, int connection);
  ~ExecSession();
  ExecSession(const ExecSession&) = delete;
  ExecSession& operator=(const ExecSession&) = delete;

  // Starts the process and its relay; returns its pid. Throws (AgentError, std::invalid_argument).
  std::uint32_t Start();
  // Serves signal/resize requests until the exec monitor hangs up.
  void ServeConnection();
  // The container is going: ends the connection (ServeConnection returns).
  void Abandon();

 private:
  void WatchExit();

  host::AgentClient& agent_;
  const std::string container_id_;
  const std::string exec_id_;
  const std::string process_json_;
  const bool terminal_;
  const bool stdin_;
  std::vector<UniqueFd> fds_;
  UniqueFd connection_;  // a dup: shutting it down ends the caller's copy too
  std::unique_ptr<host::StdioRelay> relay_;
  std::thread waiter_;
  std::atomic<bool> exited_{false};
};

}  // namespace uvmshim::runc
