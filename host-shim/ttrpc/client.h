// ttrpc client over one Unix socket connection. Thread-safe: concurrent
// Call()s are multiplexed on stream ids 1, 3, 5, ... and a reader thread
// hands each response to its caller by id.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "ttrpc/protocol.h"
#include "ttrpc/socket.h"
#include "ttrpc/status.h"

namespace uvmshim::ttrpc {

struct CallOptions {
  Metadata metadata;
  // Wait at most this long for the answer (DeadlineExceeded after it); also
  // sent to the server as timeout_nano. nullopt = wait until answered or the
  // connection closes.
  std::optional<std::chrono::nanoseconds> timeout;

  // Metadata containerd-namespace-ttrpc = ns, as containerd expects on every call.
  static CallOptions ForNamespace(std::string ns,
                                  std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
    CallOptions o;
    o.metadata.emplace_back(std::string(kNamespaceMetadataKey), std::move(ns));
    o.timeout = timeout;
    return o;
  }
};

class Client {
 public:
  // `address`: "unix:///path", "/path" or "@abstract". Throws std::system_error.
  static std::unique_ptr<Client> Connect(std::string_view address);

  explicit Client(UniqueFd connected_socket);
  ~Client();  // Close()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The server's Result, or a local failure: Unavailable (not connected,
  // send failed, connection closed before the answer), DeadlineExceeded
  // (timeout), ResourceExhausted (request over 4 MiB), Internal (undecodable
  // response).
  Result Call(std::string_view service, std::string_view method, std::string_view payload,
              const CallOptions& options = {});

  // Closes the connection; pending and later calls fail with Unavailable.
  void Close();
  // True once the connection closed (either side).
  bool closed() const;

  struct State;  // shared with the reader thread; defined in client.cc

 private:
  std::shared_ptr<State> state_;
  std::thread reader_;
};

}  // namespace uvmshim::ttrpc
