// Serving AgentService: the gRPC server, listeners and the agent's lifecycle.
// The vm helper reuses these for PID 1 (vsock, virtio-serial).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "guest-agent/agent_service.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {

// Call first in main(), before any thread exists: blocks SIGCHLD (the reaper
// reads it from a signalfd), SIGTERM and SIGINT (ServeUntilShutdown reads
// them), ignores SIGPIPE, opens /dev/null on fds 0-2 when closed (so no
// pipe of ours lands there), raises the soft RLIMIT_NOFILE to the hard one and
// makes the agent a child subreaper.
void PrepareAgentProcess();

// The gRPC server with the agent's options: big messages (16 MiB), big HTTP/2
// windows and frames for output throughput, client keepalive allowed.
// `grpc_listen_uri` is a gRPC address such as "unix:/run/agent.sock", or ""
// to serve only connections added by ServeOnConnectedFd. Throws
// std::runtime_error when the server does not start.
std::unique_ptr<grpc::Server> BuildServer(AgentService& service, const std::string& grpc_listen_uri = "");

// Serves gRPC on an already connected stream socket (unix or vsock
// connection, socketpair bridged to a serial port). Takes ownership of fd;
// makes it non-blocking and gives it a 4 MiB send buffer (one output chunk
// leaves in one sendmsg instead of ping-ponging with the reader).
void ServeOnConnectedFd(grpc::Server& server, int fd);

// Listens on a unix socket and hands every connection to `adopt` (usually
// ServeOnConnectedFd). Creates the parent directory (0700) when missing,
// replaces a stale socket, leaves the socket file at mode 0600, and removes
// it at destruction. Throws std::runtime_error naming the path.
class UnixListener {
 public:
  UnixListener(const std::string& path, std::function<void(int fd)> adopt);
  // Accepts on `listening`, a socket already bound at `path` and listening,
  // inherited from the process that started us (the shim binds it first, so
  // its connect never races our start). Still removes `path` at destruction.
  UnixListener(const std::string& path, UniqueFd listening, std::function<void(int fd)> adopt);
  ~UnixListener();  // stops accepting (joins the accept thread)
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

 private:
  void StartAccepting();
  void Run();

  std::string path_;
  std::function<void(int)> adopt_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;
  std::thread thread_;
};

// Blocks until Shutdown was called or SIGTERM/SIGINT arrived.
void WaitForShutdownRequest(AgentService& service);

// Destroys every container, removes the cgroup parent, then answers the
// Shutdown calls (AgentService::AnswerShutdown); leaves the gRPC server alone
// (no graceful shutdown: it would wait for clients to hang up).
// Stop the listeners before. The caller then ends the process with
// ExitAgentProcess (or powers the VM off). main():
//   WaitForShutdownRequest(service); listener.reset(); StopAgent(service); ExitAgentProcess(0);
void StopAgent(AgentService& service);

// Flushes the log and ends the process at once, without running ~Server or
// static destructors (gRPC's threads are still serving).
[[noreturn]] void ExitAgentProcess(int status);

// WaitForShutdownRequest then StopAgent (listeners keep running meanwhile).
void ServeUntilShutdown(AgentService& service);

}  // namespace uvmshim::agent
