// Server and client over real Unix sockets.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "test_util.h"
#include "ttrpc/client.h"
#include "ttrpc/server.h"
#include "ttrpc/typed.h"
#include "containerd/task/v2/shim.pb.h"

namespace uvmshim::ttrpc {
namespace {

using namespace std::chrono_literals;
using testing::PeerClosed;
using testing::ReadFrame;
using testing::SendRaw;
using testing::TempDir;

constexpr char kSvc[] = "test.v1.Echo";

Result Echo(const RequestContext& ctx, const std::string& payload) {
  return Result::Ok(ctx.Namespace() + ":" + payload);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Register(kSvc, "Echo", Echo);
    server_.Listen(path_);
  }
  std::string RawRequestFrame(std::uint32_t stream, const std::string& method, const std::string& payload) {
    return EncodeFrame(stream, FrameType::kRequest, EncodeRequest({kSvc, method, payload, 0, {}}));
  }
  Result Expect(const Frame& f) {
    EXPECT_EQ(f.header.type, static_cast<std::uint8_t>(FrameType::kResponse));
    auto r = DecodeResponse(f.payload);
    EXPECT_TRUE(r.has_value());
    return r.value_or(Result{});
  }

  TempDir dir_;
  std::string path_ = dir_.Socket();
  Server server_;
};

TEST_F(ServerTest, EchoWithNamespaceMetadata) {
  auto client = Client::Connect("unix://" + path_);
  auto r = client->Call(kSvc, "Echo", "hi", CallOptions::ForNamespace("k8s.io"));
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  EXPECT_EQ(r.payload, "k8s.io:hi");
}

TEST_F(ServerTest, SocketIsPrivateAndRemovedOnShutdown) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  server_.Shutdown();
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(ServerTest, UnknownServiceOrMethodIsUnimplemented) {
  auto client = Client::Connect(path_);
  auto r1 = client->Call("no.such.Service", "Echo", "");
  EXPECT_EQ(r1.status.code, 12) << r1.status.ToString();
  auto r2 = client->Call(kSvc, "NoSuchMethod", "");
  EXPECT_EQ(r2.status.code, 12) << r2.status.ToString();
  EXPECT_TRUE(client->Call(kSvc, "Echo", "x").ok());  // connection still fine
}

TEST_F(ServerTest, HandlerStatusAndExceptionsReachTheClient) {
  server_.Register(kSvc, "NotFound", [](const RequestContext&, const std::string&) -> Result {
    return Status(Code::kNotFound, "container x not found");
  });
  server_.Register(kSvc, "Throw", [](const RequestContext&, const std::string&) -> Result {
    throw std::runtime_error("boom");
  });
  auto client = Client::Connect(path_);
  auto r = client->Call(kSvc, "NotFound", "");
  EXPECT_EQ(r.status.code, 5);
  EXPECT_EQ(r.status.message, "container x not found");
  auto t = client->Call(kSvc, "Throw", "");
  EXPECT_EQ(t.status.code, 13);
  EXPECT_EQ(t.status.message, "boom");
}

TEST_F(ServerTest, TimeoutReachesHandlerAsDeadline) {
  std::promise<std::pair<std::int64_t, bool>> seen;
  server_.Register(kSvc, "Deadline", [&](const RequestContext& ctx, const std::string&) -> Result {
    seen.set_value({ctx.timeout_nano, ctx.deadline.has_value()});
    return Result::Ok("");
  });
  auto client = Client::Connect(path_);
  CallOptions o;
  o.timeout = 3s;
  ASSERT_TRUE(client->Call(kSvc, "Deadline", "", o).ok());
  auto [nanos, has_deadline] = seen.get_future().get();
  EXPECT_EQ(nanos, 3'000'000'000);
  EXPECT_TRUE(has_deadline);
}

// containerd sends a blocking Wait and then more calls on the same
// connection: the later, fast call must be answered first.
TEST_F(ServerTest, ConcurrentRequestsAreAnsweredOutOfOrder) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  server_.Register(kSvc, "Slow", [&](const RequestContext&, const std::string&) -> Result {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return release; });
    return Result::Ok("slow");
  });
  auto fd = ConnectUnix(path_);
  SendRaw(fd.get(), RawRequestFrame(1, "Slow", "") + RawRequestFrame(3, "Echo", "fast"));
  auto first = ReadFrame(fd.get());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->header.stream_id, 3u);
  EXPECT_EQ(Expect(*first).payload, ":fast");
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  auto second = ReadFrame(fd.get());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->header.stream_id, 1u);
  EXPECT_EQ(Expect(*second).payload, "slow");
}

TEST_F(ServerTest, ClientMultiplexesConcurrentCalls) {
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  server_.Register(kSvc, "Sleep", [&](const RequestContext&, const std::string& p) -> Result {
    int now = ++inside;
    int prev = max_inside.load();
    while (now > prev && !max_inside.compare_exchange_weak(prev, now)) {
    }
    std::this_thread::sleep_for(100ms);
    --inside;
    return Result::Ok(p);
  });
  auto client = Client::Connect(path_);
  std::vector<std::future<Result>> calls;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 16; ++i) {
    calls.push_back(std::async(std::launch::async, [&, i] {
      return client->Call(kSvc, "Sleep", std::to_string(i));
    }));
  }
  for (int i = 0; i < 16; ++i) {
    auto r = calls[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(r.ok()) << r.status.ToString();
    EXPECT_EQ(r.payload, std::to_string(i));
  }
  // 16 calls of 100 ms each, served concurrently.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_GT(max_inside.load(), 1);
}

TEST_F(ServerTest, OversizedFrameGetsResourceExhaustedAndConnectionSurvives) {
  auto fd = ConnectUnix(path_);
  const std::uint32_t length = kMaxMessageSize + 1;
  const auto header = EncodeFrameHeader({length, 5, 1, 0});
  SendRaw(fd.get(), std::string_view(reinterpret_cast<const char*>(header.data()), header.size()));
  // The server must drain the data without buffering or answering out of turn;
  // send it from another thread since the socket buffer is smaller than 4 MiB.
  std::thread writer([&] { SendRaw(fd.get(), std::string(length, 'x') + RawRequestFrame(7, "Echo", "after")); });
  auto first = ReadFrame(fd.get());
  auto second = ReadFrame(fd.get());
  writer.join();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->header.stream_id, 5u);
  auto status = Expect(*first).status;
  EXPECT_EQ(status.code, 8);
  EXPECT_EQ(status.message, "message length 4194305 exceed maximum message size of 4194304");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->header.stream_id, 7u);
  EXPECT_EQ(Expect(*second).payload, ":after");
}

TEST_F(ServerTest, GarbageClosesThatConnectionOnly) {
  auto other = Client::Connect(path_);
  ASSERT_TRUE(other->Call(kSvc, "Echo", "").ok());
  {
    auto fd = ConnectUnix(path_);
    // A request frame whose payload is not a ttrpc.Request.
    SendRaw(fd.get(), EncodeFrame(1, FrameType::kRequest, std::string("\xff\xff\xff\xff", 4)));
    EXPECT_TRUE(PeerClosed(fd.get()));
  }
  {
    auto fd = ConnectUnix(path_);
    // A frame type a client must never send.
    SendRaw(fd.get(), EncodeFrame(1, FrameType::kResponse, ""));
    EXPECT_TRUE(PeerClosed(fd.get()));
  }
  {
    auto fd = ConnectUnix(path_);
    SendRaw(fd.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // huge length in the "header"
  }
  // The server is alive for existing and new connections.
  EXPECT_TRUE(other->Call(kSvc, "Echo", "").ok());
  auto fresh = Client::Connect(path_);
  auto r = fresh->Call(kSvc, "Echo", "again");
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  EXPECT_EQ(r.payload, ":again");
}

TEST_F(ServerTest, ConnectionsAreReleasedWhenClientsLeave) {
  for (int i = 0; i < 5; ++i) {
    auto c = Client::Connect(path_);
    ASSERT_TRUE(c->Call(kSvc, "Echo", "").ok());
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server_.connection_count() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(server_.connection_count(), 0u);
}

TEST_F(ServerTest, ClientTimeoutThenConnectionStillUsable) {
  server_.Register(kSvc, "Slow", [](const RequestContext&, const std::string&) -> Result {
    std::this_thread::sleep_for(500ms);
    return Result::Ok("late");
  });
  auto client = Client::Connect(path_);
  CallOptions o;
  o.timeout = 50ms;
  const auto start = std::chrono::steady_clock::now();
  auto r = client->Call(kSvc, "Slow", "", o);
  EXPECT_EQ(r.status.code, 4) << r.status.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 400ms);
  // The late answer to the abandoned stream is dropped; new calls still match their ids.
  std::this_thread::sleep_for(600ms);
  auto e = client->Call(kSvc, "Echo", "next");
  ASSERT_TRUE(e.ok()) << e.status.ToString();
  EXPECT_EQ(e.payload, ":next");
}

TEST_F(ServerTest, ClientSeesUnavailableWhenServerGoesAway) {
  std::promise<void> entered;
  server_.Register(kSvc, "Block", [&](const RequestContext& ctx, const std::string&) -> Result {
    entered.set_value();
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait(lock, ctx.stop, [] { return false; });
    return Status(Code::kCanceled, "stopped");
  });
  auto client = Client::Connect(path_);
  auto pending = std::async(std::launch::async, [&] { return client->Call(kSvc, "Block", ""); });
  entered.get_future().wait();
  server_.Shutdown(100ms);  // grace runs out, stop token fires, handler returns
  auto r = pending.get();
  // Either the handler's answer made it out before the close, or the client saw the close.
  EXPECT_TRUE(r.status.code == 1 || r.status.code == 14) << r.status.ToString();
  EXPECT_EQ(client->Call(kSvc, "Echo", "").status.code, 14);
  // The reader notices the close asynchronously.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!client->closed() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(client->closed());
}

TEST_F(ServerTest, GracefulShutdownFinishesInFlightRequests) {
  std::promise<void> entered;
  server_.Register(kSvc, "Work", [&](const RequestContext&, const std::string&) -> Result {
    entered.set_value();
    std::this_thread::sleep_for(200ms);
    return Result::Ok("done");
  });
  auto client = Client::Connect(path_);
  auto pending = std::async(std::launch::async, [&] { return client->Call(kSvc, "Work", ""); });
  entered.get_future().wait();
  server_.Shutdown(5s);
  auto r = pending.get();
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  EXPECT_EQ(r.payload, "done");
  EXPECT_THROW(Client::Connect(path_), std::system_error);
}

TEST_F(ServerTest, StopTokenFiresWhenClientDisconnects) {
  std::promise<void> entered;
  std::promise<bool> stopped;
  server_.Register(kSvc, "Wait", [&](const RequestContext& ctx, const std::string&) -> Result {
    entered.set_value();
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    const bool got = cv.wait_for(lock, ctx.stop, 10s, [] { return false; });
    stopped.set_value(ctx.stop.stop_requested() && !got);
    return Status(Code::kCanceled, "client left");
  });
  {
    auto fd = ConnectUnix(path_);
    SendRaw(fd.get(), RawRequestFrame(1, "Wait", ""));
    entered.get_future().wait();
  }  // close
  auto f = stopped.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get());
}

TEST_F(ServerTest, TypedHandlersDecodeAndRejectGarbage) {
  namespace taskpb = containerd::task::v2;
  RegisterTyped<taskpb::StartRequest, taskpb::StartResponse>(
      server_, "containerd.task.v2.Task", "Start",
      [](const RequestContext&, const taskpb::StartRequest& req, taskpb::StartResponse& resp) {
        if (req.id().empty()) return Status(Code::kInvalidArgument, "id is required");
        resp.set_pid(static_cast<std::uint32_t>(req.id().size()));
        return Status::Ok();
      });
  auto client = Client::Connect(path_);
  taskpb::StartRequest req;
  req.set_id("abcd");
  taskpb::StartResponse resp;
  ASSERT_TRUE(CallTyped(*client, "containerd.task.v2.Task", "Start", req, resp).ok());
  EXPECT_EQ(resp.pid(), 4u);
  req.clear_id();
  EXPECT_EQ(CallTyped(*client, "containerd.task.v2.Task", "Start", req, resp).code, 3);
  // Not a StartRequest at all (field 1 with wire type 7).
  EXPECT_EQ(client->Call("containerd.task.v2.Task", "Start", std::string("\x0f", 1)).status.code, 3);
}

TEST(Server, AbstractSocket) {
  const std::string name = "@uvmshim-ttrpc-test-" + std::to_string(::getpid());
  Server server;
  server.Register(kSvc, "Echo", Echo);
  server.Listen(name);
  auto client = Client::Connect("unix://" + name);
  auto r = client->Call(kSvc, "Echo", "abs");
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  EXPECT_EQ(r.payload, ":abs");
}

TEST(Server, ListenFailsWithContext) {
  TempDir dir;
  Server a;
  a.Listen(dir.Socket());
  Server b;
  try {
    b.Listen(dir.Socket());
    FAIL() << "second bind succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
    EXPECT_NE(std::string(e.what()).find(dir.Socket()), std::string::npos) << e.what();
  }
  EXPECT_THROW(Client::Connect(dir.Socket() + ".missing"), std::system_error);
}

TEST(Client, CallsRacingCloseFailCleanly) {
  TempDir dir;
  Server server;
  server.Register(kSvc, "Echo", Echo);
  server.Listen(dir.Socket());
  for (int round = 0; round < 20; ++round) {
    auto client = Client::Connect(dir.Socket());
    std::vector<std::future<Result>> calls;
    for (int i = 0; i < 4; ++i) {
      calls.push_back(std::async(std::launch::async, [&] { return client->Call(kSvc, "Echo", "x"); }));
    }
    client->Close();
    for (auto& c : calls) {
      const auto r = c.get();
      EXPECT_TRUE(r.ok() || r.status.code == 14) << r.status.ToString();
    }
  }
}

TEST(PeerCredentials, Rule) {
  EXPECT_TRUE(PeerAllowed({1, 1000, 1000}, 1000));
  EXPECT_TRUE(PeerAllowed({1, 0, 0}, 1000));    // root may always connect
  EXPECT_FALSE(PeerAllowed({1, 1001, 1000}, 1000));
  EXPECT_TRUE(PeerAllowed({1, 0, 0}, 0));
  EXPECT_FALSE(PeerAllowed({1, 65534, 65534}, 0));
}

TEST(PeerCredentials, ReportsThisProcess) {
  TempDir dir;
  Server server;
  server.Register(kSvc, "Who", [](const RequestContext& ctx, const std::string&) -> Result {
    return Result::Ok(std::to_string(ctx.peer.pid) + "/" + std::to_string(ctx.peer.uid));
  });
  server.Listen(dir.Socket());
  auto client = Client::Connect(dir.Socket());
  auto r = client->Call(kSvc, "Who", "");
  EXPECT_EQ(r.payload, std::to_string(::getpid()) + "/" + std::to_string(::geteuid()));
}

// A peer with another uid is dropped before any request is read. Needs root
// to run the peer as nobody.
TEST(PeerCredentials, OtherUidIsRejected) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  ServerOptions options;
  options.allowed_uid = 0;
  Server server(options);
  server.Register(kSvc, "Echo", Echo);
  const std::string path = dir.Socket();
  server.Listen(path);
  ::chmod(path.c_str(), 0666);  // let nobody reach the socket: the uid check must stop it
  // Everything the child needs is prepared before fork: after fork in a
  // threaded process it may only make plain system calls.
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const std::string req = EncodeFrame(1, FrameType::kRequest, EncodeRequest({kSvc, "Echo", "", 0, {}}));
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) ::_exit(12);
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) ::_exit(0);  // already closed: rejected
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::_exit(n <= 0 && !(n < 0 && errno == EAGAIN) ? 0 : 11);  // closed without an answer
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace uvmshim::ttrpc
