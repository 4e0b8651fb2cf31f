// Relays one container process's stdio between host file descriptors and the
// agent's streams: stdout/stderr via ReadOutput, stdin via WriteStdin.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent_client.h"
#include "common/unique_fd.h"

namespace uvmshim::host {

class BulkStdioStream;

// Descriptors are borrowed; -1 = not relayed.
struct StdioFds {
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

class StdioRelay {
 public:
  // With a terminal, stderr is not a separate stream (the pty carries both).
  StdioRelay(AgentClient& agent, std::string container_id, std::string exec_id,
             StdioFds fds, bool terminal);
  ~StdioRelay();  // cancels whatever still runs and joins
  StdioRelay(const StdioRelay&) = delete;
  StdioRelay& operator=(const StdioRelay&) = delete;

  void Start();
  // Returns once every output stream ended: all the process's output was
  // written to the host descriptors.
  void WaitOutputDone();
  // Stops relaying stdin (the process exited or the caller lost interest).
  void StopStdin();
  // Relays what stdin holds right now, then closes the process's stdin: for a
  // FIFO the shim keeps open itself, where EOF never arrives (containerd's CloseIO).
  void FinishStdin();
  std::uint64_t bytes_out() const { return bytes_out_.load(); }

 private:
  void PumpOutput(agentpb::OutputStream which, int fd);
  // True once the stream's end frame came (every byte delivered).
  bool ReceiveBulk(BulkStdioStream& stream, const std::function<void(const std::string&)>& deliver,
                   const char* name);
  bool IsCancelled();
  void PumpStdin();
  // Registers a stream's context for cancellation; false once the destructor
  // has cancelled (a thread that starts late must not begin a call then).
  bool Register(grpc::ClientContext* ctx);
  void Unregister(grpc::ClientContext* ctx);

  AgentClient& agent_;
  const std::string container_id_;
  const std::string exec_id_;
  const StdioFds fds_;
  const bool terminal_;
  UniqueFd stop_stdin_;    // eventfd: abandon stdin
  UniqueFd finish_stdin_;  // eventfd: drain stdin, then EOF
  std::mutex contexts_mutex_;
  std::vector<grpc::ClientContext*> live_contexts_;
  bool cancelled_ = false;  // contexts_mutex_; set by the destructor
  std::atomic<std::uint64_t> bytes_out_{0};
  std::vector<std::thread> output_threads_;
  std::thread stdin_thread_;
};

}  // namespace uvmshim::host
