#include "runc/container_monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <ctime>
#include <list>
#include <mutex>
#include <thread>

#include "agent_client.h"
#include "paths.h"
#include "runc/container_network.h"
#include "runc/container_record.h"
#include "runc/control_channel.h"
#include "runc/exec_session.h"
#include "runc/pty_pair.h"
#include "runc/runc_log.h"
#include "sandbox_state.h"
#include "shim/sandbox.h"
#include "stdio_relay.h"

namespace uvmshim::runc {
namespace fs = std::filesystem;

using nlohmann::json;

namespace {

std::string NowRfc3339() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() % 1000000000;
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:09d}Z", text, nanos);
}

// Is fd 0 /dev/null (the caller gave the container no stdin)?
bool IsDevNull(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

class ContainerMonitor {
 public:
  explicit ContainerMonitor(const ContainerLaunch& launch) : launch_(launch) {}
  ~ContainerMonitor() { Teardown(); }

  void Boot();
  int Serve();  // returns the exit status

 private:
  void Teardown();
  void ServeControl();
  void Handle(UniqueFd connection);
  json Dispatch(const json& request, std::vector<UniqueFd>& fds, int connection, ExecSession*& exec);
  void Start();
  void WatchExit();
  void Finish(int exit_status);
  void SaveRecord();
  void ForwardSignals();
  std::string HookState(std::string_view status) const {
    return HookStateJson(launch_.spec, launch_.id, status, ::getpid(), launch_.bundle.string());
  }

  const ContainerLaunch& launch_;
  const fs::path dir_ = ContainerDir(launch_.global.root, launch_.id);
  ContainerRecord record_;
  std::optional<ContainerNetwork> network_;  // outlives the sandbox: its VM carries the interfaces
  std::shared_ptr<shim::Sandbox> sandbox_;
  std::shared_ptr<host::AgentClient> agent_;
  bool prepared_ = false, created_ = false;
  PtyPair pty_;
  std::unique_ptr<host::StdioRelay> relay_;
  UniqueFd listener_;
  UniqueFd stop_control_;  // a pipe's write end: closing it ends the accept loop
  UniqueFd stop_control_read_;
  std::thread control_thread_, waiter_, signal_thread_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::list<std::unique_ptr<ExecSession>> execs_;
  struct Handler {  // one control connection's thread
    std::thread thread;
    bool finished = false;  // under mu_: joinable without waiting (ServeControl reaps it)
  };
  std::list<Handler> handlers_;
  std::optional<int> exit_status_;
};

void ContainerMonitor::SaveRecord() {
  try {
    WriteRecord(launch_.global.root, record_);
  } catch (const std::exception& e) {
    spdlog::warn("{}: saving state: {}", launch_.id, e.what());
  }
}

void ContainerMonitor::Boot() {
  record_.id = launch_.id;
  record_.bundle = launch_.bundle.string();
  record_.rootfs = launch_.rootfs.string();
  record_.created = NowRfc3339();
  if (launch_.spec.contains("annotations") && launch_.spec["annotations"].is_object())
    for (auto& [k, v] : launch_.spec["annotations"].items())
      if (v.is_string()) record_.annotations[k] = v.get<std::string>();
  record_.isolation = host::ToString(launch_.config.isolation);
  record_.monitor_pid = ::getpid();
  record_.monitor_start_time = ProcessStartTime(::getpid());
  record_.sandbox_dir = (dir_ / "sandbox").string();
  record_.cgroup_parent = host::SandboxCgroupParent("runc", launch_.id);
  SaveRecord();  // from here on `delete` can clean up whatever this process leaves

  nlohmann::json spec = launch_.spec;
  network_ = ContainerNetwork::Prepare(spec, launch_.config.isolation, launch_.hooks, HookState("creating"));
  const bool terminal = !launch_.console_socket.empty();
  if (terminal) {
    pty_ = HandOverConsole(launch_.console_socket);
  }
  sandbox_ = shim::Sandbox::Start(
      {launch_.id, "runc", launch_.config, network_->vm_network(), record_.sandbox_dir, record_.cgroup_parent});
  agent_ = sandbox_->agent();
  record_.host_pid = sandbox_->host_pid();
  SaveRecord();
  auto guest = sandbox_->PrepareContainer(launch_.id, launch_.rootfs, spec.dump());
  prepared_ = true;
  host::agentpb::CreateContainerRequest create;
  create.set_container_id(launch_.id);
  create.set_spec_json(guest.spec_json);
  create.set_rootfs_path(guest.rootfs);
  create.set_terminal(terminal);
  create.set_stdin(terminal || !IsDevNull(0));
  if (sandbox_->pod_network()) *create.mutable_network() = *sandbox_->pod_network();
  record_.container_pid = agent_->CreateContainer(create);
  created_ = true;
  host::StdioFds fds = terminal ? host::StdioFds{pty_.slave.get(), pty_.slave.get(), -1} : host::StdioFds{0, 1, 2};
  relay_ = std::make_unique<host::StdioRelay>(*agent_, launch_.id, "", fds, terminal);
  relay_->Start();
  listener_ = ListenControl(dir_);
  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) throw std::runtime_error("pipe for the control loop");
  stop_control_read_ = UniqueFd(stop[0]);
  stop_control_ = UniqueFd(stop[1]);
  control_thread_ = std::thread([this] { ServeControl(); });
  if (terminal) DetachStdio();
  record_.status = "created";
  SaveRecord();
  spdlog::info("{}: created ({} isolation, agent pid {}, container pid {})", launch_.id, record_.isolation,
               record_.host_pid, record_.container_pid);
}

void ContainerMonitor::ServeControl() {
  pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_control_read_.get(), POLLIN, 0}};
  while (true) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    UniqueFd connection(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!connection) continue;
    std::lock_guard lock(mu_);
    // Threads of finished connections (execs, state calls) are joined here, so
    // their number stays that of the connections open, however many came.
    for (auto it = handlers_.begin(); it != handlers_.end();) {
      if (!it->finished) {
        ++it;
        continue;
      }
      it->thread.join();
      it = handlers_.erase(it);
    }
    Handler& handler = handlers_.emplace_back();
    handler.thread = std::thread([this, &handler, c = std::move(connection)]() mutable {
      Handle(std::move(c));
      std::lock_guard done(mu_);
      handler.finished = true;
    });
  }
}

void ContainerMonitor::Handle(UniqueFd connection) {
  try {
    auto request = ReceiveMessage(connection.get());
    if (!request) return;
    ExecSession* exec = nullptr;  // an exec's connection stays: it carries signals, resizes and the exit
    json answer;
    try {
      answer = Dispatch(request->body, request->fds, connection.get(), exec);
    } catch (const std::exception& e) {
      answer = {{"error", e.what()}};
    }
    SendMessage(connection.get(), answer);
    if (exec) {
      exec->ServeConnection();
      std::lock_guard lock(mu_);
      execs_.remove_if([&](const auto& e) { return e.get() == exec; });  // Teardown may have taken them
    }
  } catch (const std::exception& e) {
    spdlog::warn("{}: control connection: {}", launch_.id, e.what());
  }
}

json ContainerMonitor::Dispatch(const json& request, std::vector<UniqueFd>& fds, int connection,
                                ExecSession*& exec) {
  const std::string op = request.value("op", "");
  if (op == "start") {
    Start();
    return {{"ok", true}};
  }
  if (op == "kill") {
    const int signal = request.value("signal", SIGTERM);
    std::unique_lock lock(mu_);
    if (exit_status_) throw std::runtime_error("container not running");
    if (record_.status == "created") {  // never started: it ends as killed by that signal
      lock.unlock();
      Finish(128 + signal);
      return {{"ok", true}};
    }
    lock.unlock();
    agent_->SignalProcess(launch_.id, "", static_cast<std::uint32_t>(signal), request.value("all", false));
    return {{"ok", true}};
  }
  if (op == "ps") {
    auto processes = agent_->ListProcesses(launch_.id);
    json pids = json::array();
    for (const auto& p : processes.processes()) pids.push_back(p.pid());
    return {{"ok", true}, {"pids", pids}};
  }
  if (op == "update") {
    agent_->UpdateContainer(launch_.id, request.value("resources", "{}"));
    return {{"ok", true}};
  }
  if (op == "exec") {
    {
      std::lock_guard lock(mu_);
      if (record_.status != "running" || exit_status_) throw std::runtime_error("cannot exec in a stopped container");
    }
    auto session = std::make_unique<ExecSession>(*agent_, launch_.id, request, std::move(fds), connection);
    const std::uint32_t pid = session->Start();
    std::lock_guard lock(mu_);
    exec = session.get();
    execs_.push_back(std::move(session));
    return {{"ok", true}, {"pid", pid}};
  }
  throw std::invalid_argument(fmt::format("unknown control request \"{}\"", op));
}

void ContainerMonitor::Start() {
  {
    std::lock_guard lock(mu_);
    if (record_.status != "created" || exit_status_)
      throw std::runtime_error(fmt::format("cannot start a container in state {}", record_.status));
    agent_->StartContainer(launch_.id);
    record_.status = "running";
    SaveRecord();
    waiter_ = std::thread([this] { WatchExit(); });
  }
  try {  // runtime-spec: a poststart failure is a warning, the container runs on
    RunHostHooks(launch_.hooks.poststart, "poststart", HookState("running"));
  } catch (const std::exception& e) {
    spdlog::warn("{}: {}", launch_.id, e.what());
  }
}

void ContainerMonitor::WatchExit() {
  int status = 255;
  try {
    status = static_cast<int>(agent_->WaitProcess(launch_.id, "").exit_status);
    relay_->WaitOutputDone();  // every byte reaches the caller before the exit does
  } catch (const std::exception& e) {
    spdlog::error("{}: waiting for the container: {}", launch_.id, e.what());
  }
  Finish(status);
}

void ContainerMonitor::Finish(int exit_status) {
  std::lock_guard lock(mu_);
  if (!exit_status_) exit_status_ = exit_status;
  changed_.notify_all();
}

int ContainerMonitor::Serve() {
  signal_thread_ = std::thread([this] { ForwardSignals(); });
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return exit_status_.has_value(); });
  const int status = *exit_status_;
  lock.unlock();
  spdlog::info("{}: exited with status {}", launch_.id, status);
  Teardown();
  return status;
}

// Signals sent to the monitor go to the container, as they would to runc's
// init; a resize of the pty (SIGWINCH) goes to the agent's pty.
void ContainerMonitor::ForwardSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT}) sigaddset(&set, s);
  while (true) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0) continue;
    if (signal == SIGCONT) {  // Teardown's wake-up
      std::lock_guard lock(mu_);
      if (exit_status_) return;
      continue;
    }
    try {
      if (signal == SIGWINCH) {
        if (!pty_.slave) continue;
        auto [columns, rows] = WindowSize(pty_.slave.get());
        if (columns && rows) agent_->ResizePty(launch_.id, "", columns, rows);
      } else if (signal != SIGHUP || !pty_.slave) {  // a closed console is not the container's business
        std::lock_guard lock(mu_);
        if (record_.status == "running" && !exit_status_)
          agent_->SignalProcess(launch_.id, "", static_cast<std::uint32_t>(signal), false);
      }
    } catch (const std::exception& e) {
      spdlog::debug("{}: forwarding signal {}: {}", launch_.id, signal, e.what());
    }
  }
}

void ContainerMonitor::Teardown() {
  {
    std::lock_guard lock(mu_);
    if (!exit_status_) exit_status_ = 255;
  }
  if (signal_thread_.joinable()) {
    ::kill(::getpid(), SIGCONT);
    signal_thread_.join();
  }
  stop_control_.reset();
  if (control_thread_.joinable()) control_thread_.join();
  listener_.reset();
  std::error_code ignored;
  fs::remove(dir_ / kControlSocketName, ignored);
  if (created_ && sandbox_ && !sandbox_->stopped()) {
    try {
      agent_->SignalProcess(launch_.id, "", SIGKILL, true);
    } catch (const std::exception&) {
    }
  }
  if (waiter_.joinable()) waiter_.join();
  {
    std::list<std::unique_ptr<ExecSession>> execs;
    {
      std::lock_guard lock(mu_);
      execs.swap(execs_);
    }
    for (auto& e : execs) e->Abandon();  // their connections end: the handlers return
    std::list<Handler> handlers;
    {
      std::lock_guard lock(mu_);
      handlers.swap(handlers_);
    }
    for (auto& h : handlers) h.thread.join();
  }
  relay_.reset();
  if (created_) {
    try {
      agent_->DeleteContainer(launch_.id, true);
    } catch (const std::exception& e) {
      spdlog::debug("{}: delete in the agent: {}", launch_.id, e.what());
    }
    created_ = false;
    try {  // a poststop failure is a warning: the container is gone either way
      RunHostHooks(launch_.hooks.poststop, "poststop", HookState("stopped"));
    } catch (const std::exception& e) {
      spdlog::warn("{}: {}", launch_.id, e.what());
    }
  }
  if (prepared_) sandbox_->ReleaseContainer(launch_.id);
  prepared_ = false;
  if (sandbox_) sandbox_->Stop();
  sandbox_.reset();
  agent_.reset();
  if (!record_.id.empty()) {
    record_.status = "stopped";
    record_.exit_status = *exit_status_;
    SaveRecord();
  }
}

}  // namespace

int RunContainerMonitor(const ContainerLaunch& launch, UniqueFd ready) {
  ::setsid();  // its own session: a pty can become its controlling terminal
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT}) sigaddset(&set, s);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);  // every thread: ForwardSignals takes them
  ::signal(SIGPIPE, SIG_IGN);
  SetUpLogging(launch.global, /*to_stderr=*/false);
  int status = 255;
  try {
    ContainerMonitor monitor(launch);
    try {
      monitor.Boot();
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      const std::string text = e.what();
      [[maybe_unused]] auto n = ::write(ready.get(), text.data(), text.size());
      return 1;  // ~ContainerMonitor tears down whatever Boot got to
    }
    [[maybe_unused]] auto n = ::write(ready.get(), "ok", 2);
    ready.reset();
    status = monitor.Serve();
  } catch (const std::exception& e) {
    spdlog::error("{}: monitor: {}", launch.id, e.what());
  }
  spdlog::default_logger()->flush();
  return status & 0xff;
}

}  // namespace uvmshim::runc
