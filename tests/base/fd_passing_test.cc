// Descriptors over a Unix socket (common/fd_passing.h): they arrive with the
// data, close-on-exec, and too many are refused before anything is sent.
#include "common/fd_passing.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace uvmshim {
namespace {

struct SocketPair {
  UniqueFd a, b;
  SocketPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

TEST(FdPassing, DescriptorsArriveWithTheData) {
  SocketPair sockets;
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  const int passed[] = {read_end.get(), write_end.get()};
  ASSERT_EQ(SendWithFds(sockets.a.get(), "hello", 5, passed, 2), 5);

  char buffer[16] = {};
  Received received = ReceiveWithFds(sockets.b.get(), buffer, sizeof buffer);
  ASSERT_EQ(received.bytes, 5);
  EXPECT_EQ(std::string(buffer, 5), "hello");
  EXPECT_FALSE(received.truncated);
  ASSERT_EQ(received.fds.size(), 2u);
  for (const auto& fd : received.fds) EXPECT_EQ(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  // The received write end feeds the original read end: the same pipe.
  ASSERT_EQ(::write(received.fds[1].get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(read_end.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(FdPassing, NoDescriptorsAndEndOfStream) {
  SocketPair sockets;
  ASSERT_EQ(SendWithFds(sockets.a.get(), "ab", 2, nullptr, 0), 2);
  char buffer[4];
  Received received = ReceiveWithFds(sockets.b.get(), buffer, sizeof buffer);
  EXPECT_EQ(received.bytes, 2);
  EXPECT_TRUE(received.fds.empty());
  sockets.a.reset();
  EXPECT_EQ(ReceiveWithFds(sockets.b.get(), buffer, sizeof buffer).bytes, 0);
}

TEST(FdPassing, TooManyDescriptorsAreRefusedBeforeSending) {
  SocketPair sockets;
  int many[kMaxPassedFds + 1];
  for (auto& fd : many) fd = sockets.a.get();
  errno = 0;
  EXPECT_EQ(SendWithFds(sockets.a.get(), "x", 1, many, kMaxPassedFds + 1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(SendWithFds(-1, "x", 1, nullptr, 0), -1);
  EXPECT_EQ(errno, EBADF);
}

}  // namespace
}  // namespace uvmshim
