// The loopback relay and the socket layer on real TCP loopback sockets (the
// same code the Windows build runs over Winsock and hvsocket).
#include "uvm/hcs/stream_relay.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "echo_server.h"
#include "test_util.h"

namespace uvmshim::uvm::hcs::net {
namespace {

using namespace std::chrono_literals;
using uvmshim::uvm::hcs::testing::EchoServer;
using uvmshim::uvm::hcs::testing::Elapsed;
using uvmshim::uvm::hcs::testing::ReadExactly;
using uvmshim::uvm::hcs::testing::ReadToEnd;

std::uint16_t PortOf(const std::string& target) {
  EXPECT_EQ(target.rfind("ipv4:127.0.0.1:", 0), 0u) << target;
  return static_cast<std::uint16_t>(std::stoi(target.substr(target.rfind(':') + 1)));
}

std::string RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen());
  return out;
}

class StreamRelayTest : public ::testing::Test {
 protected:
  std::unique_ptr<StreamRelay> MakeRelay(RelayOptions options = {}) {
    auto listener = std::make_unique<TcpLoopbackListener>(0);
    const std::uint16_t upstream = echo_.port();
    auto relay = std::make_unique<StreamRelay>(
        std::move(listener),
        [this, upstream](std::chrono::milliseconds timeout) -> std::unique_ptr<ByteStream> {
          ++dials_;
          if (fail_dial_) throw SocketError("upstream unreachable (test)");
          return std::make_unique<SocketStream>(ConnectTcpLoopback(upstream, timeout));
        },
        std::move(options));
    relay->Start();
    return relay;
  }

  SocketStream Connect(const StreamRelay& relay) {
    return SocketStream(ConnectTcpLoopback(PortOf(relay.Target()), 1s));
  }

  SocketRuntime runtime_;
  EchoServer echo_;
  std::atomic<int> dials_{0};
  std::atomic<bool> fail_dial_{false};
};

TEST_F(StreamRelayTest, PumpsBytesBothWaysAndPassesHalfClose) {
  auto relay = MakeRelay();
  SocketStream client = Connect(*relay);
  const std::string payload = RandomBytes(4 << 20, 1);  // larger than any socket buffer
  std::thread writer([&] {
    client.WriteAll(payload);
    client.ShutdownWrite();  // the agent sees EOF, echoes it back as EOF
  });
  const std::string echoed = ReadToEnd(client);
  writer.join();
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
  RelayStats stats = relay->stats();
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.bytes_to_upstream, payload.size());
  EXPECT_EQ(stats.bytes_to_downstream, payload.size());
}

TEST_F(StreamRelayTest, EachConnectionGetsItsOwnUpstream) {
  auto relay = MakeRelay();
  constexpr int kClients = 4;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      SocketStream client = Connect(*relay);
      const std::string payload = RandomBytes(256 * 1024, 100 + static_cast<unsigned>(i));
      std::thread writer([&] { client.WriteAll(payload); });
      const std::string echoed = ReadExactly(client, payload.size());
      writer.join();
      if (echoed == payload) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients);
  EXPECT_EQ(dials_.load(), kClients);
  EXPECT_EQ(echo_.connections(), kClients);
}

TEST_F(StreamRelayTest, DialFailureClosesTheClient) {
  fail_dial_ = true;
  auto relay = MakeRelay();
  SocketStream client = Connect(*relay);
  const auto begin = std::chrono::steady_clock::now();
  std::string got;
  try {
    got = ReadToEnd(client);
  } catch (const SocketError&) {
    // a reset is as good as an EOF here
  }
  EXPECT_TRUE(got.empty());
  EXPECT_LT(Elapsed(begin), 2s);
  EXPECT_EQ(relay->stats().dial_failures, 1u);
}

TEST_F(StreamRelayTest, PeerFilterRefusesBeforeDialing) {
  RelayOptions options;
  std::atomic<int> seen_local_port{0};
  options.peer_filter = [&](const PeerAddress& peer) {
    seen_local_port = peer.local_port;
    EXPECT_EQ(peer.ipv4, 0x7F000001u);
    EXPECT_NE(peer.port, 0);
    return false;
  };
  auto relay = MakeRelay(std::move(options));
  SocketStream client = Connect(*relay);
  std::string got;
  try {
    got = ReadToEnd(client);
  } catch (const SocketError&) {
  }
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(dials_.load(), 0);
  EXPECT_EQ(relay->stats().refused, 1u);
  EXPECT_EQ(seen_local_port.load(), PortOf(relay->Target()));
}

TEST_F(StreamRelayTest, MaxConnectionsRefusesExtraClients) {
  RelayOptions options;
  options.max_connections = 1;
  auto relay = MakeRelay(std::move(options));
  SocketStream first = Connect(*relay);
  first.WriteAll(std::string("x"));
  EXPECT_EQ(ReadExactly(first, 1), "x");  // first is live
  SocketStream second = Connect(*relay);
  std::string got;
  try {
    got = ReadToEnd(second);
  } catch (const SocketError&) {
  }
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(relay->stats().refused, 1u);
}

TEST_F(StreamRelayTest, UpstreamCloseReachesClient) {
  auto relay = MakeRelay();
  SocketStream client = Connect(*relay);
  client.WriteAll(std::string("ping"));
  EXPECT_EQ(ReadExactly(client, 4), "ping");
  echo_.Stop();  // the agent goes away
  std::string rest;
  try {
    rest = ReadToEnd(client);
  } catch (const SocketError&) {
  }
  EXPECT_TRUE(rest.empty());
}

TEST_F(StreamRelayTest, StopEndsLiveConnectionsPromptly) {
  auto relay = MakeRelay();
  SocketStream client = Connect(*relay);
  client.WriteAll(std::string("hold"));
  EXPECT_EQ(ReadExactly(client, 4), "hold");
  EXPECT_EQ(relay->stats().active, 1u);
  const auto begin = std::chrono::steady_clock::now();
  relay->Stop();  // joins every relay thread
  EXPECT_LT(Elapsed(begin), 2s);
  std::string rest;
  try {
    rest = ReadToEnd(client);
  } catch (const SocketError&) {
  }
  EXPECT_TRUE(rest.empty());
  relay->Stop();  // idempotent
}

TEST(Sockets, ConnectToClosedPortFailsWithReason) {
  SocketRuntime runtime;
  std::uint16_t port;
  {
    TcpLoopbackListener listener(0);
    port = listener.port();
  }  // closed again: nothing listens there now
  try {
    ConnectTcpLoopback(port, 1s);
    FAIL() << "connected to a closed port";
  } catch (const SocketError& e) {
    EXPECT_NE(std::string(e.what()).find("connect to 127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << e.what();
  }
}

TEST(Sockets, ConnectHonoursTimeout) {
  SocketRuntime runtime;
  // TEST-NET-1 (RFC 5737) is never routed: either the network says so at
  // once or the connect times out; it must not hang past the timeout.
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_THROW(
      {
        std::uint8_t addr[16] = {};
        addr[0] = 2;  // AF_INET, little-endian sa_family on Linux and Windows
        addr[1] = 0;
        addr[2] = 0;
        addr[3] = 9;  // port 9 (big-endian)
        addr[4] = 192;
        addr[5] = 0;
        addr[6] = 2;
        addr[7] = 1;
        ConnectWithTimeout(2, 1, 0, addr, sizeof addr, 300ms, "connect to 192.0.2.1:9");
      },
      SocketError);
  EXPECT_LT(Elapsed(begin), 3s);
}

TEST(Sockets, ListenerTimesOutWithoutClients) {
  TcpLoopbackListener listener(0);
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_EQ(listener.Accept(50ms, nullptr), nullptr);
  EXPECT_GE(Elapsed(begin), 40ms);
  EXPECT_EQ(listener.Target(), "ipv4:127.0.0.1:" + std::to_string(listener.port()));
}

TEST(Sockets, AbortWakesABlockedRead) {
  TcpLoopbackListener listener(0);
  SocketStream client(ConnectTcpLoopback(listener.port(), 1s));
  auto server = listener.Accept(1s, nullptr);
  ASSERT_TRUE(server);
  std::thread aborter([&] {
    std::this_thread::sleep_for(50ms);
    server->Abort();
  });
  char buf[16];
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_THROW(server->Read(buf), SocketError);
  EXPECT_LT(Elapsed(begin), 1s);
  aborter.join();
}

}  // namespace
}  // namespace uvmshim::uvm::hcs::net
