// Support for the uvmctl tests: running the real uvmctl binary (fork/exec
// with pipes, a deadline, SIGKILL of its process group by pid on timeout), a
// private $UVMSHIM_ROOT and rootfs per test, leak checks (state, sockets,
// bundles, processes, mounts, cgroups) and a private tmux server for
// terminal cases. Nothing here is shared between concurrent test processes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/unique_fd.h"

namespace uvmshim::uvmctl_test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct ProcessOptions {
  std::optional<std::string> stdin_data;  // written then closed (EOF); nullopt: /dev/null
  std::chrono::milliseconds timeout{0};    // 0: the default (120 s; the fixture's start timeout)
  std::vector<std::string> env;           // NAME=VALUE, added to (or replacing in) ours
};

inline ProcessOptions WithTimeout(std::chrono::milliseconds timeout) {
  ProcessOptions options;
  options.timeout = timeout;
  return options;
}

struct ProcessResult {
  std::vector<std::string> argv;
  int exit_code = -1;        // -1 when killed by a signal
  int term_signal = 0;
  bool timed_out = false;
  // The process exited but something it started still held its stdout or
  // stderr open (a leaked descriptor): the read was cut short.
  bool output_held_open = false;
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
  std::optional<std::chrono::milliseconds> first_stdout;  // when stdout's first byte came

  // "`argv` exited 3 after 120 ms\n--- stdout ---\n...\n--- stderr ---\n..." (truncated).
  std::string Describe() const;
};

// Runs argv[0] (an absolute path) with pipes for stdin/stdout/stderr in its own
// process group; on timeout SIGKILLs that group and the process by pid.
// Throws std::runtime_error only when it cannot be started.
ProcessResult RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// Where a BackgroundProcess's stdout goes instead of its file: a reader thread
// hands each chunk to the sink as it arrives and keeps none of it, so a flood
// of any size costs neither memory nor disk.
using OutputSink = std::function<void(std::string_view chunk)>;

// A process started in its own process group with stdin from /dev/null and
// stdout/stderr into files (stdout into `stdout_sink` when one is given), for
// cases that signal it while it runs. The destructor SIGKILLs its group and
// the process (by pid) if it still runs.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const fs::path& output_prefix,  // <prefix>.out, <prefix>.err
                    OutputSink stdout_sink = nullptr);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Exit code (128+N when killed by signal N), or nullopt on timeout. With a
  // sink, it also waits (within the same timeout) until the sink has had
  // every byte of stdout: nullopt if something still holds stdout open.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Stdout() const;  // empty with a sink
  std::string Stderr() const;

 private:
  fs::path out_, err_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  UniqueFd stop_;  // with a sink only: eventfd that ends its reader early (destructor)
  std::atomic<bool> reader_ended_{false};
  std::thread reader_;  // owns the pipe's read end; feeds the sink
};

// mkdtemp directory (short, under /tmp: socket paths stay below 108 bytes).
// The destructor detaches any mount left below it, then removes it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Build tree locations (compile-time, overridable by $UVMSHIM_BUILD).
fs::path BinDir();
fs::path UvmctlBinary();
fs::path BusyboxRootfs();
// Directory with vmlinuz and initrd.img the shim will boot ($UVMSHIM_IMAGES or
// <build>/images), if both exist.
std::optional<fs::path> BootFilesDir();
fs::path BootFilesCandidateDir();  // where BootFilesDir looks

// ---- leak checks ------------------------------------------------------------

std::vector<pid_t> AllPids();
bool PidAlive(pid_t pid);  // exists and is not a zombie
std::string CommandLine(pid_t pid);  // NULs as spaces; empty if gone
// Live processes (not us) whose command line, environment, executable, cwd or
// root names `dir` or a path below it.
std::vector<pid_t> PidsReferringTo(const fs::path& dir);
// Mount points at or below `dir` (/proc/self/mountinfo).
std::vector<std::string> MountsUnder(const fs::path& dir);
// Cgroup directories a process-isolation sandbox of (ns, id) would have (any
// hierarchy, v1 or v2) that exist.
std::vector<std::string> SandboxCgroups(const std::string& ns, const std::string& id);
// Every path below `dir` (recursively), relative to it, sorted.
std::vector<std::string> EntriesBelow(const fs::path& dir);

// SHA-256 of data, hex (through /usr/bin/sha256sum).
std::string Sha256Hex(const std::string& data);

template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout,
             std::chrono::milliseconds step = 100ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

// ---- a private tmux server --------------------------------------------------

// `tmux -S <dir>/tmux.sock -f <dir>/tmux.conf`: one session whose only pane
// runs `command` (a shell command line, not exec'd: the pane's shell records
// its status) in a width x height window, status line off, the pane kept after
// it ends. The destructor kills the server and, by pid, the server and the
// pane's process group if they survive.
class Tmux {
 public:
  Tmux(const fs::path& dir, const std::string& command, int width, int height);
  ~Tmux();
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  // Types `text` literally, then Enter when `enter`.
  void Type(const std::string& text, bool enter = true);
  // Sends one key by tmux name ("C-c", "Enter").
  void Key(const std::string& key) { Command({"send-keys", "-t", "t", key}); }
  // The pane's visible text plus its history.
  std::string Capture();
  bool WaitForText(const std::string& needle, std::chrono::milliseconds timeout);
  void Resize(int width, int height);
  std::pair<int, int> PaneSize();  // {width, height}
  bool PaneDead();
  // The command's exit status once it ended (128+N if a signal killed it);
  // nullopt if it has not ended within 10 s.
  std::optional<int> PaneExitStatus();
  pid_t pane_pid() const { return pane_pid_; }
  pid_t server_pid() const { return server_pid_; }

  // `tmux -S sock args...`; throws with its stderr when it fails.
  std::string Command(const std::vector<std::string>& args);

 private:
  fs::path socket_;
  fs::path config_;
  fs::path status_file_;
  pid_t server_pid_ = -1;
  pid_t pane_pid_ = -1;
};

// Shell-quotes one word for `sh -c`.
std::string ShellQuote(const std::string& word);

}  // namespace uvmshim::uvmctl_test
