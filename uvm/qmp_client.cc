#include "uvm/qmp_client.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm {
namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

QmpClient::QmpClient(const std::filesystem::path& socket, std::chrono::milliseconds timeout)
    : socket_path_(socket) {
  const auto deadline = Clock::now() + timeout;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket.native().size() >= sizeof address.sun_path)
    throw VmError("QMP socket path too long: " + socket.string());
  std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
  fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw VmError("QMP socket(): " + ErrnoText());
  if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw VmError("connect to QMP socket " + socket.string() + ": " + ErrnoText());
  stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_) throw VmError("QMP eventfd: " + ErrnoText());
  reader_ = std::thread([this] { ReadLoop(); });
  try {
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline, [this] { return greeted_ || closed_; }) || !greeted_)
      throw VmError("QMP " + socket.string() + ": no greeting from QEMU");
    lock.unlock();
    Execute("qmp_capabilities", nullptr,
            std::chrono::duration_cast<std::chrono::milliseconds>(
                std::max(deadline - Clock::now(), Clock::duration(std::chrono::milliseconds(100)))));
  } catch (...) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto ignored = ::write(stop_fd_.get(), &one, sizeof one);
    reader_.join();
    throw;
  }
}

QmpClient::~QmpClient() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(stop_fd_.get(), &one, sizeof one);
  if (reader_.joinable()) reader_.join();
}

void QmpClient::ReadLoop() {
  std::string buffer;
  char chunk[4096];
  for (;;) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    const ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      const std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      auto message = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (message.is_discarded() || !message.is_object()) continue;
      std::lock_guard lock(mu_);
      if (message.contains("QMP")) {
        greeted_ = true;
      } else if (message.contains("event")) {
        events_[message["event"].get<std::string>()] =
            message.contains("data") ? message["data"] : nlohmann::json::object();
      } else if (message.contains("return") || message.contains("error")) {
        reply_ = std::move(message);
      }
      cv_.notify_all();
    }
  }
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

void QmpClient::Send(const nlohmann::json& message) {
  const std::string text = message.dump() + "\n";
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::send(fd_.get(), text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw VmError("QMP " + socket_path_.string() + ": send: " + ErrnoText());
    done += static_cast<std::size_t>(n);
  }
}

nlohmann::json QmpClient::Execute(const std::string& command, const nlohmann::json& arguments,
                                  std::chrono::milliseconds timeout) {
  std::lock_guard command_lock(command_mu_);
  nlohmann::json message = {{"execute", command}};
  if (!arguments.is_null()) message["arguments"] = arguments;
  {
    std::lock_guard lock(mu_);
    if (closed_) throw VmError("QMP " + command + ": QEMU closed the monitor connection");
    reply_.reset();
  }
  Send(message);
  std::unique_lock lock(mu_);
  return WaitReply(lock, Clock::now() + timeout, command);
}

nlohmann::json QmpClient::WaitReply(std::unique_lock<std::mutex>& lock, Clock::time_point deadline,
                                    const std::string& what) {
  if (!cv_.wait_until(lock, deadline, [this] { return reply_.has_value() || closed_; }))
    throw VmError("QMP " + what + ": no reply from QEMU in time");
  if (!reply_) throw VmError("QMP " + what + ": QEMU closed the monitor connection");
  nlohmann::json reply = std::move(*reply_);
  reply_.reset();
  if (reply.contains("error")) {
    const auto& error = reply["error"];
    throw VmError("QMP " + what + ": " + error.value("class", std::string("Error")) + ": " +
                  error.value("desc", std::string("(no description)")));
  }
  return reply["return"];
}

std::optional<nlohmann::json> QmpClient::LastEvent(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = events_.find(name);
  if (it == events_.end()) return std::nullopt;
  return it->second;
}

bool QmpClient::connected() const {
  std::lock_guard lock(mu_);
  return !closed_;
}

}  // namespace uvmshim::uvm
