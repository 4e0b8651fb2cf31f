// containerd-shim-uvm-v1: the runtime shim containerd runs for
// io.containerd.uvm.v1. `start` launches the daemon and prints its address,
// `delete` cleans up after a task whose shim is gone, no action = the daemon.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <grpc/grpc.h>
#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

#include "common/ids.h"
#include "containerd/task/v2/shim.pb.h"
#include "paths.h"
#include "sandbox_share.h"
#include "sandbox_state.h"
#include "state_dir.h"
#include "shim/event_publisher.h"
#include "shim/pod_spec.h"
#include "shim/rootfs_mount.h"
#include "shim/shim_args.h"
#include "shim/task_service.h"
#include "ttrpc/server.h"
#include "ttrpc/socket.h"

namespace fs = std::filesystem;
using namespace uvmshim;

extern char** environ;

namespace {

constexpr int kListenerFd = 3;  // the daemon inherits its listening socket here
constexpr const char* kSocketEnv = "UVMSHIM_SHIM_SOCKET";
constexpr const char* kPidFile = "shim.pid";  // the daemon's, in its bundle (as containerd's shims do)

std::string SocketPathFor(const std::string& ns, const std::string& id) {
  return host::ShimSocketPath(ns, id).string();
}

// <root>/s goes once empty; the shared short socket root stays (other shims
// create their directories in it at any time).
void RemoveSocketDirIfEmpty(const fs::path& socket) {
  std::error_code ignored;
  if (socket.parent_path() != host::kShortSocketRoot) fs::remove(socket.parent_path(), ignored);
}

// The daemon's log: the bundle's `log` FIFO (containerd copies it into its
// own log), logfmt lines like containerd's own.
void SetUpLogging(const shim::ShimArgs& args) {
  int fd = ::open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  auto logger = spdlog::stderr_logger_mt("shim");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(fmt::format("time=\"%Y-%m-%dT%H:%M:%S.%fZ\" level=%l msg=\"%v\" runtime=io.containerd.uvm.v1 namespace={} id={}",
                                  args.ns, args.id),
                      spdlog::pattern_time_type::utc);
  spdlog::set_level(args.debug ? spdlog::level::debug : spdlog::level::info);
  spdlog::flush_on(spdlog::level::debug);
}

int Start(const shim::ShimArgs& args) {
  if (!IsValidId(args.id)) throw std::invalid_argument(fmt::format("-id \"{}\" is not valid", args.id));
  const fs::path bundle = args.bundle.empty() ? fs::current_path() : fs::path(args.bundle);
  // An app container of a pod goes to the pod's shim (started for its sandbox
  // id), so one shim and one sandbox (UVM or host agent) serve the whole pod.
  if (auto sandbox_id = shim::PodSandboxOf(bundle, args.id)) {
    const std::string pod_socket = SocketPathFor(args.ns, *sandbox_id);
    try {
      ttrpc::ConnectUnix(pod_socket);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("container {}: the shim of its pod sandbox {} does not answer "
                                           "({}): start the sandbox first", args.id, *sandbox_id, e.what()));
    }
    std::ofstream(bundle / "address") << "unix://" + pod_socket;
    std::cout << "unix://" + pod_socket << std::flush;
    return 0;
  }
  const std::string socket = SocketPathFor(args.ns, args.id);
  fs::create_directories(fs::path(socket).parent_path());
  ::chmod(fs::path(socket).parent_path().c_str(), 0700);
  const std::string address = "unix://" + socket;

  // A daemon that still serves this id (containerd restarted): reuse it.
  try {
    ttrpc::ConnectUnix(socket);
    std::ofstream(bundle / "address") << address;
    std::cout << address << std::flush;
    return 0;
  } catch (const std::exception&) {
    fs::remove(socket);
  }
  // Another shim may remove the (empty) socket directory as it exits: retry.
  UniqueFd listener;
  for (int attempt = 0;; ++attempt) {
    try {
      fs::create_directories(fs::path(socket).parent_path());
      listener = ttrpc::ListenUnix(socket);
      break;
    } catch (const std::system_error&) {
      if (attempt == 3) throw;
    }
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // containerd reads our stdout+stderr until EOF: the daemon must not hold them.
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, listener.get(), kListenerFd);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);

  // argv[0] names the binary (ps, and containerd's own shim lookups, show it).
  std::vector<std::string> argv_strings = {fs::read_symlink("/proc/self/exe").string()};
  auto daemon_args = shim::DaemonArgs(args);
  if (args.bundle.empty()) daemon_args.insert(daemon_args.end(), {"-bundle", bundle.string()});
  argv_strings.insert(argv_strings.end(), daemon_args.begin(), daemon_args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = {std::string(kSocketEnv) + "=" + socket};
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with(kSocketEnv)) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error(fmt::format("starting the shim daemon: {}", std::strerror(rc)));

  std::ofstream(bundle / "address") << address;
  std::cout << address << std::flush;
  return 0;
}

// Is pid still the process we recorded? Its command line names our state dir.
bool IsOurs(std::int64_t pid, const std::string& marker) {
  if (pid <= 0) return false;
  std::ifstream in(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), {});
  return !cmdline.empty() && cmdline.find(marker) != std::string::npos;
}

// Gone, or a zombie: it has released everything but its pid, and its new
// parent (not us) reaps it.
bool Ended(std::int64_t pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  auto paren = text.rfind(')');
  return text.empty() || (paren != std::string::npos && paren + 2 < text.size() &&
                          (text[paren + 2] == 'Z' || text[paren + 2] == 'X'));
}

void KillAndReap(std::int64_t pid) {
  ::kill(static_cast<pid_t>(pid), SIGKILL);
  for (int i = 0; i < 250 && !Ended(pid); ++i) ::usleep(4000);
}

std::optional<std::int64_t> ReadPidFile(const fs::path& path) {
  std::ifstream in(path);
  std::int64_t pid = 0;
  if (in >> pid && pid > 0) return pid;
  return std::nullopt;
}

// The pid file's process is still a shim daemon of this id (not a reused pid, not us).
bool IsOurDaemon(std::int64_t pid, const std::string& id) {
  if (pid == ::getpid() || !IsOurs(pid, id)) return false;
  std::error_code error;
  const auto exe = fs::read_symlink(fmt::format("/proc/{}/exe", pid), error);
  return !error && exe.filename() == fs::read_symlink("/proc/self/exe", error).filename();
}

int Delete(const shim::ShimArgs& args) {
  const fs::path bundle = args.bundle.empty() ? fs::current_path() : fs::path(args.bundle);
  const fs::path state_dir = host::StateDir(args.ns, args.id);
  auto state = host::ReadState(state_dir);
  const std::string sandbox_id = state && !state->sandbox_id.empty() ? state->sandbox_id : args.id;
  const fs::path sandbox_dir = host::StateDir(args.ns, sandbox_id);
  if (sandbox_id != args.id) {
    // An app container of a pod: its own processes and share entry only; the
    // pod's shim and sandbox stay (they end with the sandbox task).
    host::KillSandboxCgroups(host::SandboxCgroupParent(args.ns, sandbox_id) + "/" + args.id);
    for (const auto& entry : host::ShareEntriesOf(sandbox_dir / "share", args.id)) host::RemoveStateDir(entry);
  } else {
    // containerd may give up on a daemon before it wrote state.json (restarted
    // in the middle of a create: its reconnect found the task still being
    // created): nobody would ever talk to it again, so it goes too. The pid
    // file it writes into the bundle at start names it.
    if (auto daemon = ReadPidFile(bundle / kPidFile); daemon && IsOurDaemon(*daemon, args.id)) KillAndReap(*daemon);
    if (state && IsOurs(state->shim_pid, state->id)) KillAndReap(state->shim_pid);
    // The host agent's command line names its socket, in the state dir or,
    // when that path is too long for a socket (CRI's 64-hex ids), in the
    // private socket dir derived from it.
    const std::string socket_marker = host::SocketDirFor(state_dir).string();
    if (state && (IsOurs(state->host_pid, state_dir.string()) || IsOurs(state->host_pid, socket_marker)))
      KillAndReap(state->host_pid);
    // In process isolation the container's processes are host processes in the
    // sandbox's own cgroups (absent for hyperv sandboxes).
    host::KillSandboxCgroups(host::SandboxCgroupParent(args.ns, args.id));
    if (auto kept = host::RemoveStateDir(state_dir); !kept.empty())
      std::fprintf(stderr, "containerd-shim-uvm-v1: %s\n", kept.c_str());
    const fs::path socket_dir = host::SocketDirFor(state_dir);
    if (socket_dir != state_dir) host::RemoveStateDir(socket_dir);
    std::error_code ignored;
    fs::remove(SocketPathFor(args.ns, args.id), ignored);
    RemoveSocketDirIfEmpty(SocketPathFor(args.ns, args.id));
  }
  shim::UnmountAll(bundle / "rootfs");
  host::RemoveStateDir(state_dir, host::EmptyParent::kRemove);  // a pod member's; the sandbox's is gone

  containerd::task::v2::DeleteResponse response;
  response.set_exit_status(128 + SIGKILL);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  response.mutable_exited_at()->set_seconds(std::chrono::duration_cast<std::chrono::seconds>(now).count());
  std::string bytes = response.SerializeAsString();
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  return 0;
}

// gRPC (the agent's channel) stays initialised for the daemon's life. Else
// the channel's end at the sandbox task's Delete was gRPC's last reference,
// and gRPC shut its core down right there, joining its threads on Delete's
// critical path (2-12 ms, issue #13).
class GrpcKeptUp {
 public:
  GrpcKeptUp() { grpc_init(); }
  ~GrpcKeptUp() { grpc_shutdown(); }
  GrpcKeptUp(const GrpcKeptUp&) = delete;
  GrpcKeptUp& operator=(const GrpcKeptUp&) = delete;
};

int Serve(const shim::ShimArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  GrpcKeptUp grpc;
  if (!args.bundle.empty()) fs::current_path(args.bundle);
  SetUpLogging(args);
  // For `delete` (a daemon containerd gave up on before it wrote state.json).
  if (std::ofstream pid_file(kPidFile); !(pid_file << ::getpid() << '\n'))
    spdlog::warn("writing {} in the bundle failed", kPidFile);
  const char* socket_env = std::getenv(kSocketEnv);
  const std::string socket = socket_env ? socket_env : SocketPathFor(args.ns, args.id);

  std::mutex mutex;
  std::condition_variable exit_requested;
  bool exiting = false;
  auto request_exit = [&] {
    std::lock_guard lock(mutex);
    exiting = true;
    exit_requested.notify_all();
  };

  // SIGTERM/SIGINT end the daemon like Shutdown does (tasks are torn down).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("signal {}: shutting down", sig);
      request_exit();
    }
  });
  signal_thread.detach();

  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  {
    shim::EventPublisher events(ttrpc_address ? ttrpc_address : "", args.ns);
    ttrpc::Server server;
    {
      shim::TaskService tasks({args.ns, "unix://" + socket, request_exit}, events);
      tasks.RegisterWith(server);
      server.Serve(UniqueFd(kListenerFd));
      spdlog::info("serving on {} (pid {})", socket, ::getpid());
      std::unique_lock lock(mutex);
      exit_requested.wait(lock, [&] { return exiting; });
      lock.unlock();
      server.Shutdown(std::chrono::seconds(2));
    }  // tasks torn down
    events.Flush();
  }
  std::error_code ignored;
  fs::remove(socket, ignored);
  RemoveSocketDirIfEmpty(socket);
  spdlog::info("exiting");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Each exec runs 3-4 short-lived threads; glibc's default (8 arenas per core)
  // lets every arena keep the free memory of its peak: after 1000 execs 16
  // heaps held 9.6 MB, 0.8 MB of it in use (RSS +2-7 MiB/1000 execs). Two
  // arenas: the same 0.8 MB in use, 2.3 MB held, RSS flat (README Reliability).
  // One arena: an idle shim's second arena held ~0.2 MiB of its own (the
  // shim's few threads rarely allocate at once; issue #13, shim memory).
  mallopt(M_ARENA_MAX, 1);
  shim::ShimArgs args;
  try {
    args = shim::ParseShimArgs({argv + 1, argv + argc});
    if (args.ns.empty()) throw std::invalid_argument("-namespace is required");
    if (args.id.empty()) throw std::invalid_argument("-id is required");
    if (args.action == "start") return Start(args);
    if (args.action == "delete") return Delete(args);
    return Serve(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "containerd-shim-uvm-v1: %s\n", e.what());
    return 1;
  }
}
