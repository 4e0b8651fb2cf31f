// Hostile input at every entry a user or a local peer reaches (issue #12,
// items 6 and 7), against the real binaries:
//  - ids and paths ("..", "/", NUL, 1000 characters, unicode) given to
//    uvmctl, to the shim's Create and Exec, and to `containerd-shim-uvm-v1`'s
//    own flags: a clear error naming the field, nothing left behind;
//  - oversized and garbage frames on the shim's ttrpc socket and garbage on
//    the agent's socket (process isolation): that connection gets an error
//    or is dropped, the server keeps serving everyone else;
//  - the sockets of a running sandbox (shim, agent, the UVM's debug console
//    and monitor): 0600, owned by root, in 0700 root-owned directories.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "containerd/task/v2/shim.pb.h"
#include "ttrpc/client.h"
#include "ttrpc/frame.h"
#include "ttrpc/protocol.h"
#include "uvmctl_fixture.h"

namespace uvmshim::uvmctl_test {
namespace {

namespace taskpb = ::containerd::task::v2;

// Each must be refused wherever an id is taken. (NUL cannot travel in argv:
// the ttrpc cases send it.)
const std::vector<std::string>& HostileIds() {
  static const std::vector<std::string> ids = {
      "..", ".", "../../etc", "a/b", "/", "/tmp/x", std::string(1000, 'a'), "caf\xc3\xa9", "\xe2\x80\xae" "abc",
      "a b", "a\nb", "-x", "x-", "a..b", "*"};
  return ids;
}

std::string Printable(const std::string& id) {
  return id.size() > 40 ? id.substr(0, 20) + "...(" + std::to_string(id.size()) + " chars)" : id;
}

nlohmann::json ReadStateJson(const fs::path& root, const std::string& id) {
  std::ifstream in(root / "uvmctl" / id / "state.json");
  if (!in) throw std::runtime_error("no state.json for " + id + " under " + root.string());
  return nlohmann::json::parse(in);
}

std::string UnixPath(std::string address) {
  if (address.starts_with("unix://")) address.erase(0, 7);
  return address;
}

// A raw connection to a unix socket, for bytes no client library would send.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("connect " + path + ": " + std::strerror(errno));
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // False when the peer closed the connection before all was written.
  bool Write(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Whatever arrives until `want` bytes, EOF (closed = true) or the timeout.
  std::string Read(size_t want, std::chrono::milliseconds timeout, bool* closed) {
    std::string got;
    *closed = false;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.size() < want) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fd_, buffer, std::min(sizeof buffer, want - got.size()));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        *closed = true;
        break;
      }
      if (n > 0) got.append(buffer, static_cast<size_t>(n));
    }
    return got;
  }

 private:
  int fd_ = -1;
};

// One ttrpc response frame off a raw connection: its stream id and status.
struct RawResponse {
  std::uint32_t stream_id = 0;
  ttrpc::Status status;
};
std::optional<RawResponse> ReadResponse(RawConnection& connection, std::chrono::milliseconds timeout) {
  bool closed = false;
  std::string header = connection.Read(ttrpc::kFrameHeaderSize, timeout, &closed);
  if (header.size() != ttrpc::kFrameHeaderSize) return std::nullopt;
  auto decoded = ttrpc::DecodeFrameHeader(reinterpret_cast<const std::uint8_t*>(header.data()));
  std::string payload = connection.Read(decoded.length, timeout, &closed);
  if (payload.size() != decoded.length) return std::nullopt;
  auto response = ttrpc::DecodeResponse(payload);
  if (!response) return std::nullopt;
  return RawResponse{decoded.stream_id, response->status};
}

std::string TaskRequestFrame(std::uint32_t stream_id, const std::string& method,
                             const google::protobuf::MessageLite& message) {
  ttrpc::RequestMessage request;
  request.service = "containerd.task.v2.Task";
  request.method = method;
  request.payload = message.SerializeAsString();
  request.metadata = {{std::string(ttrpc::kNamespaceMetadataKey), "uvmctl"}};
  return ttrpc::EncodeFrame(stream_id, ttrpc::FrameType::kRequest, ttrpc::EncodeRequest(request));
}

// ---------------------------------------------------------------------------

class HostileIdValidation : public UvmctlValidationTest {};

TEST_P(HostileIdValidation, EveryUvmctlEntryRefusesHostileIds) {
  for (const auto& id : HostileIds()) {
    if (id.starts_with("-")) continue;  // an option to CLI11, not an id
    SCOPED_TRACE("id " + Printable(id));
    auto run = Uvmctl(RunArgs({"--name=" + id}, {"true"}), WithTimeout(30s));
    EXPECT_NE(run.exit_code, 0) << run.Describe();
    EXPECT_NE(run.err.find("container id"), std::string::npos) << run.Describe();
    const std::vector<std::vector<std::string>> commands = {
        {"exec", id, "true"}, {"rm", "-f", id}, {"logs", id}, {"console", id}};
    for (const auto& command : commands) {
      auto result = Uvmctl(command, WithTimeout(30s));
      EXPECT_NE(result.exit_code, 0) << result.Describe();
      EXPECT_NE(result.err.find("container id"), std::string::npos) << result.Describe();
    }
  }
  // Bind paths: relative, with "..", empty parts.
  for (const char* volume : {"relative:/x", "/tmp:relative", "/tmp:../../etc", ":/x", "/tmp:"}) {
    SCOPED_TRACE(std::string("volume ") + volume);
    auto run = Uvmctl(RunArgs({"-v", volume}, {"true"}), WithTimeout(30s));
    EXPECT_NE(run.exit_code, 0) << run.Describe();
  }
  // TearDown: nothing was left under $UVMSHIM_ROOT, no process, no mount.
}

TEST_P(HostileIdValidation, ShimFlagsRefuseHostileNamespaceAndId) {
  const std::string shim = (BinDir() / "containerd-shim-uvm-v1").string();
  for (const auto& bad : HostileIds()) {
    SCOPED_TRACE("value " + Printable(bad));
    const std::vector<std::vector<std::string>> commands = {
        {shim, "-namespace", bad, "-id", "ok1", "-address", "", "delete"},
        {shim, "-namespace", "ok1", "-id", bad, "-address", "", "delete"},
        {shim, "-namespace", bad, "-id", "ok1", "-address", "", "start"}};
    for (const auto& argv : commands) {
      ProcessOptions options = WithTimeout(30s);
      options.env = {"UVMSHIM_ROOT=" + root().string()};
      auto result = RunProcess(argv, options);
      EXPECT_EQ(result.exit_code, 1) << result.Describe();
      const bool named = result.err.find("containerd-shim-uvm-v1: -namespace \"") != std::string::npos ||
                         result.err.find("containerd-shim-uvm-v1: -id \"") != std::string::npos;
      EXPECT_TRUE(named) << result.Describe();
    }
  }
}

// ---------------------------------------------------------------------------

class HostileInput : public UvmctlTest {};

TEST_P(HostileInput, ShimRefusesHostileIdsAndBadFramesAndKeepsServing) {
  const std::string name = Name("hostile");
  RunDetached(name, {}, {"sleep", "1000"});
  const auto state = ReadStateJson(root(), name);
  const std::string socket = UnixPath(state.at("shim_address").get<std::string>());
  const pid_t shim_pid = static_cast<pid_t>(state.at("shim_pid").get<std::int64_t>());

  // Create and Exec with hostile ids, NUL included: InvalidArgument, nothing made.
  auto client = ttrpc::Client::Connect(socket);
  std::vector<std::string> ids = HostileIds();
  ids.push_back(std::string("a\0b", 3));
  ids.push_back("");
  const auto options = ttrpc::CallOptions::ForNamespace("uvmctl", std::chrono::seconds(30));
  for (const auto& id : ids) {
    SCOPED_TRACE("id " + Printable(id));
    taskpb::CreateTaskRequest create;
    create.set_id(id);
    create.set_bundle("/");
    auto result = client->Call("containerd.task.v2.Task", "Create", create.SerializeAsString(), options);
    EXPECT_EQ(result.status.code, static_cast<std::int32_t>(ttrpc::Code::kInvalidArgument)) << result.status.message;
    taskpb::ExecProcessRequest exec;
    exec.set_id(name);
    exec.set_exec_id(id);
    result = client->Call("containerd.task.v2.Task", "Exec", exec.SerializeAsString(), options);
    EXPECT_EQ(result.status.code, static_cast<std::int32_t>(ttrpc::Code::kInvalidArgument)) << result.status.message;
  }

  // A valid id with a hostile bundle path: refused before anything is made.
  for (const auto& bundle : {std::string(""), std::string("relative/x"), std::string("../../etc"),
                             std::string("/tmp\0/x", 7), std::string("/nonexistent/../etc")}) {
    SCOPED_TRACE("bundle " + bundle);
    taskpb::CreateTaskRequest create;
    create.set_id(Name("bundle"));
    create.set_bundle(bundle);
    auto result = client->Call("containerd.task.v2.Task", "Create", create.SerializeAsString(), options);
    EXPECT_EQ(result.status.code, static_cast<std::int32_t>(ttrpc::Code::kInvalidArgument)) << result.status.message;
  }

  // Oversized: a frame announcing 5 MiB (over the 4 MiB limit) gets
  // ResourceExhausted on its stream; its data is skipped and the next request
  // on the same connection is answered.
  {
    RawConnection raw(socket);
    const std::uint32_t big = ttrpc::kMaxMessageSize + (1u << 20);
    auto header = ttrpc::EncodeFrameHeader({big, 1, static_cast<std::uint8_t>(ttrpc::FrameType::kRequest), 0});
    ASSERT_TRUE(raw.Write(std::string_view(reinterpret_cast<const char*>(header.data()), header.size())));
    ASSERT_TRUE(raw.Write(std::string(big, 'x')));
    auto over = ReadResponse(raw, 30s);
    ASSERT_TRUE(over.has_value());
    EXPECT_EQ(over->stream_id, 1u);
    EXPECT_EQ(over->status.code, static_cast<std::int32_t>(ttrpc::Code::kResourceExhausted)) << over->status.message;
    taskpb::StateRequest query;
    query.set_id(name);
    ASSERT_TRUE(raw.Write(TaskRequestFrame(3, "State", query)));
    auto answered = ReadResponse(raw, 30s);
    ASSERT_TRUE(answered.has_value());
    EXPECT_EQ(answered->stream_id, 3u);
    EXPECT_TRUE(answered->status.ok()) << answered->status.message;
  }
  // Garbage (not ttrpc at all): that connection is dropped.
  for (const std::string& junk : {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                                  std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), std::string(64, '\xff')}) {
    RawConnection raw(socket);
    raw.Write(junk);
    bool closed = false;
    raw.Read(1 << 20, 30s, &closed);
    EXPECT_TRUE(closed) << "the shim kept a connection that sent garbage";
  }
  // A peer that connects and says nothing, then another that stops mid-frame:
  // neither holds up the others.
  RawConnection silent(socket);
  RawConnection truncated(socket);
  truncated.Write(std::string("\x00\x00\x01\x00\x00\x00", 6));

  // Everyone else is still served: the first client, uvmctl, the container.
  taskpb::StateRequest query;
  query.set_id(name);
  auto state_result = client->Call("containerd.task.v2.Task", "State", query.SerializeAsString(), options);
  EXPECT_TRUE(state_result.ok()) << state_result.status.message;
  auto exec = Uvmctl({"exec", name, "echo", "still-serving"});
  EXPECT_EQ(exec.exit_code, 0) << exec.Describe();
  EXPECT_EQ(exec.out, "still-serving\n");
  EXPECT_TRUE(PidAlive(shim_pid));
  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
}

// Process isolation only: in a UVM the agent's channel is a virtio-serial
// port that admits one peer, the shim (its framing: vm_channel_fuzzer).
class HostileAgentSocket : public UvmctlTest {};

TEST_P(HostileAgentSocket, AgentSocketDropsGarbageAndKeepsServing) {
  const std::string name = Name("agentjunk");
  RunDetached(name, {}, {"sleep", "1000"});
  // The host agent's socket: agent.sock below this test's $UVMSHIM_ROOT.
  std::optional<fs::path> agent_socket;
  for (const auto& entry : fs::recursive_directory_iterator(root()))
    if (entry.is_socket() && entry.path().filename() == "agent.sock") agent_socket = entry.path();
  ASSERT_TRUE(agent_socket.has_value()) << "no agent.sock under " << root();
  for (const std::string& junk : {std::string("GET / HTTP/1.1\r\n\r\n"),
                                  std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string(4096, '\x7f'),
                                  // an HTTP/2 frame header announcing 16 MiB
                                  std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x00\x00\x00\x00\x00\x01", 33)}) {
    RawConnection raw(agent_socket->string());
    raw.Write(junk);
    bool closed = false;
    raw.Read(1 << 20, 30s, &closed);
    EXPECT_TRUE(closed) << "the agent kept a connection that sent garbage";
  }
  auto exec = Uvmctl({"exec", name, "echo", "agent-ok"});
  EXPECT_EQ(exec.exit_code, 0) << exec.Describe();
  EXPECT_EQ(exec.out, "agent-ok\n");
  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
}

// Sockets of a running sandbox: root's only, by mode and by directory.
TEST_P(HostileInput, SocketsArePrivateInPrivateDirectories) {
  const std::string name = Name("sockets");
  RunDetached(name, {}, {"sleep", "1000"});
  const auto state = ReadStateJson(root(), name);
  std::set<fs::path> sockets;
  sockets.insert(UnixPath(state.at("shim_address").get<std::string>()));
  const std::string debug = state.value("debug_target", "");
  if (debug.starts_with("unix://")) sockets.insert(UnixPath(debug));
  // Every other socket of the sandbox: under $UVMSHIM_ROOT and next to the ones above.
  std::set<fs::path> dirs = {root()};
  for (const auto& socket : sockets) dirs.insert(socket.parent_path());
  for (const auto& dir : dirs)
    for (const auto& entry : fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied))
      if (entry.is_socket()) sockets.insert(entry.path());
  if (hyperv()) {
    ASSERT_FALSE(debug.empty()) << "hyperv sandbox without a debug console target";
    bool has_debug = false, has_agent = false;
    for (const auto& socket : sockets) {
      has_debug |= socket.filename() == "debug.sock";
      has_agent |= socket.filename() == "agent.sock";
    }
    EXPECT_TRUE(has_debug && has_agent) << "debug.sock and agent.sock of the UVM not found";
  }
  ASSERT_GE(sockets.size(), 2u);
  for (const auto& socket : sockets) {
    SCOPED_TRACE(socket.string());
    struct stat st {};
    ASSERT_EQ(::lstat(socket.c_str(), &st), 0) << std::strerror(errno);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
    EXPECT_EQ(st.st_uid, 0u);
    struct stat dir {};
    ASSERT_EQ(::stat(socket.parent_path().c_str(), &dir), 0);
    EXPECT_EQ(dir.st_mode & 07777, 0700u) << socket.parent_path() << " is " << std::oct << (dir.st_mode & 07777);
    EXPECT_EQ(dir.st_uid, 0u);
  }
  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
}

UVMCTL_INSTANTIATE(HostileIdValidation);
UVMCTL_INSTANTIATE(HostileInput);
INSTANTIATE_TEST_SUITE_P(Isolation, HostileAgentSocket, ::testing::Values("process"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) { return param_info.param; });

}  // namespace
}  // namespace uvmshim::uvmctl_test
