#include "guest-agent/output_pump.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "common/unique_fd.h"

namespace uvmshim::agent {
namespace {

struct PipeFixture {
  PipeFixture() {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
    fcntl(write_end.get(), F_SETFL, 0);  // blocking writer
    exited.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }
  void MarkExited() {
    uint64_t one = 1;
    ASSERT_EQ(write(exited.get(), &one, sizeof one), 8);
  }
  PumpSource source() const { return {read_end.get(), exited.get()}; }
  UniqueFd read_end, write_end, exited;
};

std::vector<std::string> Pump(PipeFixture& p, PumpEnd* end, size_t chunk = kOutputChunkBytes) {
  std::vector<std::string> chunks;
  std::string buffer;
  *end = PumpOutput(p.source(), buffer, [&](std::string& data) {
    chunks.push_back(data);
    return true;
  }, nullptr, chunk);
  return chunks;
}

TEST(OutputPump, EndsAtEofWithEverything) {
  PipeFixture p;
  ASSERT_EQ(write(p.write_end.get(), "hello ", 6), 6);
  ASSERT_EQ(write(p.write_end.get(), "world", 5), 5);
  p.write_end.reset();
  PumpEnd end;
  auto chunks = Pump(p, &end);
  EXPECT_EQ(end, PumpEnd::kEof);
  std::string all;
  for (auto& c : chunks) all += c;
  EXPECT_EQ(all, "hello world");
}

TEST(OutputPump, ChunksAreBoundedAndInOrder) {
  PipeFixture p;
  std::string data;
  for (int i = 0; i < 50000; ++i) data += std::to_string(i) + "\n";
  std::thread writer([&] {
    ASSERT_EQ(write(p.write_end.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    p.write_end.reset();
  });
  PumpEnd end;
  auto chunks = Pump(p, &end, 4096);
  writer.join();
  EXPECT_EQ(end, PumpEnd::kEof);
  std::string all;
  for (auto& c : chunks) {
    EXPECT_LE(c.size(), 4096u);
    EXPECT_FALSE(c.empty());
    all += c;
  }
  EXPECT_EQ(all, data);
  EXPECT_GE(chunks.size(), data.size() / 4096);
}

TEST(OutputPump, ChunksGrowForFloodsAndStaySmallForTrickles) {
  PipeFixture p;
  fcntl(p.write_end.get(), F_SETPIPE_SZ, 1 << 20);
  std::string data(6 << 20, 'f');
  std::thread writer([&] {
    ASSERT_EQ(write(p.write_end.get(), "x", 1), 1);  // a trickle first
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(write(p.write_end.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    p.write_end.reset();
  });
  PumpEnd end;
  std::vector<size_t> sizes;
  std::string buffer;
  size_t total = 0;
  end = PumpOutput(p.source(), buffer, [&](std::string& chunk) {
    sizes.push_back(chunk.size());
    total += chunk.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a reader slower than the writer
    return true;
  }, nullptr);
  writer.join();
  EXPECT_EQ(end, PumpEnd::kEof);
  EXPECT_EQ(total, data.size() + 1);
  ASSERT_FALSE(sizes.empty());
  EXPECT_EQ(sizes.front(), 1u);
  size_t largest = *std::max_element(sizes.begin(), sizes.end());
  EXPECT_GT(largest, kFirstReadBytes);
  EXPECT_LE(largest, kOutputChunkBytes);
}

TEST(OutputPump, DrainsAndEndsAfterExitEvenWithTheWriterStillOpen) {
  // The write end stays open (like a background child holding the pipe).
  PipeFixture p;
  ASSERT_EQ(write(p.write_end.get(), "done\n", 5), 5);
  p.MarkExited();
  auto start = std::chrono::steady_clock::now();
  PumpEnd end;
  auto chunks = Pump(p, &end);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
  EXPECT_EQ(end, PumpEnd::kDrainedAfterExit);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0], "done\n");
}

TEST(OutputPump, ExitWithMoreThanOneChunkBufferedDeliversAll) {
  PipeFixture p;
  std::string data(60000, 'x');
  ASSERT_EQ(write(p.write_end.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  p.MarkExited();
  PumpEnd end;
  auto chunks = Pump(p, &end, 1000);
  EXPECT_EQ(end, PumpEnd::kDrainedAfterExit);
  size_t total = 0;
  for (auto& c : chunks) total += c.size();
  EXPECT_EQ(total, data.size());
}

TEST(OutputPump, SinkBackpressureAndStop) {
  PipeFixture p;
  ASSERT_EQ(write(p.write_end.get(), "abc", 3), 3);
  std::string buffer;
  int calls = 0;
  PumpEnd end = PumpOutput(p.source(), buffer, [&](std::string&) {
    ++calls;
    return false;
  }, nullptr);
  EXPECT_EQ(end, PumpEnd::kSinkClosed);
  EXPECT_EQ(calls, 1);
}

TEST(OutputPump, CancellationIsNoticed) {
  PipeFixture p;
  std::string buffer;
  auto start = std::chrono::steady_clock::now();
  PumpEnd end = PumpOutput(p.source(), buffer, [](std::string&) { return true; },
                           [&] { return std::chrono::steady_clock::now() - start > std::chrono::milliseconds(100); });
  EXPECT_EQ(end, PumpEnd::kCancelled);
}

}  // namespace
}  // namespace uvmshim::agent
