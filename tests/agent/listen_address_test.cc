#include "guest-agent/listen_address.h"

#include <stdexcept>

#include <gtest/gtest.h>

namespace uvmshim::agent {
namespace {

TEST(ListenAddress, ParsesUnix) {
  auto a = ParseListenAddress("unix:///run/uvm/agent.sock");
  EXPECT_EQ(a.kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(a.path, "/run/uvm/agent.sock");
  EXPECT_EQ(ToString(a), "unix:///run/uvm/agent.sock");
}

TEST(ListenAddress, ParsesVsock) {
  auto a = ParseListenAddress("vsock://1024");
  EXPECT_EQ(a.kind, ListenAddress::Kind::kVsock);
  EXPECT_EQ(a.port, 1024u);
  EXPECT_EQ(ToString(a), "vsock://1024");
}

TEST(ListenAddress, ParsesSerial) {
  auto a = ParseListenAddress("serial:///dev/vport0p1");
  EXPECT_EQ(a.kind, ListenAddress::Kind::kSerial);
  EXPECT_EQ(a.path, "/dev/vport0p1");
}

TEST(ListenAddress, RejectsBadInput) {
  for (const char* bad : {"", "/tmp/x.sock", "unix://relative", "unix://", "vsock://", "vsock://12x",
                          "vsock://-1", "vsock://99999999999", "serial://dev", "tcp://1.2.3.4:5"}) {
    EXPECT_THROW(ParseListenAddress(bad), std::invalid_argument) << bad;
  }
  try {
    ParseListenAddress("tcp://x");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tcp://x"), std::string::npos);
  }
  EXPECT_THROW(ParseListenAddress("unix:///" + std::string(200, 'a')), std::invalid_argument);
}

}  // namespace
}  // namespace uvmshim::agent
