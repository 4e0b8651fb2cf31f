#include "common/serial_reset.h"
#include "guest-agent/vm/channels.h"
#include "guest-agent/vm/serial_stream.h"

#include <poll.h>
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

// The serial bridge's view of the host across a reconnect. A socketpair
// stands in for the port: with its peer closed, read() returns 0 as
// virtio_console's does when no host is connected; the poll events are
// given as virtio_console reports them.
namespace uvmshim::agent::vm {
namespace {

using Clock = HostPresence::Clock;

struct FakePort {
  FakePort() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) throw std::runtime_error("socketpair");
    guest.reset(pair[0]);
    host.reset(pair[1]);
  }
  void HostLeaves() { host.reset(); }
  UniqueFd guest;
  UniqueFd host;
};

SerialConnection StartedByReset() {
  SerialConnection connection;
  const std::string reset = serial::ResetLine("00112233445566ff");
  connection.Begin(std::vector<char>(reset.begin(), reset.end()));
  return connection;
}

// The departure of the previous host, reported after this host's reset line
// was read, must not drop this host's READY line nor end its connection.
TEST(SerialConnection, ALateDepartureKeepsTheReadyLineAndTheConnection) {
  FakePort port;
  port.HostLeaves();
  SerialConnection connection = StartedByReset();
  ASSERT_EQ(std::string(connection.to_host.data.data(), connection.to_host.size()),
            serial::ReadyLine("00112233445566ff"));
  std::vector<char> chunk(4096);
  const auto start = Clock::now();
  EXPECT_FALSE(connection.ServePort(port.guest.get(), POLLIN | POLLHUP, chunk, start));
  EXPECT_FALSE(connection.ServePort(port.guest.get(), POLLIN | POLLHUP, chunk,
                                    start + HostPresence::kGoneAfter - std::chrono::milliseconds(1)));
  EXPECT_FALSE(connection.end.ended()) << connection.end.Describe();
  EXPECT_EQ(connection.to_host.size(), serial::kLineSize) << "the READY line was dropped";
  // The host's arrival is reported: the connection goes on.
  EXPECT_FALSE(connection.ServePort(port.guest.get(), 0, chunk, start + HostPresence::kGoneAfter));
  EXPECT_TRUE(connection.host.away()) << "no event is not an arrival";
  connection.host.Present();
  EXPECT_FALSE(connection.host.Gone(start + 10 * HostPresence::kGoneAfter));
}

TEST(SerialConnection, AHostAwayForTheGracePeriodEndsTheConnection) {
  FakePort port;
  port.HostLeaves();
  SerialConnection connection = StartedByReset();
  std::vector<char> chunk(4096);
  const auto start = Clock::now();
  EXPECT_FALSE(connection.ServePort(port.guest.get(), POLLIN | POLLHUP, chunk, start));
  EXPECT_TRUE(connection.ServePort(port.guest.get(), POLLIN | POLLHUP, chunk, start + HostPresence::kGoneAfter));
  EXPECT_EQ(connection.end.kind, ConnectionEndKind::kHostDisconnected);
}

TEST(SerialConnection, DataFromTheHostRestartsTheGracePeriod) {
  FakePort port;
  SerialConnection connection = StartedByReset();
  std::vector<char> chunk(4096);
  const auto start = Clock::now();
  connection.host.Away(start);
  const std::string preface(kHttp2ClientPreface);
  ASSERT_EQ(::write(port.host.get(), preface.data(), preface.size()), static_cast<ssize_t>(preface.size()));
  const auto later = start + HostPresence::kGoneAfter - std::chrono::milliseconds(1);
  EXPECT_FALSE(connection.ServePort(port.guest.get(), POLLIN | POLLHUP, chunk, later));
  EXPECT_EQ(connection.to_guest.size(), preface.size()) << "the host's bytes go to gRPC";
  EXPECT_FALSE(connection.host.Gone(start + HostPresence::kGoneAfter));
  EXPECT_TRUE(connection.host.Gone(later + HostPresence::kGoneAfter));
}

// A host killed in the middle of a frame leaves the stream inside it; the
// next host's preface must still start a new connection once the port
// reported the departure.
TEST(HostStreamParser, APrefaceAfterADepartureStartsANewConnectionInsideAFrame) {
  const std::string preface(kHttp2ClientPreface);
  const std::string cut = Frame(100, 0).substr(0, 20);
  for (const bool departed : {false, true}) {
    HostStreamParser parser;
    ConnectionEndKind why = ConnectionEndKind::kNone;
    ASSERT_EQ(parser.Classify(preface.data(), preface.size(), &why), ChunkAction::kForward);
    ASSERT_EQ(parser.Classify(cut.data(), cut.size(), &why), ChunkAction::kForward);
    if (departed) parser.ExpectNewHost();
    EXPECT_EQ(parser.Classify(preface.data(), preface.size(), &why),
              departed ? ChunkAction::kNewConnection : ChunkAction::kForward)
        << (departed ? "after a departure" : "without one");
  }
}

}  // namespace
}  // namespace uvmshim::agent::vm
