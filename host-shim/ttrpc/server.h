// ttrpc server on a Unix socket. One reader thread per connection; every
// request runs on its own thread and is answered whenever it finishes, so a
// blocking call (containerd's Wait) never holds up the ones behind it. Whole
// response frames are written under a per-connection lock.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "ttrpc/protocol.h"
#include "ttrpc/socket.h"
#include "ttrpc/status.h"

namespace uvmshim::ttrpc {

struct RequestContext {
  std::uint32_t stream_id = 0;
  std::string service;
  std::string method;
  Metadata metadata;
  std::int64_t timeout_nano = 0;  // as the client sent it; 0 = none
  // Set when timeout_nano > 0. The server does not enforce it; handlers that
  // block should give up by then.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  PeerCredentials peer;
  // Requested when the client's connection goes away, or when Shutdown's
  // grace period ran out. Blocking handlers should watch it (e.g. with
  // std::condition_variable_any::wait(lock, stop, pred)).
  std::stop_token stop;

  std::optional<std::string> GetMetadata(std::string_view key) const {
    return FindMetadata(metadata, key);
  }
  // The containerd namespace (metadata containerd-namespace-ttrpc), "" if absent.
  std::string Namespace() const { return GetMetadata(kNamespaceMetadataKey).value_or(""); }
};

// Gets the serialized request message; returns Result::Ok(serialized
// response) or a Status. Exceptions become code Internal.
using Handler = std::function<Result(const RequestContext& context, const std::string& payload)>;

struct ServerOptions {
  // Peers must run as this uid or as root (SO_PEERCRED), as containerd checks.
  uid_t allowed_uid = ::geteuid();
  // Beyond this many unanswered requests on one connection, new ones get
  // ResourceExhausted instead of a thread.
  std::size_t max_in_flight_per_connection = 512;
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  // Shutdown() with the default grace if it was not called.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Register before or while serving; a later registration of the same pair replaces it.
  void Register(std::string service, std::string method, Handler handler);

  // Creates the socket at `path` (mode 0600) and serves it; the file is
  // removed again by Shutdown. Throws std::system_error.
  void Listen(const std::string& path);
  // Serves an already listening socket (e.g. one inherited from the shim's
  // `start` process). Call once.
  void Serve(UniqueFd listener);

  // Stops accepting and reading, lets in-flight requests finish and answer
  // within `grace`, then requests their stop tokens and waits for them
  // (handlers must honour the token), and closes all connections. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));

  // Open connections (for tests and diagnostics).
  std::size_t connection_count() const;

  struct State;  // shared with the server's threads; defined in server.cc

 private:
  std::shared_ptr<State> state_;
  std::thread accept_thread_;
  std::string owned_path_;
};

}  // namespace uvmshim::ttrpc
