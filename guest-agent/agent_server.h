// Serving AgentService: the gRPC server, listeners and the agent's lifecycle.
// The vm helper reuses these for PID 1 (vsock, virtio-serial).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "guest-agent/agent_service.h"

namespace uvmshim::agent {

// Call first in main(), before any thread exists: blocks SIGCHLD (the reaper
// reads it from a signalfd), SIGTERM and SIGINT (ServeUntilShutdown reads
// them), ignores SIGPIPE, and opens /dev/null on fds 0-2 when closed (so no
// pipe of ours lands there).
void PrepareAgentProcess();

// The gRPC server with the agent's options: big messages (16 MiB), big HTTP/2
// windows and frames for output throughput, client keepalive allowed.
// `grpc_listen_uri` is a gRPC address such as "unix:/run/agent.sock", or ""
// to serve only connections added by ServeOnConnectedFd. Throws
// std::runtime_error when the server does not start.
std::unique_ptr<grpc::Server> BuildServer(AgentService& service, const std::string& grpc_listen_uri = "");

// Serves gRPC on an already connected stream socket (vsock connection,
// socketpair bridged to a serial port). Takes ownership of fd.
void ServeOnConnectedFd(grpc::Server& server, int fd);

// Listens on a unix socket: creates the parent directory (0700) when missing,
// replaces a stale socket, and leaves the socket file at mode 0600.
std::unique_ptr<grpc::Server> ListenUnix(AgentService& service, const std::string& path);

// Blocks until Shutdown was called or SIGTERM/SIGINT arrived; then destroys
// every container, stops the server (calls still in flight get 1 s) and
// removes the cgroup parent. The caller then exits (or powers the VM off).
void ServeUntilShutdown(AgentService& service, grpc::Server& server);

}  // namespace uvmshim::agent
