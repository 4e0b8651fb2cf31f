// The host side of a hyperv pod's link (host-shim/netns/): in network namespaces this test
// creates (a "pod" one with CNI's kind of veth, and the veth's peer side), never the host's.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "netns/pod_network_attachment.h"
#include "tests/shell_output.h"

namespace uvmshim::host::netns {
namespace {

using test_support::Shell;

// A pod namespace whose eth0 (veth, 02:00:0a:4d:00:02, MTU 1400, 10.77.0.2/24, default via
// 10.77.0.1) has its peer "vpeer" (10.77.0.1/24) in a second namespace.
class PodNetnsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    static std::atomic<int> counter{0};
    const std::string suffix = std::to_string(::getpid()) + "-" + std::to_string(counter++);
    pod_ = "uvmshim-pod-" + suffix;
    peer_ = "uvmshim-peer-" + suffix;
    int status = 0;
    const std::string out = Shell(
        "set -e; ip netns add " + pod_ + "; ip netns add " + peer_ + "; ip -n " + peer_ +
            " link add vpeer type veth peer name eth0 netns " + pod_ + "; ip -n " + pod_ +
            " link set eth0 address 02:00:0a:4d:00:02 mtu 1400 up; ip -n " + pod_ +
            " addr add 10.77.0.2/24 dev eth0; ip -n " + pod_ + " route add default via 10.77.0.1; ip -n " + peer_ +
            " link set vpeer mtu 1400 up; ip -n " + peer_ + " addr add 10.77.0.1/24 dev vpeer",
        &status);
    ASSERT_EQ(status, 0) << out;
  }
  void TearDown() override {
    if (!pod_.empty()) Shell("ip netns del " + pod_ + "; ip netns del " + peer_);
  }
  std::string pod_path() const { return "/run/netns/" + pod_; }

  std::string pod_, peer_;
};

// Reads one frame from the tap (after its virtio-net header) within 5 s; "" on timeout.
std::string ReadFrame(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return {};
  std::array<unsigned char, 2048> buffer{};
  const ssize_t n = ::read(fd, buffer.data(), buffer.size());
  constexpr ssize_t kVnetHeader = 10;  // struct virtio_net_hdr, the tap's default size
  if (n <= kVnetHeader) return {};
  return std::string(reinterpret_cast<char*>(buffer.data()) + kVnetHeader, n - kVnetHeader);
}

bool IsArp(const std::string& frame, int opcode) {
  return frame.size() >= 22 && static_cast<unsigned char>(frame[12]) == 0x08 &&
         static_cast<unsigned char>(frame[13]) == 0x06 && static_cast<unsigned char>(frame[21]) == opcode;
}

TEST_F(PodNetnsFixture, ReadsTheInterfaceAndRedirectsBothWaysThroughTheTap) {
  auto attachment = PodNetworkAttachment::Attach(pod_path(), "linux.namespaces[1].path");
  ASSERT_TRUE(attachment->has_interfaces());
  const auto& network = attachment->network();
  ASSERT_EQ(network.interfaces_size(), 1);
  const auto& nic = network.interfaces(0);
  EXPECT_EQ(nic.name(), "eth0");
  EXPECT_EQ(nic.mac(), "02:00:0a:4d:00:02");
  EXPECT_EQ(nic.mtu(), 1400u);
  bool has_address = false;
  for (const auto& a : nic.addresses()) has_address |= a.address() == "10.77.0.2" && a.prefix_length() == 24;
  EXPECT_TRUE(has_address) << nic.DebugString();
  bool has_default = false;
  for (const auto& r : network.routes())
    has_default |= r.destination().empty() && r.gateway() == "10.77.0.1" && r.device() == "eth0";
  EXPECT_TRUE(has_default) << network.DebugString();

  const std::string filters = Shell("tc -n " + pod_ + " filter show dev eth0 ingress");
  EXPECT_NE(filters.find("Egress Redirect to device tap0_uvm"), std::string::npos) << filters;
  EXPECT_NE(Shell("tc -n " + pod_ + " filter show dev tap0_uvm ingress").find("Egress Redirect to device eth0"),
            std::string::npos);
  const auto nics = attachment->nics();
  ASSERT_EQ(nics.size(), 1u);
  EXPECT_EQ(nics[0].mac, "02:00:0a:4d:00:02");
  const int tap = nics[0].tap_fd;
  ASSERT_GE(tap, 0);

  // tap -> veth: an ARP request written as the VM would ("who has 10.77.0.1, tell 10.77.0.2")
  // reaches the peer, whose answer comes back veth -> tap.
  const unsigned char request[10 + 42] = {
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                     // virtio_net_hdr: nothing offloaded
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff,               // to: broadcast
      0x02, 0x00, 0x0a, 0x4d, 0x00, 0x02, 0x08, 0x06,   // from: the pod's MAC, ARP
      0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,         // Ethernet/IPv4, request
      0x02, 0x00, 0x0a, 0x4d, 0x00, 0x02, 10, 77, 0, 2, // sender
      0, 0, 0, 0, 0, 0, 10, 77, 0, 1};                  // target
  ASSERT_EQ(::write(tap, request, sizeof request), static_cast<ssize_t>(sizeof request)) << std::strerror(errno);
  bool got_reply = false;
  for (int i = 0; i < 20 && !got_reply; ++i) {
    const std::string frame = ReadFrame(tap);
    if (frame.empty()) break;
    got_reply = IsArp(frame, 2);
  }
  EXPECT_TRUE(got_reply) << "no ARP reply from the peer through the tap";

  attachment.reset();  // closes the tap: it goes away, and so do the filters on eth0
  EXPECT_NE(Shell("ip -n " + pod_ + " -o link show").find("eth0"), std::string::npos);
  EXPECT_EQ(Shell("ip -n " + pod_ + " -o link show").find("tap0_uvm"), std::string::npos);
  EXPECT_EQ(Shell("tc -n " + pod_ + " qdisc show dev eth0").find("ingress"), std::string::npos);
}

TEST_F(PodNetnsFixture, TheTapEndsWithItsLastHolderAndASecondAttachIsRefused) {
  auto first = PodNetworkAttachment::Attach(pod_path(), "linux.namespaces[1].path");
  try {
    PodNetworkAttachment::Attach(pod_path(), "linux.namespaces[1].path");
    ADD_FAILURE() << "a namespace attached twice";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("linux.namespaces[1].path"), std::string::npos) << e.what();
  }
  // The first one's filters are untouched by the refused second.
  EXPECT_NE(Shell("tc -n " + pod_ + " filter show dev eth0 ingress").find("tap0_uvm"), std::string::npos);
  // Once the fds are closed (QEMU would hold the only copy), the tap is gone.
  first->CloseTapFds();
  EXPECT_EQ(Shell("ip -n " + pod_ + " -o link show").find("tap0_uvm"), std::string::npos);
}

TEST(PodNetworkAttachmentInput, HostNamespaceAndBadPathsAreRefusedByField) {
  EXPECT_TRUE(IsHostNetns("/proc/self/ns/net"));
  try {
    PodNetworkAttachment::Attach("/proc/self/ns/net", "linux.namespaces[2].path");
    ADD_FAILURE() << "the host's namespace was attached";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("linux.namespaces[2].path"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("host's network namespace"), std::string::npos) << e.what();
  }
  try {
    PodNetworkAttachment::Attach("/nonexistent/netns", "linux.namespaces[0].path");
    ADD_FAILURE() << "a missing path was attached";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/netns"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace uvmshim::host::netns
