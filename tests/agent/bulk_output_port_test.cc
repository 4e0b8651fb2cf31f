// The agent's end of the bulk stdio port (guest-agent/bulk_output_port.h)
// against a socketpair standing in for the virtio-serial port: a real pipe
// is the process's stdout, the test plays the host (parses frames, grants
// credit). Splice into a socket takes the same path of the writer as into
// the port, but for the port's empty-pipe trap, which the private pipe avoids.
#include "guest-agent/bulk_output_port.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "common/bulk_frame.h"
#include "common/error.h"

namespace uvmshim::agent {
namespace {

using namespace std::chrono_literals;

struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read.reset(fds[0]);
    write.reset(fds[1]);
    ::fcntl(read.get(), F_SETFL, O_NONBLOCK);  // as Process holds it
  }
};

// The host's side: everything the agent sent, parsed.
class FakeHost {
 public:
  FakeHost() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    agent_end.reset(fds[0]);
    host_end_.reset(fds[1]);
  }
  UniqueFd agent_end;

  // Reads what is there for up to `wait`.
  void Read(std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    char buffer[65536];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      pollfd pfd{host_end_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return;
      const ssize_t n = ::read(host_end_.get(), buffer, sizeof buffer);
      if (n <= 0) return;
      ASSERT_TRUE(parser_.Feed(std::string_view(buffer, static_cast<std::size_t>(n)))) << parser_.error();
    }
  }
  void Grant(std::uint32_t stream, std::uint32_t bytes) {
    const std::string frame = EncodeBulkHeader({.stream = stream, .length = bytes, .kind = BulkFrameKind::kCredit});
    ASSERT_EQ(::write(host_end_.get(), frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  }
  std::map<std::uint32_t, std::string> data;
  std::map<std::uint32_t, int> ends;

 private:
  UniqueFd host_end_;
  BulkFrameParser parser_{{
      .data = [this](std::uint32_t stream, std::string_view piece) { data[stream].append(piece); },
      .end = [this](std::uint32_t stream) { ++ends[stream]; },
      .credit = {},
  }};
};

TEST(BulkOutputPort, MovesAPipeWholeAndEndsAfterTheExitDrain) {
  FakeHost host;
  BulkOutputPort port(std::move(host.agent_end), "socketpair");
  Pipe out;
  UniqueFd exited(::eventfd(0, EFD_CLOEXEC));
  std::string written;
  for (int i = 0; written.size() < 3 * 1024 * 1024; ++i) written += "line " + std::to_string(i) + "\n";
  std::thread process([&] {
    std::size_t at = 0;
    while (at < written.size()) {
      const ssize_t n = ::write(out.write.get(), written.data() + at, written.size() - at);
      ASSERT_GT(n, 0);
      at += static_cast<std::size_t>(n);
    }
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(exited.get(), &one, sizeof one), 8);  // exits; a child keeps the pipe open
  });
  auto stream = port.Open(5, 64 * 1024 * 1024);
  stream->MarkAnnounced();
  PumpEnd end = PumpEnd::kReadError;
  std::thread pump([&] { end = stream->Pump({out.read.get(), exited.get(), false}, [] { return false; }); });
  while (host.data[5].size() < written.size()) {
    host.Read(2000ms);
    if (HasFatalFailure()) break;
  }
  process.join();
  pump.join();
  EXPECT_EQ(end, PumpEnd::kDrainedAfterExit);
  stream->WriteEnd();
  stream->WriteEnd();  // once only
  host.Read(200ms);
  EXPECT_EQ(host.data[5], written);
  EXPECT_EQ(host.ends[5], 1);
}

TEST(BulkOutputPort, SendsNoMoreThanTheCreditAndResumesOnGrant) {
  FakeHost host;
  BulkOutputPort port(std::move(host.agent_end), "socketpair");
  Pipe out;
  ::fcntl(out.write.get(), F_SETPIPE_SZ, 1024 * 1024);
  const std::string written(512 * 1024, 'z');
  ASSERT_EQ(::write(out.write.get(), written.data(), written.size()), static_cast<ssize_t>(written.size()));
  out.write.reset();  // EOF after the data
  auto stream = port.Open(6, 100000);
  stream->MarkAnnounced();
  PumpEnd end = PumpEnd::kReadError;
  std::atomic<bool> done{false};
  std::thread pump([&] {
    end = stream->Pump({out.read.get(), -1, false}, [] { return false; });
    done = true;
  });
  host.Read(1000ms);
  EXPECT_EQ(host.data[6].size(), 100000u) << "sent beyond (or short of) the window";
  EXPECT_FALSE(done.load());
  std::uint64_t granted = 100000;
  while (!done && granted < 10 * written.size()) {
    host.Grant(6, 150000);
    granted += 150000;
    host.Read(300ms);
    EXPECT_LE(host.data[6].size(), granted);
  }
  pump.join();
  EXPECT_EQ(end, PumpEnd::kEof);
  EXPECT_EQ(host.data[6], written);
}

TEST(BulkOutputPort, AStreamWithoutCreditDoesNotHoldAnother) {
  FakeHost host;
  BulkOutputPort port(std::move(host.agent_end), "socketpair");
  Pipe stalled, flowing;
  const std::string big(300000, 's');
  ASSERT_EQ(::write(stalled.write.get(), big.data(), 65536), 65536);
  auto stalled_stream = port.Open(1, 1000);
  auto flowing_stream = port.Open(2, 1 << 20);
  std::atomic<bool> stop{false};
  std::thread stalled_pump([&] { stalled_stream->Pump({stalled.read.get(), -1, false}, [&] { return stop.load(); }); });
  const std::string small(200000, 'f');
  ASSERT_EQ(::write(flowing.write.get(), small.data(), 65536), 65536);
  flowing.write.reset();
  PumpEnd end = PumpEnd::kReadError;
  std::thread flowing_pump([&] { end = flowing_stream->Pump({flowing.read.get(), -1, false}, [] { return false; }); });
  flowing_pump.join();
  EXPECT_EQ(end, PumpEnd::kEof);
  host.Read(300ms);
  EXPECT_EQ(host.data[2].size(), 65536u);
  EXPECT_EQ(host.data[1].size(), 1000u);
  stop = true;  // the stalled reader goes away: its pump ends as cancelled
  stalled_pump.join();
}

TEST(BulkOutputPort, IdsAreCheckedAndReusableAfterClose) {
  FakeHost host;
  BulkOutputPort port(std::move(host.agent_end), "socketpair");
  EXPECT_THROW(port.Open(0, 10), Error);
  EXPECT_THROW(port.Open(1, 0), Error);
  {
    auto first = port.Open(1, 10);
    try {
      port.Open(1, 10);
      FAIL() << "a second stream 1 was opened";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kAlreadyExists);
    }
  }
  EXPECT_NO_THROW(port.Open(1, 10));
  host.Read(100ms);
  EXPECT_EQ(host.ends.count(1), 0u) << "an unannounced stream wrote an end frame";
}

TEST(BulkOutputPort, AnAnnouncedStreamEndsEvenWhenDroppedEarly) {
  FakeHost host;
  BulkOutputPort port(std::move(host.agent_end), "socketpair");
  {
    auto stream = port.Open(4, 10);
    stream->MarkAnnounced();
  }
  host.Read(200ms);
  EXPECT_EQ(host.ends[4], 1);
}

}  // namespace
}  // namespace uvmshim::agent
