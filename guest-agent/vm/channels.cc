#include "guest-agent/vm/channels.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "guest-agent/logging.h"
#include "guest-agent/vm/serial_stream.h"

namespace uvmshim::agent::vm {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

UniqueFd MakeEventFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) ThrowErrno("eventfd");
  return fd;
}

void Signal(const UniqueFd& event) {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(event.get(), &one, sizeof one);
}

bool IsSignalled(const UniqueFd& event) {
  pollfd pfd{event.get(), POLLIN, 0};
  return ::poll(&pfd, 1, 0) > 0;
}

// Sleeps up to `ms` unless `event` fires first; true when it fired.
bool WaitEvent(const UniqueFd& event, int ms) {
  pollfd pfd{event.get(), POLLIN, 0};
  return ::poll(&pfd, 1, ms) > 0;
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::optional<fs::path> FindPortByName(const std::string& name) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/sys/class/virtio-ports", ec)) {
    std::ifstream in(entry.path() / "name");
    std::string port_name;
    std::getline(in, port_name);
    if (Trim(port_name) == name) return fs::path("/dev") / entry.path().filename();
  }
  return std::nullopt;
}

// The port's events now, without waiting (the host is away: POLLHUP would
// end any wait at once).
short PortEventsNow(int port, bool want_out) {
  pollfd pfd{port, static_cast<short>(POLLIN | (want_out ? POLLOUT : 0)), 0};
  return ::poll(&pfd, 1, 0) > 0 ? pfd.revents : 0;
}

// One poll round's events on gRPC's end of the bridge.
void ServeBridge(SerialConnection& connection, int bridge, short revents) {
  if ((revents & POLLIN) && connection.to_host.empty()) {
    const ssize_t n = connection.to_host.FillFrom(bridge);
    if (n == 0) connection.End(ConnectionEndKind::kAgentClosed);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) connection.EndWithErrno("read socket");
  } else if ((revents & (POLLHUP | POLLERR)) && !(revents & POLLIN)) {
    connection.End(ConnectionEndKind::kAgentClosed);
  }
  if ((revents & POLLOUT) && !connection.to_guest.empty() && !connection.to_guest.DrainTo(bridge))
    connection.EndWithErrno("write socket");
}

// What gRPC said last (e.g. a GOAWAY) still goes to a connected host.
void FlushToHost(ByteQueue& to_host, int port) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(200);
  while (!to_host.empty() && Clock::now() < deadline) {
    pollfd pfd{port, POLLOUT, 0};
    if (::poll(&pfd, 1, 10) > 0 && (pfd.revents & POLLHUP)) break;
    if ((pfd.revents & POLLOUT) && !to_host.DrainTo(port)) break;
  }
}

}  // namespace

fs::path ResolveVirtioPort(const fs::path& path, std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  const bool by_name = path.parent_path() == "/dev/virtio-ports";
  for (;;) {
    std::error_code ec;
    if (fs::exists(path, ec)) return path;  // a device, or udev's symlink
    if (by_name) {
      if (auto device = FindPortByName(path.filename().string()); device && fs::exists(*device, ec))
        return *device;
    }
    if (Clock::now() >= deadline)
      throw std::runtime_error("virtio-serial port " + path.string() + " did not appear within " +
                               std::to_string(wait.count()) + " ms (is virtio_console loaded and the " +
                               "virtserialport configured on the host?)");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// ---------------------------------------------------------------- serial

SerialPortListener::SerialPortListener(const fs::path& port, AdoptConnection adopt)
    : device_(ResolveVirtioPort(port, std::chrono::seconds(10))),
      adopt_(std::move(adopt)),
      stop_(MakeEventFd()) {
  port_.reset(::open(device_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!port_) ThrowErrno("open virtio-serial port " + device_.string());
  spdlog::info("event=serial_listening port={} device={}", LogQuote(port.string()),
               LogQuote(device_.string()));
  thread_ = std::thread([this] { Run(); });
}

SerialPortListener::~SerialPortListener() {
  Signal(stop_);
  if (thread_.joinable()) thread_.join();
}

std::string SerialPortListener::description() const { return "serial://" + device_.string(); }

void SerialPortListener::Run() {
  std::vector<char> next_connection;
  for (;;) {
    if (next_connection.empty() && !WaitForHost(next_connection)) return;
    next_connection = ServeConnection(std::move(next_connection));
    if (IsSignalled(stop_)) return;
  }
}

// virtio_console reports POLLHUP (and POLLIN) while no host is connected, so
// poll() cannot block on "host connected": check with a growing back-off
// (1 ms .. 50 ms). A new host's first bytes can arrive before the guest
// learns that the host connected (data and control messages travel on
// different virtqueues): read() tells, returning data rather than 0.
bool SerialPortListener::WaitForHost(std::vector<char>& first) {
  int backoff_ms = 1;
  bool logged = false;
  std::vector<char> chunk(4096);
  for (;;) {
    if (IsSignalled(stop_)) return false;
    pollfd pfd{port_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 0) < 0 && errno != EINTR) ThrowErrno("poll " + device_.string());
    if ((pfd.revents & POLLHUP) == 0) return true;
    const ssize_t n = ::read(port_.get(), chunk.data(), chunk.size());
    if (n > 0) {
      first.assign(chunk.data(), chunk.data() + n);
      return true;
    }
    if (!logged) {
      spdlog::debug("event=serial_waiting_for_host device={}", LogQuote(device_.string()));
      logged = true;
    }
    if (WaitEvent(stop_, backoff_ms)) return false;
    backoff_ms = std::min(backoff_ms * 2, 50);
  }
}

UniqueFd SerialPortListener::OpenBridge() {
  // Both ends non-blocking: gRPC reads an adopted fd until EAGAIN, so a
  // blocking fd would stall its reader after the first bytes.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0) {
    spdlog::error("event=serial_bridge_failed device={} error={}", LogQuote(device_.string()),
                  LogQuote(std::strerror(errno)));
    return UniqueFd();
  }
  UniqueFd ours(pair[0]);
  {
    std::lock_guard lock(bridge_mu_);
    bridge_fd_ = ours.get();
  }
  const auto number = ++connections_;
  spdlog::info("event=serial_host_connected device={} connection={}", LogQuote(device_.string()), number);
  adopt_(pair[1]);
  return ours;
}

// While the host is away (see HostPresence) the port stays out of poll(): it
// reports POLLHUP at once. It is looked at again after a growing pause, and
// after every event on gRPC's side.
void SerialPortListener::Pump(SerialConnection& connection, int bridge) {
  const int port = port_.get();
  std::vector<char> chunk(connection.to_guest.data.size());
  while (!connection.end.ended()) {
    const ByteQueue& to_guest = connection.to_guest;
    const ByteQueue& to_host = connection.to_host;
    const bool away = connection.host.away();
    const bool watch_port = !away && (to_guest.empty() || !to_host.empty());
    pollfd fds[3] = {
        {watch_port ? port : -1,
         static_cast<short>((to_guest.empty() ? POLLIN : 0) | (to_host.empty() ? 0 : POLLOUT)), 0},
        {bridge, static_cast<short>((to_host.empty() ? POLLIN : 0) | (to_guest.empty() ? 0 : POLLOUT)), 0},
        {stop_.get(), POLLIN, 0},
    };
    unflushed_ = away ? 0 : to_host.size();  // a host that left takes nothing more
    if (::poll(fds, 3, away ? connection.host.NextRecheckMs() : -1) < 0) {
      if (errno == EINTR) continue;
      connection.EndWithErrno("poll");
      return;
    }
    if (fds[2].revents) {
      connection.End(ConnectionEndKind::kStopping);
      return;
    }
    const short port_events = away ? PortEventsNow(port, !to_host.empty()) : fds[0].revents;
    if (connection.ServePort(port, port_events, chunk, Clock::now())) return;
    ServeBridge(connection, bridge, fds[1].revents);
  }
}

std::vector<char> SerialPortListener::ServeConnection(std::vector<char> first) {
  UniqueFd bridge = OpenBridge();
  if (!bridge) {
    WaitEvent(stop_, 100);
    return {};
  }
  const std::uint64_t number = connections_.load();
  SerialConnection connection;
  connection.Begin(std::move(first));
  Pump(connection, bridge.get());
  const bool agent_closed = connection.end.kind == ConnectionEndKind::kAgentClosed;
  if (agent_closed) FlushToHost(connection.to_host, port_.get());
  {
    std::lock_guard lock(bridge_mu_);
    bridge_fd_ = -1;
  }
  unflushed_ = 0;
  spdlog::info("event=serial_connection_ended device={} connection={} reason={} dropped_bytes={}",
               LogQuote(device_.string()), number, LogQuote(connection.end.Describe()),
               connection.parser.dropped());
  // Nothing this connection could parse arrived; do not spin on a host that
  // keeps sending the tail of an old stream.
  if (agent_closed && !connection.parser.started()) WaitEvent(stop_, 10);
  return std::move(connection.next_connection);
}

void SerialPortListener::Flush(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(bridge_mu_);
      if (bridge_fd_ < 0) return;
      int queued = 0;
      if (::ioctl(bridge_fd_, FIONREAD, &queued) != 0) return;
      if (queued == 0 && unflushed_ == 0) return;
    }
    if (Clock::now() >= deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// ---------------------------------------------------------------- vsock

bool IsHostPeer(const sockaddr_vm& peer) {
  return peer.svm_family == AF_VSOCK && peer.svm_cid == VMADDR_CID_HOST;
}

VsockListener::VsockListener(std::uint32_t port, AdoptConnection adopt)
    : port_(port), adopt_(std::move(adopt)), stop_(MakeEventFd()) {
  listen_.reset(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_) ThrowErrno("socket AF_VSOCK");
  sockaddr_vm address{};
  address.svm_family = AF_VSOCK;
  address.svm_cid = VMADDR_CID_ANY;
  address.svm_port = port;
  if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    ThrowErrno("bind vsock port " + std::to_string(port));
  if (::listen(listen_.get(), 16) != 0) ThrowErrno("listen vsock port " + std::to_string(port));
  spdlog::info("event=vsock_listening port={}", port);
  thread_ = std::thread([this] { Run(); });
}

VsockListener::~VsockListener() {
  Signal(stop_);
  if (thread_.joinable()) thread_.join();
}

std::string VsockListener::description() const { return "vsock://" + std::to_string(port_); }

void VsockListener::Run() {
  for (;;) {
    pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event=vsock_poll_failed error={}", LogQuote(std::strerror(errno)));
      return;
    }
    if (fds[1].revents) return;
    sockaddr_vm peer{};
    socklen_t length = sizeof peer;
    // Non-blocking, as gRPC needs.
    UniqueFd conn(::accept4(listen_.get(), reinterpret_cast<sockaddr*>(&peer), &length,
                            SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!conn) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        spdlog::warn("event=vsock_accept_failed port={} error={}", port_, LogQuote(std::strerror(errno)));
      continue;
    }
    if (!IsHostPeer(peer)) {
      spdlog::warn("event=vsock_peer_rejected port={} peer_cid={} peer_port={}", port_, peer.svm_cid,
                   peer.svm_port);
      continue;
    }
    spdlog::info("event=vsock_host_connected port={} peer_port={}", port_, peer.svm_port);
    adopt_(conn.release());
  }
}

std::unique_ptr<ChannelListener> StartVmListener(const ListenAddress& address, AdoptConnection adopt) {
  switch (address.kind) {
    case ListenAddress::Kind::kSerial:
      return std::make_unique<SerialPortListener>(address.path, std::move(adopt));
    case ListenAddress::Kind::kVsock:
      return std::make_unique<VsockListener>(address.port, std::move(adopt));
    case ListenAddress::Kind::kUnix:
      break;
  }
  throw std::invalid_argument("listen address " + ToString(address) + " is not a VM channel");
}

}  // namespace uvmshim::agent::vm
