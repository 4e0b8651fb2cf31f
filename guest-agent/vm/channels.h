// The agent's listeners inside a utility VM. Each hands connected stream
// sockets to the gRPC server (grpc::AddInsecureChannelFromFd) through an
// AdoptConnection callback, which takes ownership of the fd. The fds are
// non-blocking: gRPC's endpoint reads until EAGAIN and would stall on a
// blocking fd (requests never processed).
//
//   serial:///dev/vportNpM or serial:///dev/virtio-ports/NAME
//     A virtio-serial port is one byte stream: one host connection at a time,
//     one HTTP/2 connection on it. gRPC needs a socket, so a bridge thread
//     copies between the port and one end of a socketpair whose other end
//     gRPC owns. When the host side disconnects (the port reports POLLHUP and
//     read() returns 0, for HostPresence::kGoneAfter: a departure can be
//     reported late, after the next host's first bytes) the bridge closes
//     its end, which ends that gRPC connection, and waits for the next host
//     connection on the same port.
//     /dev/virtio-ports/NAME is resolved through /sys/class/virtio-ports
//     (there is no udev in the utility VM).
//   vsock://PORT
//     AF_VSOCK listening on VMADDR_CID_ANY; only connections from the host
//     (CID 2) are accepted, so a container in the VM cannot reach its own
//     agent through vsock loopback.
#pragma once

#include <sys/socket.h>

#include <linux/vm_sockets.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "guest-agent/listen_address.h"
#include "guest-agent/vm/serial_stream.h"
#include "common/unique_fd.h"

namespace uvmshim::agent::vm {

using AdoptConnection = std::function<void(int fd)>;

class ChannelListener {
 public:
  virtual ~ChannelListener() = default;
  // Waits until the data gRPC has written so far reached the host side of
  // the channel (or the timeout passed). Call before powering off.
  virtual void Flush(std::chrono::milliseconds timeout) = 0;
  virtual std::string description() const = 0;
};

// Finds the character device of a virtio-serial port. `path` is either a
// device (/dev/vport0p1) or /dev/virtio-ports/NAME; the port may appear a
// little after virtio_console was loaded, so this waits up to `wait`.
// Throws std::runtime_error naming the port when it does not appear.
std::filesystem::path ResolveVirtioPort(const std::filesystem::path& path,
                                        std::chrono::milliseconds wait);

class SerialPortListener final : public ChannelListener {
 public:
  // Opens the port (waiting for it to appear) and starts the bridge thread.
  SerialPortListener(const std::filesystem::path& port, AdoptConnection adopt);
  ~SerialPortListener() override;
  SerialPortListener(const SerialPortListener&) = delete;
  SerialPortListener& operator=(const SerialPortListener&) = delete;

  void Flush(std::chrono::milliseconds timeout) override;
  std::string description() const override;
  // Host connections served so far (each one a fresh gRPC connection).
  std::uint64_t connections() const { return connections_.load(); }

 private:
  void Run();
  // Serves one host connection; returns when it ended or stop was asked.
  // `first` is data already read that starts this connection (the preface);
  // returns such data when a new host connection was found in the stream.
  std::vector<char> ServeConnection(std::vector<char> first);
  // The socketpair whose other end gRPC adopts; empty when it failed.
  UniqueFd OpenBridge();
  // Copies between the port and `bridge` until the connection ends.
  void Pump(SerialConnection& connection, int bridge);
  // Waits for a host connection (or data, which means one); false when
  // stopping. Data read meanwhile is appended to `first`.
  bool WaitForHost(std::vector<char>& first);

  std::filesystem::path device_;
  AdoptConnection adopt_;
  UniqueFd port_;
  UniqueFd stop_;  // eventfd
  std::atomic<std::uint64_t> connections_{0};
  std::atomic<std::size_t> unflushed_{0};  // bytes gRPC wrote not yet on the port
  std::mutex bridge_mu_;                   // guards bridge_fd_ for Flush
  int bridge_fd_ = -1;                     // our socketpair end while connected
  std::thread thread_;
};

class VsockListener final : public ChannelListener {
 public:
  // Throws std::system_error when AF_VSOCK is unavailable or the port busy.
  VsockListener(std::uint32_t port, AdoptConnection adopt);
  ~VsockListener() override;
  VsockListener(const VsockListener&) = delete;
  VsockListener& operator=(const VsockListener&) = delete;

  void Flush(std::chrono::milliseconds) override {}  // the kernel owns the data
  std::string description() const override;

 private:
  void Run();

  std::uint32_t port_;
  AdoptConnection adopt_;
  UniqueFd listen_;
  UniqueFd stop_;
  std::thread thread_;
};

// Whether a vsock peer is the host (the only peer the agent serves).
bool IsHostPeer(const sockaddr_vm& peer);

// Starts the listener for a serial:// or vsock:// address; throws
// std::invalid_argument for other kinds (unix:// is the agent's own).
std::unique_ptr<ChannelListener> StartVmListener(const ListenAddress& address,
                                                 AdoptConnection adopt);

}  // namespace uvmshim::agent::vm
