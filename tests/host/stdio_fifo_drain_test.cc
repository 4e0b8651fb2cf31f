// The shim reports a process's exit only once the client drained the output
// FIFO (host-shim/shim/stdio_files.cc): a client whose reader is open in the
// kernel but not yet in its own books (containerd's fifo package) would lose
// what is left when its Delete cancels that reader. Real FIFOs, real fds.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>

#include "common/unique_fd.h"
#include "shim/stdio_files.h"
#include "tests/support/temp_dir.h"

namespace uvmshim::shim {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class StdioFifoDrain : public ::testing::Test {
 protected:
  void SetUp() override {
    fifo_ = dir_ / "out";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
  }

  UniqueFd OpenReader() { return UniqueFd(::open(fifo_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)); }
  std::string ReadAll(int fd) {
    std::string text;
    char buffer[4096];
    for (;;) {
      ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) return text;
      text.append(buffer, static_cast<size_t>(n));
    }
  }

  uvmshim::testing::TempDir temp_{"uvmshim-fifo-drain"};
  const std::filesystem::path dir_ = temp_.path();
  fs::path fifo_;
};

// A reader opened (as the client's open(2) returned) but has not read yet: the
// close waits for the read, then the reader gets everything and EOF.
TEST_F(StdioFifoDrain, CloseWaitsUntilAnOpenReaderRead) {
  UniqueFd reader = OpenReader();
  ASSERT_TRUE(reader);
  StdioFiles files({"", fifo_.string(), "", false}, "c1", "ns");
  ASSERT_EQ(::write(files.stdout_fd(), "1\n", 2), 2);
  auto closed = std::async(std::launch::async, [&] { files.CloseOutputs(); });
  EXPECT_EQ(closed.wait_for(500ms), std::future_status::timeout)
      << "closed (and so reported the exit) while the client had not read its output";
  char buffer[8];
  ASSERT_EQ(::read(reader.get(), buffer, sizeof buffer), 2);
  EXPECT_EQ(closed.wait_for(10s), std::future_status::ready) << "the close did not notice the read";
  EXPECT_EQ(::read(reader.get(), buffer, sizeof buffer), 0) << "EOF after the output";
}

// No reader at create (the shim holds a read end itself): a reader that comes
// late gets every byte, then EOF.
TEST_F(StdioFifoDrain, ALateReaderGetsEverything) {
  StdioFiles files({"", fifo_.string(), "", false}, "c1", "ns");
  const std::string output(40'000, 'x');  // under the FIFO's 64 KiB: the write does not wait for a reader
  ASSERT_EQ(::write(files.stdout_fd(), output.data(), output.size()), static_cast<ssize_t>(output.size()));
  auto closed = std::async(std::launch::async, [&] { files.CloseOutputs(); });
  EXPECT_EQ(closed.wait_for(300ms), std::future_status::timeout) << "closed with the output unread";
  UniqueFd reader = OpenReader();
  ASSERT_TRUE(reader);
  // Blocking reads from here: the data, then EOF once the shim closed.
  ::fcntl(reader.get(), F_SETFL, 0);
  EXPECT_EQ(ReadAll(reader.get()), output);
  EXPECT_EQ(closed.wait_for(10s), std::future_status::ready);
}

// A client that went away without reading (ctr run -d) does not hold the close up.
TEST_F(StdioFifoDrain, AReaderThatLeftDoesNotDelayTheClose) {
  UniqueFd reader = OpenReader();
  ASSERT_TRUE(reader);
  StdioFiles files({"", fifo_.string(), "", false}, "c1", "ns");
  ASSERT_EQ(::write(files.stdout_fd(), "bye\n", 4), 4);
  reader.reset();
  const auto start = std::chrono::steady_clock::now();
  files.CloseOutputs();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace uvmshim::shim
