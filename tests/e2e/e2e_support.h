// Support for end-to-end tests that drive a real containerd through `ctr`:
// running commands (pipes or a pty, with timeouts), a private containerd
// (tests/e2e/containerd-env.sh) as an RAII object, and /proc inspection for
// leak checks. Everything is ended by pid; nothing is shared between copies.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace uvmshim::e2e {

using namespace std::chrono_literals;

struct CommandOptions {
  std::string stdin_data;             // written to the child's stdin, then EOF (pipes only)
  bool use_pty = false;               // stdin/stdout/stderr on one pty (controlling terminal)
  std::chrono::milliseconds timeout = 60s;
  std::vector<std::string> env;       // extra NAME=VALUE entries

  CommandOptions& WithTimeout(std::chrono::milliseconds t) { timeout = t; return *this; }
  CommandOptions& WithPty() { use_pty = true; return *this; }
  CommandOptions& WithStdin(std::string data) { stdin_data = std::move(data); return *this; }
  CommandOptions& WithEnv(std::string name_value) { env.push_back(std::move(name_value)); return *this; }
};

struct CommandResult {
  std::vector<std::string> argv;
  int exit_code = -1;                 // -1 when killed by a signal
  int term_signal = 0;
  bool timed_out = false;
  std::string out;                    // with use_pty: everything the terminal showed
  std::string err;
  std::chrono::milliseconds elapsed{0};

  bool ok() const { return exit_code == 0 && !timed_out; }
  // "`argv` exited 3 after 120 ms; stdout: ...; stderr: ..." for assertion messages.
  std::string Describe() const;
};

// Runs argv (looked up on PATH) in its own process group; on timeout the group is
// SIGKILLed. Throws std::runtime_error only when the command cannot be started.
CommandResult RunCommand(const std::vector<std::string>& argv, const CommandOptions& options = {});

// A command running in the background with stdout+stderr going to a file. The
// destructor kills its process group by pid (SIGKILL) if it still runs.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::vector<std::string>& argv, const std::filesystem::path& output_file);
  ~BackgroundCommand();
  BackgroundCommand(const BackgroundCommand&) = delete;
  BackgroundCommand& operator=(const BackgroundCommand&) = delete;

  pid_t pid() const { return pid_; }
  // Waits for exit; returns the exit code (-1 on signal) or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  void Kill(int signal);
  std::string Output() const;   // what was written so far
  bool Exited();                 // non-blocking: has it exited (and been reaped)?

 private:
  std::vector<std::string> argv_;
  std::filesystem::path output_file_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// mkdtemp directory removed (recursively, one file system) by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "uvmshim-e2e");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Paths of the build and source trees (compile-time defaults, env overrides).
std::filesystem::path SourceDir();   // $UVMSHIM_SOURCE or the configured source dir
std::filesystem::path BuildDir();    // $UVMSHIM_BUILD  or the configured binary dir
// <build>/bin/containerd-shim-uvm-v1 if it is an executable file.
std::optional<std::filesystem::path> UvmShimBinary();
// Directory with vmlinuz + initrd.img for hyperv mode ($UVMSHIM_IMAGES or <build>/images),
// if both files exist.
std::optional<std::filesystem::path> UvmBootFilesDir();

// A private containerd started by tests/e2e/containerd-env.sh; stopped (everything it
// started killed by pid, mounts removed, temp dir deleted) by the destructor.
class ContainerdEnv {
 public:
  struct Options {
    std::filesystem::path shim_dir;          // prepended to containerd's PATH
    std::filesystem::path image;             // OCI archive; default: the one built by CMake
    std::vector<std::string> containerd_env; // NAME=VALUE for containerd (and so for shims)
    std::filesystem::path config_extra;      // TOML appended to config.toml
    bool cri = false;
    std::string netns;                       // containerd runs in this network namespace (path)
  };

  explicit ContainerdEnv(const Options& options);  // throws std::runtime_error with the script's stderr
  ~ContainerdEnv();
  ContainerdEnv(const ContainerdEnv&) = delete;
  ContainerdEnv& operator=(const ContainerdEnv&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& address() const { return address_; }
  const std::string& ns() const { return namespace_; }
  const std::string& image_ref() const { return image_ref_; }
  std::filesystem::path state_dir() const { return dir_ / "state"; }
  std::filesystem::path log_path() const { return dir_ / "containerd.log"; }
  std::filesystem::path fifo_dir() const { return dir_ / "fifo"; }
  // $UVMSHIM_ROOT given to containerd (and so to the uvm shim): <dir>/uvmshim.
  std::filesystem::path uvmshim_root() const { return dir_ / "uvmshim"; }
  std::filesystem::path BundleDir(const std::string& id) const;

  // `ctr -a ADDRESS -n NS args...`
  std::vector<std::string> CtrArgv(const std::vector<std::string>& args) const;
  CommandResult Ctr(const std::vector<std::string>& args, const CommandOptions& options = {}) const;

  std::optional<pid_t> ContainerdPid() const;
  // SIGKILL containerd (shims keep running) and start it again on the same state.
  void Restart();
  // The last `lines` lines of containerd's log, for failure messages.
  std::string LogTail(int lines = 30) const;

 private:
  std::filesystem::path script_;
  std::filesystem::path dir_;
  std::string address_;
  std::string namespace_;
  std::string image_ref_;
};

// ---- /proc inspection (leak checks, finding shims and VMs) -------------------

std::vector<std::string> ProcessArgs(pid_t pid);   // empty if gone
std::optional<std::string> ProcessExeName(pid_t pid);  // basename of /proc/PID/exe
std::vector<pid_t> AllPids();
std::vector<pid_t> ChildrenOf(pid_t parent);
std::vector<pid_t> DescendantsOf(pid_t ancestor);
// Processes whose argv or cwd names `dir` or a path below it.
std::vector<pid_t> PidsReferringTo(const std::filesystem::path& dir);
// The shim daemon serving container `id` of containerd `address` (argv has
// `-address ADDRESS` and `-id ID` and no `start`/`delete` action).
std::optional<pid_t> FindShimPid(const std::string& address, const std::string& id);
// Mount points at or below `dir` (from /proc/self/mountinfo).
std::vector<std::string> MountsUnder(const std::filesystem::path& dir);
// VmRSS of a process in KiB.
std::optional<long> VmRssKiB(pid_t pid);
bool PidAlive(pid_t pid);   // exists and is not a zombie

// hex SHA-256 of data (through sha256sum(1)).
std::string Sha256Hex(const std::string& data);

// Polls `predicate` every 100 ms until it is true or `timeout` passes.
template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace uvmshim::e2e
