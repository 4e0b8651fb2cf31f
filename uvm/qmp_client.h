// A small client of QEMU's machine protocol (QMP) on a Unix socket: one
// command at a time, events recorded as they arrive (SHUTDOWN tells a guest
// power-off from a guest reset, i.e. a panic with panic=-1 and -no-reboot).
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"

namespace uvmshim::uvm {

class QmpClient {
 public:
  // Connects to an existing QMP socket, reads the greeting and negotiates
  // capabilities. Throws VmError naming the socket on failure or timeout.
  QmpClient(const std::filesystem::path& socket, std::chrono::milliseconds timeout);
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Runs a command and returns its "return" value. Throws VmError with
  // QEMU's error description, on timeout, or when the connection is gone.
  nlohmann::json Execute(const std::string& command, const nlohmann::json& arguments = nullptr,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // The data of the last event with this name ("SHUTDOWN", ...), if any.
  std::optional<nlohmann::json> LastEvent(const std::string& name) const;
  bool connected() const;

 private:
  void ReadLoop();
  void Send(const nlohmann::json& message);
  nlohmann::json WaitReply(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point deadline,
                           const std::string& what);

  std::filesystem::path socket_path_;
  UniqueFd fd_;
  UniqueFd stop_fd_;  // eventfd ending ReadLoop
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::mutex command_mu_;  // one command in flight
  std::optional<nlohmann::json> reply_;
  bool greeted_ = false;
  bool closed_ = false;
  std::map<std::string, nlohmann::json> events_;
  std::thread reader_;
};

}  // namespace uvmshim::uvm
