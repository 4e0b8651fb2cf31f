#include "guest-agent/agent_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
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
constexpr int kSocketBufferBytes = 4 << 20;

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
  // Many processes, each with a few pipes: use all the fds we may have.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  // Orphans of containers without a pid namespace come to us (and are
  // reaped) instead of escaping to the host's init.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  Reaper::BlockSigchld();
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::unique_ptr<grpc::Server> BuildServer(AgentService& service, const std::string& grpc_listen_uri) {
  grpc::ServerBuilder builder;
  if (!grpc_listen_uri.empty()) builder.AddListeningPort(grpc_listen_uri, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  // Wait and ReadOutput block a thread each: keep idle threads around instead
  // of creating and ending one per call (gRPC's default keeps 2).
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 16);
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

void ServeOnConnectedFd(grpc::Server& server, int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int bytes = kSocketBufferBytes;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);  // best effort (capped by wmem_max)
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  grpc::AddInsecureChannelFromFd(&server, fd);
}

UnixListener::UnixListener(const std::string& path, std::function<void(int fd)> adopt)
    : path_(path), adopt_(std::move(adopt)) {
  auto fail = [&](const std::string& what, int error) {
    throw std::runtime_error("listen " + path + ": " + what + ": " + std::strerror(error));
  };
  sockaddr_un address{};
  if (path.size() >= sizeof address.sun_path) fail("path too long", ENAMETOOLONG);
  auto slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) fail("directory " + dir, errno);
    MakeDirectories(dir, 0700);
    chmod(dir.c_str(), 0700);  // mkdir's mode is masked by the umask
  }
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) fail("exists and is not a socket", EEXIST);
    unlink(path.c_str());  // stale socket of a previous agent
  }
  listen_fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd_) fail("socket", errno);
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size());
  // The umask closes the window between bind and chmod.
  mode_t old_umask = umask(077);
  int bound = bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
  int error = errno;
  umask(old_umask);
  if (bound != 0) fail("bind", error);
  if (chmod(path.c_str(), 0600) != 0) fail("chmod", errno);
  if (listen(listen_fd_.get(), 128) != 0) fail("listen", errno);
  StartAccepting();
}

UnixListener::UnixListener(const std::string& path, UniqueFd listening, std::function<void(int fd)> adopt)
    : path_(path), adopt_(std::move(adopt)), listen_fd_(std::move(listening)) {
  int accepting = 0;
  socklen_t size = sizeof accepting;
  if (getsockopt(listen_fd_.get(), SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) != 0 || !accepting)
    throw std::runtime_error("--listen-fd " + std::to_string(listen_fd_.get()) + " (for " + path +
                             "): not a listening socket");
  // Inherited across exec: not ours to pass on to containers.
  fcntl(listen_fd_.get(), F_SETFD, FD_CLOEXEC);
  fcntl(listen_fd_.get(), F_SETFL, fcntl(listen_fd_.get(), F_GETFL) | O_NONBLOCK);
  StartAccepting();
}

void UnixListener::StartAccepting() {
  stop_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_) throw std::runtime_error("listen " + path_ + ": eventfd: " + std::strerror(errno));
  thread_ = std::thread([this] { Run(); });
}

UnixListener::~UnixListener() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(stop_fd_.get(), &one, sizeof one);
  thread_.join();
  unlink(path_.c_str());
}

void UnixListener::Run() {
  pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event=accept_poll_failed path={} error={}", path_, std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        spdlog::warn("event=accept_failed path={} error={}", path_, std::strerror(errno));
      if (errno == EMFILE || errno == ENFILE) poll(nullptr, 0, 100);  // let fds free up
      continue;
    }
    spdlog::debug("event=connection_accepted path={} fd={}", path_, fd);
    adopt_(fd);
  }
}

void WaitForShutdownRequest(AgentService& service) {
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
}

void StopAgent(AgentService& service) {
  spdlog::info("event=shutting_down");
  // Containers first: their ends complete the Wait/ReadOutput calls in flight.
  service.DestroyAllContainers();
  // No grpc::Server::Shutdown: a graceful one waits (up to its deadline) for
  // every client to hang up, and the shim keeps its channel until we are gone;
  // gRPC 1.51 also crashes in SendGoAway for fd-adopted connections. Shutdown's
  // own answer leaves last, and is sent before we return.
  if (!service.options().cgroup_parent.empty()) Cgroup::RemoveParent(service.options().cgroup_parent);
  spdlog::info("event=stopped");
  service.AnswerShutdown(std::chrono::seconds(1));
}

void ExitAgentProcess(int status) {
  spdlog::default_logger()->flush();
  // Skips ~Server (a graceful shutdown again) and the static destructors of
  // gRPC, whose threads still run: the kernel closes every fd.
  std::_Exit(status);
}

void ServeUntilShutdown(AgentService& service) {
  WaitForShutdownRequest(service);
  StopAgent(service);
}

}  // namespace uvmshim::agent
