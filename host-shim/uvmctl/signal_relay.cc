#include "uvmctl/signal_relay.h"

#include <signal.h>

#include <spdlog/spdlog.h>

#include "containerd/task/v2/shim.pb.h"
#include "uvmctl/shim_calls.h"

namespace uvmshim::uvmctl {

SignalRelay::SignalRelay() : forwarder_([this](int signal) { Relay(signal); }) {}

void SignalRelay::Start(std::shared_ptr<shim::TaskClient> task, const std::string& id,
                        const std::string& exec_id) {
  std::vector<int> early;
  {
    std::lock_guard lock(mutex_);
    task_ = task;
    id_ = id;
    exec_id_ = exec_id;
    early.swap(early_signals_);
  }
  for (int signal : early) Deliver(*task, id, exec_id, signal);
}

void SignalRelay::Stop() {
  std::lock_guard lock(mutex_);
  task_.reset();
  stopped_ = true;
  early_signals_.clear();
}

void SignalRelay::Relay(int signal) {
  std::shared_ptr<shim::TaskClient> task;
  std::string id, exec_id;
  {
    std::lock_guard lock(mutex_);
    if (!task_) {
      if (!stopped_ && early_signals_.size() < kMaxEarlySignals) early_signals_.push_back(signal);
      return;
    }
    task = task_;
    id = id_;
    exec_id = exec_id_;
  }
  Deliver(*task, id, exec_id, signal);
}

void SignalRelay::Deliver(shim::TaskClient& task, const std::string& id, const std::string& exec_id,
                          int signal) {
  try {
    if (signal == SIGWINCH) {
      SendWindowSize(task, id, exec_id);
      return;
    }
    ::containerd::task::v2::KillRequest kill;
    kill.set_id(id);
    kill.set_exec_id(exec_id);
    kill.set_signal(static_cast<std::uint32_t>(signal));
    task.Call("Kill", kill);
  } catch (const std::exception& e) {
    spdlog::debug("forwarding signal {}: {}", signal, e.what());
  }
}

}  // namespace uvmshim::uvmctl
