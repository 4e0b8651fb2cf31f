#include "guest-agent/agent_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>
#include <stdexcept>

#include "guest-agent/cgroups.h"
#include "guest-agent/mounts.h"
#include "guest-agent/reaper.h"

namespace uvmshim::agent {
namespace {

constexpr int kMaxMessageBytes = 16 << 20;

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void PrepareAgentProcess() {
  for (int fd = 0; fd < 3; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0) continue;
    int null = open("/dev/null", O_RDWR);  // lands on `fd`, the lowest free number
    if (null >= 0 && null != fd) close(null);
  }
  Reaper::BlockSigchld();
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::unique_ptr<grpc::Server> BuildServer(AgentService& service, const std::string& grpc_listen_uri) {
  grpc::ServerBuilder builder;
  if (!grpc_listen_uri.empty()) builder.AddListeningPort(grpc_listen_uri, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // Output throughput: large windows and frames so a 256 KiB chunk does not
  // wait for WINDOW_UPDATEs or get cut into 16 KiB frames.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 4 << 20);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE, 4 << 20);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  auto server = builder.BuildAndStart();
  if (!server) throw std::runtime_error("gRPC server did not start" + (grpc_listen_uri.empty() ? std::string() : " on " + grpc_listen_uri));
  return server;
}

void ServeOnConnectedFd(grpc::Server& server, int fd) { grpc::AddInsecureChannelFromFd(&server, fd); }

std::unique_ptr<grpc::Server> ListenUnix(AgentService& service, const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) throw std::runtime_error("socket directory " + dir + ": " + std::strerror(errno));
    MakeDirectories(dir, 0700);
    chmod(dir.c_str(), 0700);  // mkdir's mode is masked by the umask
  }
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error("listen " + path + ": exists and is not a socket");
    unlink(path.c_str());  // stale socket of a previous agent
  }
  // No window in which the socket is reachable by others.
  mode_t old_umask = umask(077);
  std::unique_ptr<grpc::Server> server;
  try {
    server = BuildServer(service, "unix:" + path);
  } catch (...) {
    umask(old_umask);
    throw;
  }
  umask(old_umask);
  if (chmod(path.c_str(), 0600) != 0) throw std::runtime_error("chmod " + path + ": " + std::strerror(errno));
  return server;
}

void ServeUntilShutdown(AgentService& service, grpc::Server& server) {
  sigset_t set = ShutdownSignals();
  UniqueFd signals(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  pollfd fds[2] = {{service.shutdown_event_fd(), POLLIN, 0}, {signals.get(), POLLIN, 0}};
  for (;;) {
    int ready = poll(fds, signals ? 2 : 1, -1);
    if (ready > 0) break;
    if (ready < 0 && errno != EINTR) break;
  }
  if (fds[1].revents) {
    signalfd_siginfo info{};
    [[maybe_unused]] auto n = read(signals.get(), &info, sizeof info);
    spdlog::info("event=signal_received signal={}", info.ssi_signo);
  }
  spdlog::info("event=shutting_down");
  // Containers first: their ends complete the Wait/ReadOutput calls in flight.
  service.DestroyAllContainers();
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (!service.options().cgroup_parent.empty()) Cgroup::RemoveParent(service.options().cgroup_parent);
  spdlog::info("event=stopped");
}

}  // namespace uvmshim::agent
