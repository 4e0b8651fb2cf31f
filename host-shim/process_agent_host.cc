#include "process_agent_host.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <stdexcept>

#include "agent_client.h"
#include "common/file_tail.h"
#include "common/private_dir.h"
#include "common/unique_fd.h"
#include "container_mounts.h"
#include "uvm/agent_channel.h"

namespace uvmshim::host {
namespace bp = boost::process;
namespace fs = std::filesystem;

namespace {

// The agent gets its own session: a Ctrl-C meant for uvmctl is relayed to the
// container by uvmctl, not delivered to the agent by the terminal.
struct NewSession : bp::extend::handler {
  template <class Executor>
  void on_exec_setup(Executor&) const {
    ::setsid();
    sigset_t none;  // the caller may block signals it forwards; the agent must not inherit that
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
  }
};

// The agent accepts on this fd number (--listen-fd).
constexpr int kAgentListenFd = 3;

// Puts the listening socket at kAgentListenFd in the agent, open across exec.
// Pass it last: the stdio handlers before it may dup2 from a fd numbered 3.
struct PassListener : bp::extend::handler {
  int fd;
  template <class Executor>
  void on_exec_setup(Executor&) const {
    if (fd == kAgentListenFd) {
      ::fcntl(fd, F_SETFD, 0);
    } else {
      ::dup2(fd, kAgentListenFd);  // the copy is not close-on-exec
    }
  }
};

// Binds and listens before the agent exists: the shim's connect is queued by
// the kernel and answered once the agent accepts, instead of failing and
// waiting out gRPC's reconnect backoff while the agent starts.
UniqueFd ListenForAgent(const fs::path& socket) {
  sockaddr_un address{};
  if (socket.native().size() >= sizeof address.sun_path)
    throw std::runtime_error(fmt::format("agent socket {}: path too long", socket.string()));
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket.c_str(), socket.native().size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto fail = [&](std::string_view what) {
    throw std::runtime_error(fmt::format("agent socket {}: {}: {}", socket.string(), what,
                                         std::strerror(errno)));
  };
  if (!fd) fail("socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) fail("bind");
  // No window before the chmod: the state dir is 0700 already.
  if (::chmod(socket.c_str(), 0600) != 0 || ::listen(fd.get(), 16) != 0) {
    const int error = errno;
    ::unlink(socket.c_str());
    errno = error;
    fail("chmod+listen");
  }
  return fd;
}

// One Ping that waits for the agent to serve; cancelled as soon as the agent
// exits (its pidfd turns readable) instead of polling whether it still runs.
bool WaitFirstAnswer(const std::shared_ptr<grpc::Channel>& channel, pid_t pid,
                     std::chrono::milliseconds timeout) {
  UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  UniqueFd answered(::eventfd(0, EFD_CLOEXEC));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  context.set_wait_for_ready(true);
  std::thread watcher;
  if (exited && answered) {
    watcher = std::thread([&] {
      pollfd fds[2] = {{exited.get(), POLLIN, 0}, {answered.get(), POLLIN, 0}};
      while (::poll(fds, 2, -1) < 0 && errno == EINTR) {
      }
      if (fds[0].revents & POLLIN) context.TryCancel();
    });
  }
  agentpb::PingResponse response;
  const bool ok = agentpb::Agent::NewStub(channel)->Ping(&context, {}, &response).ok();
  if (watcher.joinable()) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(answered.get(), &one, sizeof one);
    watcher.join();
  }
  return ok;
}

std::string TailOf(const fs::path& file) { return ReadFileTail(file, {.max_bytes = 2048}); }

}  // namespace

ProcessAgentHost::ProcessAgentHost(ProcessAgentConfig config) : config_(std::move(config)) {
  if (!fs::exists(config_.agent_binary))
    throw std::runtime_error(fmt::format("agent binary {}: not found",
                                         config_.agent_binary.string()));
  CreatePrivateDir(config_.state_dir);
  if (config_.socket_dir.empty()) config_.socket_dir = config_.state_dir;
  CreatePrivateDir(config_.socket_dir);
  socket_ = config_.socket_dir / "agent.sock";
  fs::remove(socket_);
  target_ = "unix://" + socket_.string();
  const std::string log = console_log().string();
  {
    UniqueFd listener = ListenForAgent(socket_);  // ours closes once the agent has its copy
    child_ = bp::child(config_.agent_binary.string(),
                       bp::args({"--listen", target_, "--listen-fd", std::to_string(kAgentListenFd),
                                 "--log-level", config_.log_level, "--cgroup-parent", config_.cgroup_parent}),
                       bp::std_in < bp::null, bp::std_out > log, bp::std_err > log,
                       NewSession{}, PassListener{{}, listener.get()});
  }
  // Opened while the child cannot have been reaped yet (only we reap it), so
  // it names this process for good; WaitForEnd waits on it.
  exited_.reset(static_cast<int>(::syscall(SYS_pidfd_open, child_.id(), 0)));
  spdlog::debug("agent host: started {} pid={} listen={}", config_.agent_binary.string(),
                child_.id(), target_);
  channel_ = uvm::MakeAgentChannel(target_);
  if (WaitFirstAnswer(channel_, child_.id(), config_.ready_timeout)) return;
  if (!child_.running()) {
    throw std::runtime_error(fmt::format("agent exited during start (status {}): {}",
                                         child_.exit_code(), TailOf(log)));
  }
  Kill();
  throw std::runtime_error(fmt::format("agent did not answer within {} ms: {}",
                                       config_.ready_timeout.count(), TailOf(log)));
}

ProcessAgentHost::~ProcessAgentHost() {
  if (child_.valid() && child_.running()) Kill();
  std::error_code ignored;
  fs::remove(socket_, ignored);
}

GuestContainer ProcessAgentHost::PrepareContainer(const std::string& container_id, const fs::path& host_rootfs,
                                                  const std::string& spec_json) {
  // The agent runs on the host: paths stay as they are, checked here so that
  // bad input fails with the mount's name before anything starts. Sockets
  // and devices bind as with runc.
  nlohmann::json spec;
  try {
    spec = nlohmann::json::parse(spec_json);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(fmt::format("container {}: spec: {}", container_id, e.what()));
  }
  BindMountsOf(spec, /*for_utility_vm=*/false);
  return {fs::absolute(host_rootfs).lexically_normal().string(), spec_json};
}

void ProcessAgentHost::WaitEnded(std::chrono::milliseconds timeout) {
  asked_to_end_ = true;
  if (!child_.valid()) return;
  // A pidfd turns readable when the process exits (Boost's wait_for relies on
  // SIGCHLD delivery, which a multi-threaded host with its own signal
  // handling cannot promise).
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child_.id(), 0)));
  if (pidfd) {
    pollfd p{pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      std::error_code ec;
      child_.wait(ec);
      return;
    }
  }
  Kill();
}

void ProcessAgentHost::Kill() {
  asked_to_end_ = true;
  if (!child_.valid()) return;
  std::error_code ec;
  child_.terminate(ec);  // SIGKILL + reap
}

bool ProcessAgentHost::WaitForEnd(std::chrono::milliseconds timeout) {
  if (!child_.valid()) return true;
  if (!exited_) return !child_.running();  // no pidfd (kernel < 5.3): what is known now
  pollfd p{exited_.get(), POLLIN, 0};
  int ready;
  while ((ready = ::poll(&p, 1, static_cast<int>(timeout.count()))) < 0 && errno == EINTR) {
  }
  return ready == 1;
}

std::optional<std::string> ProcessAgentHost::unexpected_exit() const {
  auto& child = const_cast<bp::child&>(child_);
  if (asked_to_end_ || !child.valid() || child.running()) return std::nullopt;
  return fmt::format("agent process {} exited unexpectedly (status {})", child.id(),
                     child.exit_code());
}

std::int64_t ProcessAgentHost::pid() const { return child_.valid() ? child_.id() : 0; }

}  // namespace uvmshim::host
