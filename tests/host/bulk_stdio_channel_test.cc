// The host's end of the bulk stdio port (host-shim/bulk_stdio_channel.h)
// over a socketpair: the test plays the agent, writing frames (and garbage)
// and reading the credit the host grants back.
#include "bulk_stdio_channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "common/bulk_frame.h"

namespace uvmshim::host {
namespace {

using namespace std::chrono_literals;

class FakeAgent {
 public:
  FakeAgent() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    host_end.reset(fds[0]);
    agent_end_.reset(fds[1]);
  }
  UniqueFd host_end;

  void Send(const std::string& bytes) {
    ASSERT_EQ(::write(agent_end_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void Data(std::uint32_t stream, const std::string& payload) {
    Send(EncodeBulkHeader({.stream = stream, .length = static_cast<std::uint32_t>(payload.size()),
                           .kind = BulkFrameKind::kData}) +
         payload);
  }
  void End(std::uint32_t stream) { Send(EncodeBulkHeader({.stream = stream, .length = 0, .kind = BulkFrameKind::kEnd})); }
  // Credit granted per stream so far (reads what is there for `wait`).
  std::map<std::uint32_t, std::uint64_t>& Credits(std::chrono::milliseconds wait) {
    char buffer[4096];
    pollfd pfd{agent_end_.get(), POLLIN, 0};
    while (::poll(&pfd, 1, static_cast<int>(wait.count())) > 0) {
      const ssize_t n = ::read(agent_end_.get(), buffer, sizeof buffer);
      if (n <= 0) break;
      EXPECT_TRUE(parser_.Feed(std::string_view(buffer, static_cast<std::size_t>(n)))) << parser_.error();
    }
    return credits_;
  }
  void Close() { agent_end_.reset(); }

 private:
  UniqueFd agent_end_;
  std::map<std::uint32_t, std::uint64_t> credits_;
  BulkFrameParser parser_{{
      .data = {},
      .end = {},
      .credit = [this](std::uint32_t stream, std::uint32_t granted) { credits_[stream] += granted; },
  }};
};

// Everything a stream delivers until its end (or failure), consuming as it goes.
std::string Drain(BulkStdioStream& stream, BulkStdioStream::Next* last = nullptr) {
  std::string all, piece;
  for (int waits = 0;;) {
    auto next = stream.Take(piece, 1000ms);
    if (next == BulkStdioStream::Next::kTimeout && ++waits < 30) continue;  // a loaded machine
    if (next == BulkStdioStream::Next::kData) {
      all += piece;
      stream.Consumed(piece.size());
      continue;
    }
    if (last) *last = next;
    return all;
  }
}

TEST(BulkStdioChannel, StreamsAreDemultiplexedInOrderUntilTheirEnd) {
  FakeAgent agent;
  BulkStdioChannel channel(std::move(agent.host_end), "socketpair");
  auto a = channel.OpenStream(1 << 20);
  auto b = channel.OpenStream(1 << 20);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id(), b->id());
  agent.Data(a->id(), "a1-");
  agent.Data(b->id(), "b1-");
  agent.Data(a->id(), "a2");
  agent.End(a->id());
  agent.Data(b->id(), "b2");
  agent.End(b->id());
  BulkStdioStream::Next last;
  EXPECT_EQ(Drain(*a, &last), "a1-a2");
  EXPECT_EQ(last, BulkStdioStream::Next::kEnd);
  EXPECT_EQ(Drain(*b, &last), "b1-b2");
  EXPECT_EQ(last, BulkStdioStream::Next::kEnd);
}

TEST(BulkStdioChannel, CreditIsGrantedBackAsTheConsumerWrites) {
  FakeAgent agent;
  BulkStdioChannel channel(std::move(agent.host_end), "socketpair");
  auto stream = channel.OpenStream(4000);
  agent.Data(stream->id(), std::string(999, 'x'));
  std::string piece;
  ASSERT_EQ(stream->Take(piece, 2000ms), BulkStdioStream::Next::kData);
  stream->Consumed(piece.size());
  EXPECT_EQ(agent.Credits(200ms)[stream->id()], 0u) << "below a quarter window: batched";
  agent.Data(stream->id(), std::string(1, 'y'));
  ASSERT_EQ(stream->Take(piece, 2000ms), BulkStdioStream::Next::kData);
  stream->Consumed(piece.size());
  EXPECT_EQ(agent.Credits(500ms)[stream->id()], 1000u);
}

// A consumer that does not take its data: the agent may fill its window and
// no more; another stream flows meanwhile; more than the window fails the
// stream instead of growing the queue.
TEST(BulkStdioChannel, AStalledStreamHoldsAtMostItsWindowAndDoesNotHoldOthers) {
  FakeAgent agent;
  BulkStdioChannel channel(std::move(agent.host_end), "socketpair");
  auto stalled = channel.OpenStream(10000);
  auto flowing = channel.OpenStream(10000);
  agent.Data(stalled->id(), std::string(10000, 's'));  // the whole window, not taken
  for (int i = 0; i < 100; ++i) {
    agent.Data(flowing->id(), std::string(5000, 'f'));
    std::string piece;
    ASSERT_EQ(flowing->Take(piece, 2000ms), BulkStdioStream::Next::kData) << "round " << i;
    EXPECT_EQ(piece.size(), 5000u);
    flowing->Consumed(piece.size());
  }
  agent.Data(stalled->id(), "one byte too many");
  // The channel's reader fails the stream when it reads that frame; taking
  // (and consuming) the stalled data before then would grant the credit that
  // makes the frame fit. Wait for the reader, as a stalled reader would.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (stalled->failure().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  BulkStdioStream::Next last;
  EXPECT_EQ(Drain(*stalled, &last), "");
  EXPECT_EQ(last, BulkStdioStream::Next::kFailed);
  EXPECT_NE(stalled->failure().find("more than its credit"), std::string::npos) << stalled->failure();
  EXPECT_TRUE(channel.failure().empty()) << "one stream's fault failed the channel";
}

TEST(BulkStdioChannel, GarbageFailsEveryStreamWithTheReasonAndNoNewOnes) {
  FakeAgent agent;
  BulkStdioChannel channel(std::move(agent.host_end), "socketpair");
  auto stream = channel.OpenStream();
  agent.Data(stream->id(), "whole");
  agent.Send(std::string(64, '\xff'));
  BulkStdioStream::Next last;
  EXPECT_EQ(Drain(*stream, &last), "whole") << "what came whole before the garbage is delivered";
  EXPECT_EQ(last, BulkStdioStream::Next::kFailed);
  EXPECT_NE(stream->failure().find("bad magic"), std::string::npos) << stream->failure();
  EXPECT_EQ(channel.OpenStream(), nullptr);
}

TEST(BulkStdioChannel, AnOversizedFrameFailsWithoutAllocatingIt) {
  FakeAgent agent;
  BulkStdioChannel channel(std::move(agent.host_end), "socketpair");
  auto stream = channel.OpenStream();
  agent.Send(EncodeBulkHeader({.stream = stream->id(), .length = 0x7fffffff, .kind = BulkFrameKind::kData}));
  BulkStdioStream::Next last;
  Drain(*stream, &last);
  EXPECT_EQ(last, BulkStdioStream::Next::kFailed);
  EXPECT_NE(stream->failure().find("over the limit"), std::string::npos) << stream->failure();
}

TEST(BulkStdioChannel, TheVmGoingAwayFailsOpenStreams) {
  FakeAgent agent;
  BulkStdioChannel channel(std::move(agent.host_end), "socketpair");
  auto stream = channel.OpenStream();
  agent.Close();
  BulkStdioStream::Next last;
  Drain(*stream, &last);
  EXPECT_EQ(last, BulkStdioStream::Next::kFailed);
  EXPECT_NE(stream->failure().find("closed"), std::string::npos) << stream->failure();
}

TEST(BulkStdioChannel, DataOfAClosedStreamIsDroppedAndCounted) {
  FakeAgent agent;
  BulkStdioChannel channel(std::move(agent.host_end), "socketpair");
  std::uint32_t id = channel.OpenStream()->id();  // closed at once
  agent.Data(id, "late");
  agent.End(id);
  auto next = channel.OpenStream();
  agent.Data(next->id(), "fresh");
  agent.End(next->id());
  EXPECT_EQ(Drain(*next), "fresh");
  EXPECT_EQ(channel.dropped_bytes(), 4u);
}

TEST(BulkStdioChannel, TheSwitchIsOffUnlessOne) {
  ::unsetenv("UVMSHIM_STDIO_BULK");
  EXPECT_FALSE(BulkStdioEnabled());
  ::setenv("UVMSHIM_STDIO_BULK", "0", 1);
  EXPECT_FALSE(BulkStdioEnabled());
  ::setenv("UVMSHIM_STDIO_BULK", "1", 1);
  EXPECT_TRUE(BulkStdioEnabled());
  ::unsetenv("UVMSHIM_STDIO_BULK");
}

}  // namespace
}  // namespace uvmshim::host
