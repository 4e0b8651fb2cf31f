// A process the agent started (a container's init or an exec): its pid, its
// stdio ends on the agent's side, its exit, and the waiters for that exit.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/error.h"

#include "guest-agent/output_pump.h"
#include "guest-agent/reaper.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {

// The agent's ends of a process's stdio. With a terminal only pty_master is set.
struct AgentStdio {
  UniqueFd stdin_w;
  UniqueFd stdout_r;
  UniqueFd stderr_r;
  UniqueFd pty_master;
};

// Where stdin data goes: a pipe's write end or a pty master (shared with the
// output side). Kept alive by writers so CloseStdin never closes an fd a
// writer still uses.
struct StdinTarget {
  UniqueFd fd;  // the pipe's write end, or a dup of the pty master
};

enum class OutputKind { kStdout = 0, kStderr = 1 };

struct ProcessExit {
  unsigned exit_status = 0;
  int64_t exited_at_unix_nano = 0;
};

class Process {
 public:
  // `name` is used in messages, e.g. "c1" or "c1/exec2".
  Process(std::string name, std::string exec_id, bool terminal);
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  const std::string& name() const { return name_; }
  const std::string& exec_id() const { return exec_id_; }
  bool terminal() const { return terminal_; }
  pid_t pid() const { return pid_.load(); }

  // Set once by the launcher. Makes the fds non-blocking.
  void SetPid(pid_t pid) { pid_.store(pid); }
  void SetStdio(AgentStdio stdio);
  void MarkStarted();
  bool started() const;

  // From the reaper.
  void OnExit(const ChildExit& exit);
  std::optional<ProcessExit> exit() const;

  // Blocks until the process exited and every attached output reader has
  // delivered all of its output. nullopt when `cancelled` became true.
  std::optional<ProcessExit> Wait(const std::function<bool()>& cancelled);
  // Blocks until the process exited (not its output); false on timeout.
  bool WaitExitFor(std::chrono::milliseconds timeout);

  // kill(2) unless the process has exited; throws uvmshim::Error (kNotFound
  // "process X has exited", kInvalidArgument for a bad signal).
  void Signal(int signal, Reaper& reaper);
  // The same for cleanup paths: a process already gone is what they want.
  void SignalQuietly(int signal, Reaper& reaper) noexcept;

  // The stdio calls throw uvmshim::Error (the service turns it into a status
  // in rpc_status.cc): kFailedPrecondition when the stream is not there or
  // taken, kCancelled when the caller went away, kInternal for a failed read
  // or write.
  //
  // Streams one output to `sink` (see output_pump.h). Only one reader per
  // output at a time. `on_attached` runs once the reader is registered (so
  // Wait() waits for it) -- the service sends an empty chunk then. Returns
  // true when the output ended (or had ended before), false when the reader
  // went away first (`sink` or `on_attached` false, or `cancelled`).
  bool ReadOutput(OutputKind kind, const std::function<bool(std::string&)>& sink,
                  const std::function<bool()>& cancelled,
                  const std::function<bool()>& on_attached);
  // The same with another pump (the bulk port's, bulk_output_port.h): it
  // moves the output from the source and says how that ended.
  using OutputPump = std::function<PumpEnd(const PumpSource&)>;
  bool ReadOutputWith(OutputKind kind, const OutputPump& pump, const std::function<bool()>& on_attached);

  // Writes all of `data` (blocking with backpressure), counting into
  // `written`. kFailedPrecondition when the process has no stdin or it was
  // closed, kCancelled when `cancelled` turns true while it waits.
  void WriteStdin(std::string_view data, const std::function<bool()>& cancelled, uint64_t* written);
  // Pipe: close the write end (EOF). Terminal: send the VEOF character.
  void CloseStdin();
  // kFailedPrecondition without a terminal, kNotFound once it has exited.
  void ResizePty(uint32_t width, uint32_t height);

 private:
  struct Output {
    UniqueFd owned;     // pipe read end (no terminal)
    int fd = -1;        // what is read: owned or the pty master
    bool attached = false;
    bool finished = false;  // all output delivered; later readers get an empty stream
  };

  bool OutputsSettledLocked() const;
  // Closes what nobody can use any more: drained outputs, and after the exit
  // the stdin pipe and the pty (so exited execs kept for Wait hold no fds).
  void ReleaseFdsLocked();

  const std::string name_;
  const std::string exec_id_;
  const bool terminal_;
  std::atomic<pid_t> pid_{0};
  UniqueFd exited_event_;  // eventfd written at the exit, never read; closed once no reader needs it (mu_)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  std::int64_t started_ns_ = 0;  // MonotonicNs at MarkStarted: the init's run time in its exit line
  std::int64_t exited_ns_ = 0;   // MonotonicNs at OnExit
  std::optional<ProcessExit> exit_;
  Output outputs_[2];
  UniqueFd pty_master_;
  std::shared_ptr<StdinTarget> stdin_;
  bool stdin_last_was_newline_ = true;  // decides how many VEOFs end a pty's input
};

}  // namespace uvmshim::agent
