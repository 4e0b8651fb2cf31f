// Relays the signals uvmctl receives (Ctrl-C, SIGTERM, ...) to one process of
// a container through its shim's Kill, and window changes to its pty: the one
// place `run` and `exec` forward signals.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shim/task_client.h"
#include "signal_forwarder.h"

namespace uvmshim::uvmctl {

class SignalRelay {
 public:
  // Blocks the signals process-wide: construct before any thread starts (the
  // task client's threads inherit the mask, so the signals reach us only).
  SignalRelay();
  SignalRelay(const SignalRelay&) = delete;
  SignalRelay& operator=(const SignalRelay&) = delete;

  // From now on signals go to exec_id ("" = the init process) of container id.
  // Signals received before are delivered now, in order: the process may have
  // written (and the user reacted to) its first output before Start returned.
  void Start(std::shared_ptr<shim::TaskClient> task, const std::string& id, const std::string& exec_id);
  // The process exited: signals are dropped from now on.
  void Stop();

 private:
  void Relay(int signal);
  void Deliver(shim::TaskClient& task, const std::string& id, const std::string& exec_id, int signal);

  static constexpr size_t kMaxEarlySignals = 64;  // a storm before the start keeps its first ones

  std::mutex mutex_;
  std::shared_ptr<shim::TaskClient> task_;  // null while not relaying
  std::string id_;
  std::string exec_id_;
  std::vector<int> early_signals_;  // received before Start
  bool stopped_ = false;
  host::SignalForwarder forwarder_;  // last: its thread uses the members above
};

}  // namespace uvmshim::uvmctl
