// Delivers the signals a foreground tool receives (Ctrl-C, SIGTERM, window
// changes) to a callback on its own thread, as docker's sig-proxy does.
// Construct it before any other thread starts: it blocks the signals
// process-wide (threads inherit the mask).
#pragma once

#include <functional>
#include <thread>

#include "common/unique_fd.h"

namespace uvmshim::host {

class SignalForwarder {
 public:
  explicit SignalForwarder(std::function<void(int signal)> on_signal);
  ~SignalForwarder();  // stops the thread and restores the signal mask
  SignalForwarder(const SignalForwarder&) = delete;
  SignalForwarder& operator=(const SignalForwarder&) = delete;

 private:
  std::function<void(int)> on_signal_;
  UniqueFd signal_fd_;
  UniqueFd stop_fd_;
  std::thread thread_;
};

}  // namespace uvmshim::host
