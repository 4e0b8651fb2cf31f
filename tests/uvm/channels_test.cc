#include "common/serial_reset.h"
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

#include "guest-agent/vm/http2_frames.h"

namespace uvmshim::agent::vm {
namespace {

std::string Frame(std::uint32_t length, char type) {
  std::string frame = {static_cast<char>(length >> 16), static_cast<char>(length >> 8), static_cast<char>(length),
                       type, 0, 0, 0, 0, 1};
  return frame + std::string(length, 'x');
}

TEST(Http2ClientFrames, FollowsThePrefaceAndFramesAcrossChunks) {
  Http2ClientFrames frames;
  const std::string stream = std::string(kHttp2ClientPreface) + Frame(6, 4) + Frame(300, 0);
  EXPECT_FALSE(frames.AtFrameBoundary());  // the preface is still due
  // Feed in awkward pieces: boundaries fall inside the preface, a header and a payload.
  for (std::size_t i = 0; i < stream.size(); i += 7) {
    frames.Consume(stream.data() + i, std::min<std::size_t>(7, stream.size() - i));
    const std::size_t consumed = std::min(i + 7, stream.size());
    const bool boundary = consumed == 24 || consumed == 24 + 15 || consumed == stream.size();
    EXPECT_EQ(frames.AtFrameBoundary(), boundary) << "after " << consumed << " bytes";
  }
  EXPECT_TRUE(frames.AtFrameBoundary());
  frames.StartConnection();
  EXPECT_FALSE(frames.AtFrameBoundary());
}

TEST(Http2ClientFrames, RecognisesThePreface) {
  const std::string preface(kHttp2ClientPreface);
  EXPECT_TRUE(StartsWithHttp2Preface((preface + "more").data(), preface.size() + 4));
  EXPECT_FALSE(StartsWithHttp2Preface(preface.data(), preface.size() - 1));
  EXPECT_FALSE(StartsWithHttp2Preface(("x" + preface).data(), preface.size() + 1));
}

}  // namespace
}  // namespace uvmshim::agent::vm

namespace uvmshim::agent::vm {
namespace {

TEST(SerialReset, ParsesOnlyAWholeResetLineWithAHexNonce) {
  const std::string line = serial::ResetLine("0123456789abcdef");
  EXPECT_EQ(line.size(), serial::kLineSize);
  EXPECT_EQ(serial::ParseResetLine(line.data(), line.size()), "0123456789abcdef");
  const std::string followed = line + "PRI * HTTP/2.0";
  EXPECT_EQ(serial::ParseResetLine(followed.data(), followed.size()), "0123456789abcdef");
  EXPECT_FALSE(serial::ParseResetLine(line.data(), line.size() - 1));  // cut short
  const std::string upper = serial::ResetLine("0123456789ABCDEF");
  EXPECT_FALSE(serial::ParseResetLine(upper.data(), upper.size()));
  const std::string preface(kHttp2ClientPreface);
  EXPECT_FALSE(serial::ParseResetLine(preface.data(), preface.size()));
  EXPECT_EQ(serial::ReadyLine("0123456789abcdef"), "UVMSHIM-READY 0123456789abcdef\n");
}

}  // namespace
}  // namespace uvmshim::agent::vm
