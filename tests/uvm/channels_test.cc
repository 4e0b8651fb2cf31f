#include "guest-agent/vm/channels.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

namespace uvmshim::agent::vm {
namespace {

using std::chrono::milliseconds;

TEST(VsockPeer, OnlyTheHostIsServed) {
  sockaddr_vm peer{};
  peer.svm_family = AF_VSOCK;
  peer.svm_cid = VMADDR_CID_HOST;
  EXPECT_TRUE(IsHostPeer(peer));
  peer.svm_cid = VMADDR_CID_LOCAL;  // loopback from inside the guest
  EXPECT_FALSE(IsHostPeer(peer));
  peer.svm_cid = 3;  // the guest's own CID
  EXPECT_FALSE(IsHostPeer(peer));
  peer.svm_cid = VMADDR_CID_HOST;
  peer.svm_family = AF_UNIX;
  EXPECT_FALSE(IsHostPeer(peer));
}

TEST(VirtioPort, AnExistingDeviceResolvesToItself) {
  EXPECT_EQ(ResolveVirtioPort("/dev/null", milliseconds(0)), "/dev/null");
}

TEST(VirtioPort, AMissingPortTimesOutNamingIt) {
  const auto start = std::chrono::steady_clock::now();
  try {
    ResolveVirtioPort("/dev/virtio-ports/uvmshim-test-no-such-port", milliseconds(50));
    FAIL() << "resolved a port that does not exist";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("uvmshim-test-no-such-port"), std::string::npos) << error.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(50));
}

TEST(VmListener, UnixAddressesAreNotVmChannels) {
  ListenAddress address;
  address.kind = ListenAddress::Kind::kUnix;
  address.path = "/tmp/x.sock";
  EXPECT_THROW(StartVmListener(address, [](int fd) { ::close(fd); }), std::invalid_argument);
}

// Real vsock connections need a hypervisor (vhost-vsock): here only the
// listener's setup and teardown can run, when the host kernel has AF_VSOCK.
TEST(VsockListener, ListensAndStopsPromptly) {
  const int probe = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) GTEST_SKIP() << "AF_VSOCK unavailable on this host";
  ::close(probe);
  std::unique_ptr<VsockListener> listener;
  try {
    listener = std::make_unique<VsockListener>(40000 + static_cast<unsigned>(::getpid() % 20000),
                                               [](int fd) { ::close(fd); });
  } catch (const std::system_error& error) {
    GTEST_SKIP() << "vsock listen not possible here: " << error.what();
  }
  EXPECT_NE(listener->description().find("vsock://"), std::string::npos);
  const auto start = std::chrono::steady_clock::now();
  listener.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
}

}  // namespace
}  // namespace uvmshim::agent::vm
