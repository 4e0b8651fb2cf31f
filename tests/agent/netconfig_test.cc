// The agent's side of a pod's network (guest-agent/netconfig.*), run in namespaces this test
// makes: "vm" (an `ip netns add` one, standing for the VM's root namespace, holding a dummy NIC
// with the pod's MAC) and the pod's (a process in its own new network namespace).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/netlink.h"
#include "guest-agent/netconfig.h"
#include "tests/shell_output.h"

namespace uvmshim::agent {
namespace {

namespace pb = ::uvmshim::agent::v1;

using test_support::Shell;

pb::PodNetwork SampleNetwork() {
  pb::PodNetwork network;
  auto* nic = network.add_interfaces();
  nic->set_name("eth0");
  nic->set_mac("02:00:0a:4e:00:02");
  nic->set_mtu(1400);
  auto* v4 = nic->add_addresses();
  v4->set_address("10.78.0.2");
  v4->set_prefix_length(24);
  auto* v6 = nic->add_addresses();
  v6->set_address("fd00:78::2");
  v6->set_prefix_length(64);
  auto* def = network.add_routes();
  def->set_gateway("10.78.0.1");
  def->set_device("eth0");
  auto* subnet = network.add_routes();
  subnet->set_destination("10.99.0.0");
  subnet->set_prefix_length(16);
  subnet->set_gateway("10.78.0.254");
  return network;
}

TEST(PodNetworkValidation, BadFieldsAreNamed) {
  auto expect_error = [](pb::PodNetwork network, const std::string& field) {
    try {
      ValidatePodNetwork(network);
      ADD_FAILURE() << "accepted, expected an error naming " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  EXPECT_NO_THROW(ValidatePodNetwork(SampleNetwork()));
  auto n = SampleNetwork();
  n.mutable_interfaces(0)->set_mac("02:00:0a:4e:00");
  expect_error(n, "network.interfaces[0].mac");
  n = SampleNetwork();
  n.mutable_interfaces(0)->set_name("lo");
  expect_error(n, "network.interfaces[0].name");
  n = SampleNetwork();
  n.mutable_interfaces(0)->mutable_addresses(0)->set_prefix_length(33);
  expect_error(n, "network.interfaces[0].addresses[0]");
  n = SampleNetwork();
  n.mutable_interfaces(0)->mutable_addresses(1)->set_address("fd00::zz");
  expect_error(n, "network.interfaces[0].addresses[1]");
  n = SampleNetwork();
  n.mutable_routes(0)->set_device("eth9");
  expect_error(n, "network.routes[0].device");
  n = SampleNetwork();
  n.mutable_routes(1)->set_gateway("fd00::1");
  expect_error(n, "network.routes[1]");
  n = SampleNetwork();
  n.mutable_interfaces(0)->set_mtu(20);
  expect_error(n, "network.interfaces[0].mtu");
}

class NetconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    static std::atomic<int> counter{0};
    vm_ = "uvmshim-vmroot-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    int status = 0;
    auto out = Shell("set -e; ip netns add " + vm_ + "; ip -n " + vm_ +
                         " link add nic0 address 02:00:0a:4e:00:02 type veth peer name vpeer0",
                     &status);
    ASSERT_EQ(status, 0) << out;
    // The pod: a process in a new network namespace (the sandbox container's init).
    pod_pid_ = ::fork();
    ASSERT_GE(pod_pid_, 0);
    if (pod_pid_ == 0) {
      ::execlp("unshare", "unshare", "-n", "sleep", "120", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const std::string own = Shell("readlink /proc/self/ns/net");
    bool moved = false;
    for (int i = 0; i < 500 && !moved; ++i) {
      const std::string theirs = Shell("readlink /proc/" + std::to_string(pod_pid_) + "/ns/net");
      moved = !theirs.empty() && theirs != own && Shell("readlink /proc/" + std::to_string(pod_pid_) + "/exe")
                                                       .find("sleep") != std::string::npos;
      if (!moved) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(moved) << "unshare -n did not run";
  }
  void TearDown() override {
    if (pod_pid_ > 0) {
      ::kill(pod_pid_, SIGKILL);
      ::waitpid(pod_pid_, nullptr, 0);
    }
    if (!vm_.empty()) Shell("ip netns del " + vm_);
  }
  // Runs ConfigurePodNetwork as the agent would, from the "vm" namespace.
  void Configure(const pb::PodNetwork& network) {
    const std::string path = "/run/netns/" + vm_;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    std::exception_ptr failure;
    try {
      netlink::RunInNetworkNamespace(fd, [&] { ConfigurePodNetwork(network, pod_pid_); });
    } catch (...) {
      failure = std::current_exception();
    }
    ::close(fd);
    if (failure) std::rethrow_exception(failure);
  }
  std::string InPod(const std::string& command) {
    return Shell("nsenter -t " + std::to_string(pod_pid_) + " -n " + command);
  }

  std::string vm_;
  pid_t pod_pid_ = -1;
};

TEST_F(NetconfigTest, MovesTheNicByMacAndConfiguresItInThePodNamespace) {
  ASSERT_NO_THROW(Configure(SampleNetwork()));
  EXPECT_EQ(Shell("ip -n " + vm_ + " -o link show").find("nic0"), std::string::npos) << "the NIC stayed in the VM's";
  const std::string link = InPod("ip -o link show eth0");
  EXPECT_NE(link.find("mtu 1400"), std::string::npos) << link;
  EXPECT_NE(link.find("02:00:0a:4e:00:02"), std::string::npos) << link;
  EXPECT_NE(link.find(",UP"), std::string::npos) << link;
  const std::string addresses = InPod("ip -o addr show eth0");
  EXPECT_NE(addresses.find("inet 10.78.0.2/24"), std::string::npos) << addresses;
  EXPECT_NE(addresses.find("inet6 fd00:78::2/64"), std::string::npos) << addresses;
  const std::string routes = InPod("ip route");
  EXPECT_NE(routes.find("default via 10.78.0.1 dev eth0"), std::string::npos) << routes;
  EXPECT_NE(routes.find("10.99.0.0/16 via 10.78.0.254 dev eth0"), std::string::npos) << routes;
  EXPECT_NE(InPod("ip -o link show lo").find("UP"), std::string::npos);
}

TEST_F(NetconfigTest, AMissingMacIsReportedByFieldAndNothingMoves) {
  auto network = SampleNetwork();
  network.mutable_interfaces(0)->set_mac("02:00:0a:4e:00:99");
  try {
    Configure(network);
    ADD_FAILURE() << "configured a NIC that does not exist";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("network.interfaces[0].mac"), std::string::npos) << e.what();
  }
  EXPECT_NE(Shell("ip -n " + vm_ + " -o link show").find("nic0"), std::string::npos);
}

}  // namespace
}  // namespace uvmshim::agent
