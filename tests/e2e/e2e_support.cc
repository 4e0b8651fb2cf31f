#include "e2e_support.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/mountinfo.h"

extern char** environ;

namespace uvmshim::e2e {
namespace fs = std::filesystem;

namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", what, ErrnoText(errno)));
}

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(other.Release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) { Reset(); fd_ = other.Release(); }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { int fd = fd_; fd_ = -1; return fd; }
  void Reset() { if (fd_ >= 0) ::close(fd_); fd_ = -1; }

 private:
  int fd_ = -1;
};

// Writing stdin to a child that already exited must give EPIPE, not kill the test.
void IgnoreSigpipeOnce() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

std::string JoinArgs(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a.find_first_of(" \t'\"") == std::string::npos ? a : "'" + a + "'";
  }
  return s;
}

// environ plus overrides (NAME=VALUE; a later entry with the same NAME wins).
std::vector<std::string> MergedEnv(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> by_name;
  std::vector<std::string> order;
  auto add = [&](const std::string& entry) {
    auto name = entry.substr(0, entry.find('='));
    if (!by_name.count(name)) order.push_back(name);
    by_name[name] = entry;
  };
  for (char** e = environ; e && *e; ++e) add(*e);
  for (const auto& e : extra) add(e);
  std::vector<std::string> env;
  for (const auto& n : order) env.push_back(by_name[n]);
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> v;
  for (auto& s : strings) v.push_back(s.data());
  v.push_back(nullptr);
  return v;
}

void SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) ThrowErrno("fcntl(O_NONBLOCK)");
}

// Reads what is available; returns false at EOF (or EIO on a pty master whose slave closed).
bool DrainInto(int fd, std::string& sink) {
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) { sink.append(buf, static_cast<size_t>(n)); continue; }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return true;
    return false;  // EIO from a pty master: the terminal is gone
  }
}

void DecodeStatus(int status, CommandResult& r) {
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) { r.exit_code = -1; r.term_signal = WTERMSIG(status); }
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string CommandResult::Describe() const {
  std::string how = timed_out ? "timed out" :
                    term_signal ? fmt::format("was killed by signal {}", term_signal) :
                                  fmt::format("exited {}", exit_code);
  auto clip = [](const std::string& s) {
    return s.size() > 4000 ? s.substr(0, 2000) + "\n...[" + std::to_string(s.size() - 4000) +
                                 " bytes]...\n" + s.substr(s.size() - 2000)
                           : s;
  };
  return fmt::format("`{}` {} after {} ms\n--- stdout:\n{}\n--- stderr:\n{}", JoinArgs(argv), how,
                     elapsed.count(), clip(out), clip(err));
}

CommandResult RunCommand(const std::vector<std::string>& argv, const CommandOptions& options) {
  if (argv.empty()) throw std::invalid_argument("RunCommand: empty argv");
  IgnoreSigpipeOnce();
  CommandResult result;
  result.argv = argv;
  const auto start = std::chrono::steady_clock::now();

  std::vector<std::string> args = argv;
  std::vector<std::string> env = MergedEnv(options.env);
  auto c_args = CStrings(args);
  auto c_env = CStrings(env);

  Fd in_r, in_w, out_r, out_w, err_r, err_w, master, slave;
  if (options.use_pty) {
    int m = -1, s = -1;
    struct winsize ws{};
    ws.ws_row = 24;
    ws.ws_col = 80;
    if (::openpty(&m, &s, nullptr, nullptr, &ws) < 0) ThrowErrno("openpty");
    master = Fd(m);
    slave = Fd(s);
    ::fcntl(m, F_SETFD, FD_CLOEXEC);
    ::fcntl(s, F_SETFD, FD_CLOEXEC);
  } else {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) ThrowErrno("pipe2(stdin)");
    in_r = Fd(p[0]); in_w = Fd(p[1]);
    if (::pipe2(p, O_CLOEXEC) < 0) ThrowErrno("pipe2(stdout)");
    out_r = Fd(p[0]); out_w = Fd(p[1]);
    if (::pipe2(p, O_CLOEXEC) < 0) ThrowErrno("pipe2(stderr)");
    err_r = Fd(p[0]); err_w = Fd(p[1]);
  }

  pid_t pid = ::fork();
  if (pid < 0) ThrowErrno("fork for " + JoinArgs(argv));
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    if (options.use_pty) {
      ::setsid();
      ::ioctl(slave.get(), TIOCSCTTY, 0);
      ::dup2(slave.get(), 0); ::dup2(slave.get(), 1); ::dup2(slave.get(), 2);
    } else {
      ::setpgid(0, 0);
      ::dup2(in_r.get(), 0); ::dup2(out_w.get(), 1); ::dup2(err_w.get(), 2);
    }
    ::execvpe(c_args[0], c_args.data(), c_env.data());
    std::string msg = fmt::format("exec {}: {}\n", args[0], ErrnoText(errno));
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  // The child leads its own process group (pty: its own session), so a timeout
  // can end everything it started by that one id.
  if (!options.use_pty) ::setpgid(pid, pid);

  in_r.Reset(); out_w.Reset(); err_w.Reset(); slave.Reset();
  int out_fd = options.use_pty ? master.get() : out_r.get();
  SetNonBlocking(out_fd);
  if (!options.use_pty) { SetNonBlocking(err_r.get()); SetNonBlocking(in_w.get()); }

  size_t stdin_written = 0;
  int stdin_fd = options.use_pty ? master.get() : in_w.get();
  bool stdin_open = true;
  if (!options.use_pty && options.stdin_data.empty()) { in_w.Reset(); stdin_open = false; }
  if (options.use_pty && options.stdin_data.empty()) stdin_open = false;

  bool out_open = true, err_open = !options.use_pty;
  bool reaped = false;
  int status = 0;
  const auto deadline = start + options.timeout;

  while (out_open || err_open || !reaped) {
    if (!reaped) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) reaped = true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      result.timed_out = true;
      break;
    }
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({out_fd, POLLIN, 0});
    if (err_open) fds.push_back({err_r.get(), POLLIN, 0});
    if (stdin_open && !options.use_pty) fds.push_back({stdin_fd, POLLOUT, 0});
    if (fds.empty()) {
      ::poll(nullptr, 0, 20);
      continue;
    }
    int n = ::poll(fds.data(), fds.size(), 50);
    if (n < 0 && errno != EINTR) ThrowErrno("poll");
    if (out_open) out_open = DrainInto(out_fd, result.out);
    if (err_open) err_open = DrainInto(err_r.get(), result.err);
    if (stdin_open) {
      while (stdin_written < options.stdin_data.size()) {
        ssize_t w = ::write(stdin_fd, options.stdin_data.data() + stdin_written,
                            std::min<size_t>(65536, options.stdin_data.size() - stdin_written));
        if (w > 0) { stdin_written += static_cast<size_t>(w); continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        stdin_written = options.stdin_data.size();  // EPIPE: the reader is gone
      }
      if (stdin_written >= options.stdin_data.size()) {
        stdin_open = false;
        if (!options.use_pty) in_w.Reset();
      }
    }
    // A pty master keeps "open" while any process holds the slave; once our child is
    // gone, whatever is left in the buffer was read above.
    if (options.use_pty && reaped && out_open) {
      DrainInto(out_fd, result.out);
      out_open = false;
    }
  }
  if (result.timed_out) {
    ::kill(-pid, SIGKILL);
    if (!reaped) { ::waitpid(pid, &status, 0); reaped = true; }
  }
  DecodeStatus(status, result);
  if (result.timed_out) result.exit_code = -1;
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return result;
}

// ---- BackgroundCommand -------------------------------------------------------

BackgroundCommand::BackgroundCommand(const std::vector<std::string>& argv,
                                     const fs::path& output_file)
    : argv_(argv), output_file_(output_file) {
  if (argv.empty()) throw std::invalid_argument("BackgroundCommand: empty argv");
  IgnoreSigpipeOnce();
  Fd out(::open(output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out.valid()) ThrowErrno("open " + output_file.string());
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null.valid()) ThrowErrno("open /dev/null");
  std::vector<std::string> args = argv;
  auto c_args = CStrings(args);
  pid_ = ::fork();
  if (pid_ < 0) ThrowErrno("fork for " + JoinArgs(argv));
  if (pid_ == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    ::setpgid(0, 0);
    ::dup2(null.get(), 0); ::dup2(out.get(), 1); ::dup2(out.get(), 2);
    ::execvp(c_args[0], c_args.data());
    std::string msg = fmt::format("exec {}: {}\n", args[0], ErrnoText(errno));
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);
}

BackgroundCommand::~BackgroundCommand() {
  if (!reaped_ && pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
}

std::optional<int> BackgroundCommand::Wait(std::chrono::milliseconds timeout) {
  bool done = WaitFor([&] {
    if (reaped_) return true;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
    return reaped_;
  }, timeout);
  if (!done) return std::nullopt;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

bool BackgroundCommand::Exited() {
  if (!reaped_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
  return reaped_;
}

void BackgroundCommand::Kill(int signal) {
  if (!reaped_) ::kill(-pid_, signal);
}

std::string BackgroundCommand::Output() const { return ReadFile(output_file_); }

// ---- TempDir -------------------------------------------------------------------

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string templ = fmt::format("{}/{}-XXXXXX", base && *base ? base : "/tmp", prefix);
  if (!::mkdtemp(templ.data())) ThrowErrno("mkdtemp " + templ);
  path_ = templ;
}

TempDir::~TempDir() {
  // Never let remove_all walk into something still mounted below us.
  for (const auto& m : MountsUnder(path_)) ::umount2(m.c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(path_, ec);
  if (ec) spdlog::warn("removing temp dir {}: {}", path_.string(), ec.message());
}

// ---- paths -----------------------------------------------------------------------

fs::path SourceDir() {
  if (const char* s = std::getenv("UVMSHIM_SOURCE"); s && *s) return s;
  return UVMSHIM_SOURCE_DIR;
}

fs::path BuildDir() {
  if (const char* s = std::getenv("UVMSHIM_BUILD"); s && *s) return s;
  return UVMSHIM_BINARY_DIR;
}

std::optional<fs::path> UvmShimBinary() {
  auto p = BuildDir() / "bin" / "containerd-shim-uvm-v1";
  if (::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p)) return p;
  return std::nullopt;
}

std::optional<fs::path> UvmBootFilesDir() {
  fs::path dir = BuildDir() / "images";
  if (const char* s = std::getenv("UVMSHIM_IMAGES"); s && *s) dir = s;
  if (fs::exists(dir / "vmlinuz") && fs::exists(dir / "initrd.img")) return dir;
  return std::nullopt;
}

// ---- ContainerdEnv ----------------------------------------------------------------

ContainerdEnv::ContainerdEnv(const Options& options)
    : script_(SourceDir() / "tests" / "e2e" / "containerd-env.sh") {
  std::vector<std::string> argv{script_.string(), "start"};
  if (!options.shim_dir.empty()) { argv.push_back("--shim-dir"); argv.push_back(options.shim_dir); }
  fs::path image = options.image;
#ifdef UVMSHIM_E2E_IMAGE
  if (image.empty() && fs::exists(UVMSHIM_E2E_IMAGE)) image = UVMSHIM_E2E_IMAGE;
#endif
  if (!image.empty()) { argv.push_back("--image"); argv.push_back(image); }
  for (const auto& e : options.containerd_env) { argv.push_back("--env"); argv.push_back(e); }
  if (!options.config_extra.empty()) { argv.push_back("--config-extra"); argv.push_back(options.config_extra); }
  if (options.cri) argv.push_back("--cri");
  if (!options.netns.empty()) { argv.push_back("--netns"); argv.push_back(options.netns); }

  auto r = RunCommand(argv, CommandOptions().WithTimeout(120s));
  auto out = Trim(r.out);
  auto last_nl = out.rfind('\n');
  auto dir = last_nl == std::string::npos ? out : out.substr(last_nl + 1);
  if (!r.ok() || dir.empty() || !fs::exists(fs::path(dir) / "env")) {
    if (!dir.empty() && dir.front() == '/' && fs::exists(dir)) {
      RunCommand({script_.string(), "stop", dir}, CommandOptions().WithTimeout(120s));
    }
    throw std::runtime_error("starting a private containerd failed: " + r.Describe());
  }
  dir_ = dir;

  std::ifstream env(dir_ / "env");
  std::string line;
  while (std::getline(env, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto name = line.substr(0, eq), value = line.substr(eq + 1);
    if (value == "''") value.clear();
    if (name == "CONTAINERD_ADDRESS") address_ = value;
    else if (name == "CONTAINERD_NAMESPACE") namespace_ = value;
    else if (name == "CENV_IMAGE_REF") image_ref_ = value;
  }
  if (address_.empty() || namespace_.empty()) {
    RunCommand({script_.string(), "stop", dir_.string()}, CommandOptions().WithTimeout(120s));
    throw std::runtime_error("containerd-env: incomplete env file in " + dir_.string());
  }
}

ContainerdEnv::~ContainerdEnv() {
  auto r = RunCommand({script_.string(), "stop", dir_.string()}, CommandOptions().WithTimeout(180s));
  if (!r.ok()) spdlog::error("stopping private containerd {}: {}", dir_.string(), r.Describe());
}

fs::path ContainerdEnv::BundleDir(const std::string& id) const {
  return state_dir() / "io.containerd.runtime.v2.task" / namespace_ / id;
}

std::vector<std::string> ContainerdEnv::CtrArgv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"ctr", "-a", address_, "-n", namespace_};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

CommandResult ContainerdEnv::Ctr(const std::vector<std::string>& args,
                                 const CommandOptions& options) const {
  return RunCommand(CtrArgv(args), options);
}

std::optional<pid_t> ContainerdEnv::ContainerdPid() const {
  std::ifstream in(dir_ / "containerd.pid");
  pid_t pid = 0;
  if (!(in >> pid) || !PidAlive(pid)) return std::nullopt;
  auto exe = ProcessExeName(pid);
  if (!exe || *exe != "containerd") return std::nullopt;
  return pid;
}

void ContainerdEnv::Restart() {
  auto r = RunCommand({script_.string(), "restart", dir_.string()}, CommandOptions().WithTimeout(60s));
  if (!r.ok()) throw std::runtime_error("restarting containerd failed: " + r.Describe());
}

std::string ContainerdEnv::LogTail(int lines) const {
  // Start-up chatter ("loading plugin ...") says nothing about a failure: leave it out.
  std::ifstream in(log_path());
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    if (line.find("loading plugin") == std::string::npos) kept.push_back(line);
  }
  std::string tail = "\n--- containerd log (" + log_path().string() + "), last lines:\n";
  for (size_t i = kept.size() > static_cast<size_t>(lines) ? kept.size() - lines : 0; i < kept.size(); ++i) {
    tail += kept[i] + "\n";
  }
  return tail;
}

// ---- /proc --------------------------------------------------------------------------

std::vector<std::string> ProcessArgs(pid_t pid) {
  auto raw = ReadFile(fs::path("/proc") / std::to_string(pid) / "cmdline");
  std::vector<std::string> args;
  size_t pos = 0;
  while (pos < raw.size()) {
    auto end = raw.find('\0', pos);
    if (end == std::string::npos) end = raw.size();
    args.push_back(raw.substr(pos, end - pos));
    pos = end + 1;
  }
  return args;
}

std::optional<std::string> ProcessExeName(pid_t pid) {
  std::error_code ec;
  auto target = fs::read_symlink(fs::path("/proc") / std::to_string(pid) / "exe", ec);
  if (ec) return std::nullopt;
  auto name = target.filename().string();
  // A deleted binary reads as "name (deleted)".
  if (auto pos = name.find(" (deleted)"); pos != std::string::npos) name.erase(pos);
  return name;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const auto name = entry.path().filename().string();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
      pids.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return pids;
}

namespace {
// Field 4 (ppid) and field 3 (state) of /proc/PID/stat.
std::optional<std::pair<char, pid_t>> StateAndParent(pid_t pid) {
  auto stat = ReadFile(fs::path("/proc") / std::to_string(pid) / "stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 4 > stat.size()) return std::nullopt;
  std::istringstream rest(stat.substr(close + 2));
  char state = 0;
  pid_t ppid = 0;
  if (!(rest >> state >> ppid)) return std::nullopt;
  return std::make_pair(state, ppid);
}
}  // namespace

bool PidAlive(pid_t pid) {
  auto s = StateAndParent(pid);
  return s && s->first != 'Z' && s->first != 'X';
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  for (pid_t pid : AllPids()) {
    auto s = StateAndParent(pid);
    if (s && s->second == parent) children.push_back(pid);
  }
  return children;
}

std::vector<pid_t> DescendantsOf(pid_t ancestor) {
  std::map<pid_t, pid_t> parent_of;
  for (pid_t pid : AllPids()) {
    if (auto s = StateAndParent(pid)) parent_of[pid] = s->second;
  }
  std::vector<pid_t> result;
  for (const auto& [pid, ppid] : parent_of) {
    for (pid_t p = ppid, hops = 0; p > 1 && hops < 64; ++hops) {
      if (p == ancestor) { result.push_back(pid); break; }
      auto it = parent_of.find(p);
      if (it == parent_of.end()) break;
      p = it->second;
    }
  }
  return result;
}

std::vector<pid_t> PidsReferringTo(const fs::path& dir) {
  const std::string d = dir.string();
  auto refers = [&](const std::string& s) {
    return s == d || (s.size() > d.size() && s.compare(0, d.size(), d) == 0 && s[d.size()] == '/') ||
           s.find(d + "/") != std::string::npos;
  };
  std::vector<pid_t> result;
  const pid_t self = ::getpid();
  for (pid_t pid : AllPids()) {
    if (pid == self || !PidAlive(pid)) continue;
    bool hit = false;
    for (const auto& a : ProcessArgs(pid)) hit = hit || refers(a);
    std::error_code ec;
    auto cwd = fs::read_symlink(fs::path("/proc") / std::to_string(pid) / "cwd", ec);
    if (!ec && refers(cwd.string())) hit = true;
    if (hit) result.push_back(pid);
  }
  return result;
}

std::optional<pid_t> FindShimPid(const std::string& address, const std::string& id) {
  for (pid_t pid : AllPids()) {
    if (!PidAlive(pid)) continue;
    auto args = ProcessArgs(pid);
    if (args.empty()) continue;
    auto value_of = [&](const std::string& flag) -> std::optional<std::string> {
      for (size_t i = 0; i < args.size(); ++i) {
        if ((args[i] == flag || args[i] == "-" + flag) && i + 1 < args.size()) return args[i + 1];
        for (const auto& prefix : {flag + "=", "-" + flag + "="}) {
          if (args[i].rfind(prefix, 0) == 0) return args[i].substr(prefix.size());
        }
      }
      return std::nullopt;
    };
    if (value_of("-address") != address || value_of("-id") != id) continue;
    if (args.back() == "start" || args.back() == "delete") continue;
    return pid;
  }
  return std::nullopt;
}

std::vector<std::string> MountsUnder(const fs::path& dir) {
  const std::string d = dir.string();
  std::vector<std::string> mounts;
  for (auto& entry : ReadMountInfo())
    if (entry.mount_point == d || entry.mount_point.starts_with(d + "/")) mounts.push_back(std::move(entry.mount_point));
  // Deepest first, so they can be unmounted in order.
  std::sort(mounts.begin(), mounts.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return mounts;
}

std::optional<long> VmRssKiB(pid_t pid) {
  std::ifstream in(fs::path("/proc") / std::to_string(pid) / "status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kib = 0;
      if (in >> kib) return kib;
      return std::nullopt;
    }
    in.ignore(1 << 16, '\n');
  }
  return std::nullopt;
}

std::string Sha256Hex(const std::string& data) {
  auto r = RunCommand({"sha256sum"}, CommandOptions().WithStdin(data).WithTimeout(60s));
  if (!r.ok() || r.out.size() < 64) throw std::runtime_error("sha256sum failed: " + r.Describe());
  return r.out.substr(0, 64);
}

}  // namespace uvmshim::e2e
