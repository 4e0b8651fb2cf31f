#include "uvmctl_test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <utility>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "common/mountinfo.h"
#include "common/unique_fd.h"

extern char** environ;

namespace uvmshim::uvmctl_test {
namespace {

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

using Fd = UniqueFd;

// Hands each chunk read from `fd` to `sink` until EOF or until `stop` is signalled.
void DrainUntilEof(int fd, int stop, const OutputSink& sink) {
  std::vector<char> buffer(1 << 16);
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EOF: every writer is gone
    sink(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
  }
}

// In a forked child: its own process group, default signal state, the three
// descriptors, and SIGKILL when the test process dies first (ctest kills a test
// at its timeout: what it started must not run on, flooding the cores, for the
// rest of the run).
void BecomeChild(pid_t parent, int in, int out, int err) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::dup2(in, STDIN_FILENO);
  ::dup2(out, STDOUT_FILENO);
  ::dup2(err, STDERR_FILENO);
}

std::pair<Fd, Fd> Pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(ErrnoText("pipe2"));
  return {Fd(fds[0]), Fd(fds[1])};
}

std::vector<std::string> MergedEnvironment(const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    env[entry.substr(0, entry.find('='))] = entry;
  }
  for (const auto& entry : overrides) env[entry.substr(0, entry.find('='))] = entry;
  std::vector<std::string> out;
  for (auto& [name, entry] : env) out.push_back(entry);
  return out;
}

std::string ReadFileText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsAtOrBelow(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/');
}

std::string Truncated(const std::string& text, std::size_t max = 4000) {
  if (text.size() <= max) return text;
  return text.substr(0, max / 2) + "\n[... " + std::to_string(text.size() - max) + " bytes ...]\n" +
         text.substr(text.size() - max / 2);
}

}  // namespace

std::string ProcessResult::Describe() const {
  std::ostringstream s;
  s << "`";
  for (std::size_t i = 0; i < argv.size(); ++i) s << (i ? " " : "") << argv[i];
  s << "` ";
  if (timed_out) s << "TIMED OUT (killed) ";
  if (term_signal) s << "killed by signal " << term_signal;
  else s << "exited " << exit_code;
  s << " after " << elapsed.count() << " ms";
  if (output_held_open) s << " (stdout/stderr held open after it exited)";
  s << "\n--- stdout (" << out.size() << " bytes) ---\n" << Truncated(out)
    << "\n--- stderr (" << err.size() << " bytes) ---\n" << Truncated(err);
  return s.str();
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options) {
  ProcessResult result;
  result.argv = argv;
  auto [out_read, out_write] = Pipe();
  auto [err_read, err_write] = Pipe();
  Fd in_read, in_write;
  if (options.stdin_data) std::tie(in_read, in_write) = Pipe();
  else in_read.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  std::vector<std::string> env = MergedEnvironment(options.env);
  std::vector<char*> argv_c, env_c;
  for (const auto& a : argv) argv_c.push_back(const_cast<char*>(a.c_str()));
  argv_c.push_back(nullptr);
  for (const auto& e : env) env_c.push_back(const_cast<char*>(e.c_str()));
  env_c.push_back(nullptr);

  const auto started = std::chrono::steady_clock::now();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(ErrnoText("fork"));
  if (pid == 0) {
    BecomeChild(parent, in_read.get(), out_write.get(), err_write.get());
    ::execve(argv_c[0], argv_c.data(), env_c.data());
    const std::string message = "exec " + argv[0] + ": " + std::strerror(errno) + "\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, message.data(), message.size());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from here: no window where a kill of the group misses
  in_read.reset();
  out_write.reset();
  err_write.reset();
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw std::runtime_error(ErrnoText("pidfd_open"));
  }
  for (int fd : {out_read.get(), err_read.get(), in_write.get()})
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  // A child that stops reading its stdin must give us EPIPE, not kill the test.
  ::signal(SIGPIPE, SIG_IGN);
  const std::string_view input = options.stdin_data ? std::string_view(*options.stdin_data) : std::string_view();
  std::size_t input_done = 0;
  if (in_write && input.empty()) in_write.reset();
  const auto deadline = started + (options.timeout.count() > 0 ? options.timeout : 120s);
  std::optional<std::chrono::steady_clock::time_point> exited_at;
  bool reaped = false;
  int status = 0;
  std::vector<char> buffer(1 << 16);

  auto kill_all = [&] {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  };

  while (out_read || err_read || !reaped) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline && !result.timed_out) {
      result.timed_out = true;
      kill_all();
    }
    // After the process exited, a descendant holding the pipes gets 2 s grace.
    if (exited_at && now - *exited_at > 2s && (out_read || err_read)) {
      result.output_held_open = true;
      out_read.reset();
      err_read.reset();
      continue;
    }
    std::vector<pollfd> fds;
    if (out_read) fds.push_back({out_read.get(), POLLIN, 0});
    if (err_read) fds.push_back({err_read.get(), POLLIN, 0});
    if (in_write) fds.push_back({in_write.get(), POLLOUT, 0});
    if (!reaped) fds.push_back({pidfd.get(), POLLIN, 0});
    int wait_ms = 100;
    if (::poll(fds.data(), fds.size(), wait_ms) < 0) {
      if (errno == EINTR) continue;
      kill_all();
      throw std::runtime_error(ErrnoText("poll"));
    }
    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == pidfd.get()) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          reaped = true;
          exited_at = std::chrono::steady_clock::now();
        }
      } else if (p.fd == in_write.get()) {
        ssize_t n = ::write(in_write.get(), input.data() + input_done, input.size() - input_done);
        if (n > 0) input_done += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN && errno != EINTR) in_write.reset();  // EPIPE: it stopped reading
        else if (input_done == input.size()) in_write.reset();
      } else {
        const bool is_out = out_read && p.fd == out_read.get();
        ssize_t n = ::read(p.fd, buffer.data(), buffer.size());
        if (n > 0) {
          if (is_out && !result.first_stdout)
            result.first_stdout = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started);
          (is_out ? result.out : result.err).append(buffer.data(), static_cast<std::size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          (is_out ? out_read : err_read).reset();
        }
      }
    }
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  if (result.timed_out) ::kill(-pid, SIGKILL);  // whatever of the group is left
  return result;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env, const fs::path& output_prefix,
                                     OutputSink stdout_sink)
    : out_(output_prefix.string() + ".out"), err_(output_prefix.string() + ".err") {
  Fd in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Fd out, sink_read;
  if (stdout_sink) {
    std::tie(sink_read, out) = Pipe();
    stop_.reset(::eventfd(0, EFD_CLOEXEC));
    if (!stop_) throw std::runtime_error(ErrnoText("eventfd"));
  } else {
    out.reset(::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  }
  Fd err(::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!in || !out || !err) throw std::runtime_error(ErrnoText("open output of " + argv[0]));
  std::vector<std::string> merged = MergedEnvironment(env);
  std::vector<char*> argv_c, env_c;
  for (const auto& a : argv) argv_c.push_back(const_cast<char*>(a.c_str()));
  argv_c.push_back(nullptr);
  for (const auto& e : merged) env_c.push_back(const_cast<char*>(e.c_str()));
  env_c.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(ErrnoText("fork"));
  if (pid_ == 0) {
    BecomeChild(parent, in.get(), out.get(), err.get());
    ::execve(argv_c[0], argv_c.data(), env_c.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);
  if (stdout_sink) {
    reader_ = std::thread([this, read_end = std::move(sink_read), sink = std::move(stdout_sink)] {
      DrainUntilEof(read_end.get(), stop_.get(), sink);
      reader_ended_ = true;
    });
  }
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (reader_.joinable()) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_.get(), &one, sizeof one);
    reader_.join();
  }
}

std::optional<int> BackgroundProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!reaped_) {
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    pollfd p{pidfd.get(), POLLIN, 0};
    if (!pidfd || ::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    if (::waitpid(pid_, &status_, 0) != pid_) return std::nullopt;
    reaped_ = true;
  }
  if (reader_.joinable()) {
    // The reader ends at EOF, once nothing holds stdout's write end.
    while (!reader_ended_ && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    if (!reader_ended_) return std::nullopt;
    reader_.join();
  }
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return WEXITSTATUS(status_);
}

std::string BackgroundProcess::Stdout() const { return stop_ ? std::string() : ReadFileText(out_); }
std::string BackgroundProcess::Stderr() const { return ReadFileText(err_); }

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (!::mkdtemp(pattern.data())) throw std::runtime_error(ErrnoText("mkdtemp " + pattern));
  path_ = pattern;
}

TempDir::~TempDir() {
  // Deepest first; never recurse into a mount (it could be a host directory).
  auto mounts = MountsUnder(path_);
  std::sort(mounts.rbegin(), mounts.rend());
  for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
  if (!MountsUnder(path_).empty()) return;  // leave it rather than delete through a mount
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

fs::path BinDir() {
  if (const char* build = std::getenv("UVMSHIM_BUILD"); build && *build) return fs::path(build) / "bin";
  return fs::path(UVMSHIM_BINARY_DIR) / "bin";
}

fs::path UvmctlBinary() { return BinDir() / "uvmctl"; }

fs::path BusyboxRootfs() { return UVMSHIM_BUSYBOX_ROOTFS; }

fs::path BootFilesCandidateDir() {
  if (const char* images = std::getenv("UVMSHIM_IMAGES"); images && *images) return images;
  return BinDir().parent_path() / "images";
}

std::optional<fs::path> BootFilesDir() {
  const fs::path dir = BootFilesCandidateDir();
  if (fs::is_regular_file(dir / "vmlinuz") && fs::is_regular_file(dir / "initrd.img")) return dir;
  return std::nullopt;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit))
      pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}

bool PidAlive(pid_t pid) {
  const std::string stat = ReadFileText("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  if (stat.empty() || paren == std::string::npos || paren + 2 >= stat.size()) return false;
  return stat[paren + 2] != 'Z' && stat[paren + 2] != 'X';
}

std::string CommandLine(pid_t pid) {
  std::string text = ReadFileText("/proc/" + std::to_string(pid) + "/cmdline");
  while (!text.empty() && text.back() == '\0') text.pop_back();
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

std::vector<pid_t> PidsReferringTo(const fs::path& dir) {
  const std::string needle = dir.string();
  std::vector<pid_t> found;
  for (pid_t pid : AllPids()) {
    if (pid == ::getpid() || !PidAlive(pid)) continue;
    const fs::path proc = "/proc/" + std::to_string(pid);
    bool refers = CommandLine(pid).find(needle) != std::string::npos ||
                  ReadFileText(proc / "environ").find(needle) != std::string::npos;  // $UVMSHIM_ROOT
    for (const char* link : {"exe", "cwd", "root"}) {
      std::error_code ec;
      auto target = fs::read_symlink(proc / link, ec);
      if (!ec && IsAtOrBelow(target.string(), needle)) refers = true;
    }
    if (refers) found.push_back(pid);
  }
  return found;
}

std::vector<std::string> MountsUnder(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& entry : ReadMountInfo())
    if (IsAtOrBelow(entry.mount_point, dir.string())) out.push_back(std::move(entry.mount_point));
  return out;
}

std::vector<std::string> SandboxCgroups(const std::string& ns, const std::string& id) {
  const std::string relative = "uvmshim/" + ns + "-" + id;  // host::SandboxCgroupParent
  std::vector<std::string> found;
  std::error_code ec;
  if (fs::exists(fs::path("/sys/fs/cgroup") / relative, ec)) found.push_back("/sys/fs/cgroup/" + relative);
  for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    const fs::path candidate = hierarchy.path() / relative;
    if (fs::exists(candidate, ec)) found.push_back(candidate.string());
  }
  return found;
}

std::vector<std::string> EntriesBelow(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    out.push_back(it->path().lexically_relative(dir).string());  // no canonical(): entries may vanish meanwhile
  std::sort(out.begin(), out.end());
  return out;
}

std::string Sha256Hex(const std::string& data) {
  ProcessOptions options;
  options.stdin_data = data;
  options.timeout = 60s;
  auto result = RunProcess({"/usr/bin/sha256sum"}, options);
  if (result.exit_code != 0) throw std::runtime_error("sha256sum failed: " + result.Describe());
  return result.out.substr(0, result.out.find(' '));
}

std::string ShellQuote(const std::string& word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// ---- Tmux -------------------------------------------------------------------

Tmux::Tmux(const fs::path& dir, const std::string& command, int width, int height)
    : socket_(dir / "tmux.sock"), config_(dir / "tmux.conf"), status_file_(dir / "tmux-pane-status") {
  {
    std::ofstream conf(config_);
    conf << "set-option -g status off\n"
            "set-option -g history-limit 5000\n"
            "set-option -wg remain-on-exit on\n"
            "set-option -g default-terminal screen\n";
  }
  // The pane's shell records the command's status: tmux's own
  // #{pane_dead_status} was seen missing (pane process left a zombie).
  const std::string pane = command + "; echo $? > " + ShellQuote(status_file_.string());
  Command({"-f", config_.string(), "new-session", "-d", "-s", "t", "-x", std::to_string(width), "-y",
           std::to_string(height), pane});
  server_pid_ = static_cast<pid_t>(std::stol(Command({"display-message", "-p", "-t", "t", "#{pid}"})));
  pane_pid_ = static_cast<pid_t>(std::stol(Command({"display-message", "-p", "-t", "t", "#{pane_pid}"})));
}

Tmux::~Tmux() {
  ProcessOptions options;
  options.timeout = 10s;
  RunProcess({"/usr/bin/tmux", "-S", socket_.string(), "kill-server"}, options);
  // The pane is a session (and process group) of its own: its shell and command.
  if (pane_pid_ > 0 && !WaitFor([&] { return !PidAlive(pane_pid_); }, 3s)) ::kill(-pane_pid_, SIGKILL);
  if (server_pid_ > 0 && !WaitFor([&] { return !PidAlive(server_pid_); }, 3s)) ::kill(server_pid_, SIGKILL);
  std::error_code ignored;
  fs::remove(socket_, ignored);
  fs::remove(config_, ignored);
  fs::remove(status_file_, ignored);
}

std::string Tmux::Command(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/tmux", "-S", socket_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions options;
  options.timeout = 20s;
  auto result = RunProcess(argv, options);
  if (result.exit_code != 0) throw std::runtime_error("tmux failed: " + result.Describe());
  std::string out = result.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

void Tmux::Type(const std::string& text, bool enter) {
  if (!text.empty()) Command({"send-keys", "-t", "t", "-l", text});
  if (enter) Command({"send-keys", "-t", "t", "Enter"});
}

std::string Tmux::Capture() { return Command({"capture-pane", "-p", "-J", "-t", "t", "-S", "-5000"}); }

bool Tmux::WaitForText(const std::string& needle, std::chrono::milliseconds timeout) {
  return WaitFor([&] { return Capture().find(needle) != std::string::npos; }, timeout, 200ms);
}

void Tmux::Resize(int width, int height) {
  Command({"resize-window", "-t", "t", "-x", std::to_string(width), "-y", std::to_string(height)});
}

std::pair<int, int> Tmux::PaneSize() {
  std::istringstream s(Command({"display-message", "-p", "-t", "t", "#{pane_width} #{pane_height}"}));
  int w = 0, h = 0;
  s >> w >> h;
  return {w, h};
}

bool Tmux::PaneDead() { return Command({"display-message", "-p", "-t", "t", "#{pane_dead}"}) == "1"; }

std::optional<int> Tmux::PaneExitStatus() {
  std::string status;
  WaitFor(
      [&] {
        status = ReadFileText(status_file_);
        return status.ends_with("\n");
      },
      10s, 100ms);
  if (status.empty()) return std::nullopt;
  return std::stoi(status);
}

}  // namespace uvmshim::uvmctl_test
