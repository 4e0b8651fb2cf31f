// `uvmctl run --network none|bridge [-p HOSTPORT:PORT]` with the Debian CNI
// plugins. Every uvmctl call of these tests runs inside a network namespace
// the test creates (`nsenter --net`): the bridge, the host ends of the veths,
// portmap's iptables rules and every packet stay there; nothing is sent to
// any other address. After `rm` (and after a kill -9 of uvmctl + rm) no veth,
// bridge port, named netns, iptables rule or address reservation of the
// container is left. The fixture's TearDown checks state, mounts, processes.
//
// Bridge cases in hyperv isolation need the shim to bring a network namespace
// path into the UVM (issue #11, the "net" work): they are instantiated only
// when CMake sets UVMSHIM_HYPERV_NETWORK_TESTS (tests/uvmctl/CMakeLists.txt).
#include <signal.h>

#include <fstream>
#include <sstream>

#include "uvmctl_fixture.h"

namespace uvmshim::uvmctl_test {
namespace {

// The test's own network namespace and uvmctl config.
class NetworkTest : public UvmctlTest {
 protected:
  void SetUp() override {
    UvmctlTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    suffix_ = dir().filename().string().substr(dir().filename().string().size() - 6);
    test_netns_ = "uvtn-" + suffix_;
    auto add = RunProcess({"/usr/sbin/ip", "netns", "add", test_netns_});
    ASSERT_EQ(add.exit_code, 0) << add.Describe();
    netns_added_ = true;
    auto lo = InTestNetns({"/usr/sbin/ip", "link", "set", "lo", "up"});
    ASSERT_EQ(lo.exit_code, 0) << lo.Describe();
    bridge_ = "uvtbr" + suffix_;
    std::ofstream(dir() / "host-resolv.conf") << "nameserver 127.0.0.53\nsearch lab.example\n";
    std::ofstream(dir() / "uvmctl.toml") << "[network]\n"
                                         << "bridge = \"" << bridge_ << "\"\n"
                                         << "subnet = \"10.89.0.0/24\"\n"
                                         << "ipam_data_dir = \"" << (dir() / "ipam").string() << "\"\n"
                                         << "dns = [\"192.0.2.53\"]\n"
                                         << "host_resolv_conf = \"" << (dir() / "host-resolv.conf").string() << "\"\n";
  }

  void TearDown() override {
    // rm from inside the test's namespace, where CNI DEL must run.
    for (const auto& name : net_names_)
      if (fs::exists(root() / "bundles" / "uvmctl" / name) || fs::exists(root() / "networks" / (name + ".json"))) {
        auto r = NetUvmctl({"rm", "-f", name});
        EXPECT_EQ(r.exit_code, 0) << "cleanup of " << name << ": " << r.Describe();
      }
    UvmctlTest::TearDown();
    if (netns_added_) RunProcess({"/usr/sbin/ip", "netns", "delete", test_netns_});
  }

  std::string NetName(const std::string& tag) {
    net_names_.push_back(Name(tag));
    return net_names_.back();
  }

  ProcessResult InTestNetns(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 60s) {
    std::vector<std::string> all = {"/usr/bin/nsenter", "--net=/run/netns/" + test_netns_};
    all.insert(all.end(), argv.begin(), argv.end());
    return RunProcess(all, WithTimeout(timeout));
  }

  std::vector<std::string> NetUvmctlArgv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"/usr/bin/nsenter", "--net=/run/netns/" + test_netns_, UvmctlBinary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::vector<std::string> NetEnv() const {
    return {"UVMSHIM_ROOT=" + root().string(), "UVMCTL_CONFIG=" + (dir() / "uvmctl.toml").string()};
  }
  ProcessResult NetUvmctl(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 0ms) {
    ProcessOptions options;
    options.env = NetEnv();
    options.timeout = timeout.count() ? timeout : StartTimeout();
    return RunProcess(NetUvmctlArgv(args), options);
  }
  void NetRunDetached(const std::string& name, const std::vector<std::string>& flags,
                      const std::vector<std::string>& command) {
    std::vector<std::string> all = {"-d", "--name", name};
    all.insert(all.end(), flags.begin(), flags.end());
    auto r = NetUvmctl(RunArgs(all, command));
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    ASSERT_EQ(r.out, name + "\n") << r.Describe();
  }
  // `uvmctl ps` (in the test netns) row of `id`; ADDRESS is its last column.
  std::vector<std::string> NetPsRow(const std::string& id) {
    auto r = NetUvmctl({"ps"}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return TableRow(r.out, id);
  }

  // What of `name` is left in the test's namespace and on the host.
  std::vector<std::string> NetworkLeftovers(const std::string& name) {
    std::vector<std::string> left;
    if (fs::exists("/run/netns/uvm-" + name)) left.push_back("netns /run/netns/uvm-" + name);
    if (fs::exists(root() / "networks" / (name + ".json"))) left.push_back("network record of " + name);
    auto links = InTestNetns({"/usr/sbin/ip", "-o", "link", "show"});
    std::istringstream lines(links.out);
    for (std::string line; std::getline(lines, line);)
      if (line.find(": lo:") == std::string::npos && line.find(": " + bridge_ + ":") == std::string::npos)
        left.push_back("link in the test netns: " + line);
    auto rules = InTestNetns({"/usr/sbin/iptables-save"});
    std::istringstream rule_lines(rules.out);
    for (std::string line; std::getline(rule_lines, line);)
      if (line.find(name) != std::string::npos || line.find("CNI-DN-") != std::string::npos ||
          (line.starts_with(":CNI-") && !line.starts_with(":CNI-HOSTPORT-")))
        left.push_back("iptables: " + line);
    std::error_code ec;
    for (const auto& entry : fs::recursive_directory_iterator(dir() / "ipam", ec)) {
      const std::string file = entry.path().filename().string();
      if (file.starts_with("10.")) left.push_back("address reservation " + entry.path().string());
    }
    return left;
  }

  std::string bridge_;
  std::vector<std::string> net_names_;

 private:
  std::string suffix_;
  std::string test_netns_;
  bool netns_added_ = false;
};

using NetworkNoneTest = NetworkTest;
using NetworkBridgeTest = NetworkTest;
using NetworkValidationTest = UvmctlValidationTest;

// /proc/net/dev lists every interface of the reader's network namespace.
std::vector<std::string> Interfaces(const std::string& proc_net_dev) {
  std::vector<std::string> names;
  std::istringstream lines(proc_net_dev);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || line.find('|') != std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    names.push_back(name);
  }
  return names;
}

TEST_P(NetworkNoneTest, OnlyLoopbackAndResolverFiles) {
  auto r = NetUvmctl(RunArgs({"--network", "none", "--hostname", "quiet"},
                             {"sh", "-c", "cat /proc/net/dev; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hosts"}));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const auto parts = r.out.find("---\n");
  ASSERT_NE(parts, std::string::npos) << r.Describe();
  EXPECT_EQ(Interfaces(r.out.substr(0, parts)), std::vector<std::string>{"lo"}) << r.Describe();
  const std::string files = r.out.substr(parts);
  EXPECT_NE(files.find("nameserver 192.0.2.53\n"), std::string::npos) << "loopback-only host resolver: the fallback\n" << files;
  EXPECT_EQ(files.find("127.0.0.53"), std::string::npos) << files;
  EXPECT_NE(files.find("search lab.example\n"), std::string::npos) << files;
  EXPECT_NE(files.find("127.0.0.1\tlocalhost\n"), std::string::npos) << files;
}

TEST_P(NetworkBridgeTest, AddressInPsAndInsideAndNothingLeftAfterRm) {
  const std::string name = NetName("br");
  ASSERT_NO_FATAL_FAILURE(NetRunDetached(name, {"--network", "bridge"}, {"sleep", "1000"}));
  const auto row = NetPsRow(name);
  ASSERT_GE(row.size(), 8u) << "no ADDRESS column for " << name;
  const std::string address = row.back();
  EXPECT_TRUE(address.starts_with("10.89.0.")) << address;
  EXPECT_TRUE(fs::exists("/run/netns/uvm-" + name));

  auto inside = NetUvmctl({"exec", name, "--", "sh", "-c", "ip -4 -o addr show eth0; cat /etc/hosts /etc/resolv.conf"}, 120s);
  ASSERT_EQ(inside.exit_code, 0) << inside.Describe();
  EXPECT_NE(inside.out.find("inet " + address + "/24"), std::string::npos) << inside.Describe();
  EXPECT_NE(inside.out.find(address + "\t" + name + "\n"), std::string::npos) << inside.Describe();
  EXPECT_NE(inside.out.find("nameserver 192.0.2.53\n"), std::string::npos) << inside.Describe();

  auto port = InTestNetns({"/usr/sbin/ip", "-o", "link", "show", "master", bridge_});
  EXPECT_NE(port.out.find("veth"), std::string::npos) << "the container's veth on the bridge: " << port.Describe();

  auto rm = NetUvmctl({"rm", "-f", name});
  ASSERT_EQ(rm.exit_code, 0) << rm.Describe();
  EXPECT_EQ(NetworkLeftovers(name), std::vector<std::string>{});
  EXPECT_TRUE(NetPsRow(name).empty());
}

TEST_P(NetworkBridgeTest, PublishedPortServesHttpdThroughTheHostPort) {
  fs::create_directories(rootfs() / "www");
  const std::string page = "served-from-" + dir().filename().string() + "\n";
  std::ofstream(rootfs() / "www" / "index.html") << page;
  const std::string name = NetName("web");
  ASSERT_NO_FATAL_FAILURE(
      NetRunDetached(name, {"--network", "bridge", "-p", "18080:80"}, {"httpd", "-f", "-p", "80", "-h", "/www"}));
  // The test namespace's own address on the bridge (the gateway) and the host port
  // (no wget -T: busybox 1.35's wget crashes with it; RunProcess has a deadline).
  ProcessResult fetch;
  EXPECT_TRUE(WaitFor(
      [&] {
        fetch = InTestNetns({"/bin/busybox", "wget", "-q", "-O", "-", "http://10.89.0.1:18080/index.html"}, 20s);
        return fetch.exit_code == 0;
      },
      StartTimeout(), 500ms))
      << fetch.Describe();
  EXPECT_EQ(fetch.out, page) << fetch.Describe();
  auto rules = InTestNetns({"/usr/sbin/iptables-save", "-t", "nat"});
  EXPECT_NE(rules.out.find("--dport 18080"), std::string::npos) << rules.Describe();

  auto rm = NetUvmctl({"rm", "-f", name});
  ASSERT_EQ(rm.exit_code, 0) << rm.Describe();
  EXPECT_EQ(NetworkLeftovers(name), std::vector<std::string>{});
  auto after = InTestNetns({"/bin/busybox", "wget", "-q", "-O", "-", "http://10.89.0.1:18080/index.html"}, 20s);
  EXPECT_NE(after.exit_code, 0) << "the port is still served after rm: " << after.Describe();
}

TEST_P(NetworkBridgeTest, ForegroundRunRemovesItsNetworkOnExit) {
  const std::string name = NetName("fg");
  auto r = NetUvmctl(RunArgs({"--name", name, "--network", "bridge", "-p", "18081:81/udp"},
                             {"sh", "-c", "ip -4 -o addr show eth0 | grep -c 'inet 10.89.0.'; exit 7"}));
  EXPECT_EQ(r.exit_code, 7) << r.Describe();
  EXPECT_EQ(r.out, "1\n") << r.Describe();
  EXPECT_EQ(NetworkLeftovers(name), std::vector<std::string>{});
}

TEST_P(NetworkBridgeTest, KilledUvmctlThenRmLeavesNothing) {
  const std::string name = NetName("k9");
  auto run = std::make_unique<BackgroundProcess>(
      NetUvmctlArgv(RunArgs({"--name", name, "--network", "bridge", "-p", "18082:80"}, {"sleep", "1000"})), NetEnv(),
      dir() / "k9");
  std::vector<std::string> row;
  ASSERT_TRUE(WaitFor(
      [&] {
        row = NetPsRow(name);
        return (row.size() >= 8 && row[3] == "running") || !PidAlive(run->pid());
      },
      StartTimeout(), 500ms))
      << run->Stderr();
  ASSERT_TRUE(row.size() >= 8 && row[3] == "running") << "uvmctl ended: " << run->Stderr();
  EXPECT_TRUE(row.back().starts_with("10.89.0.")) << row.back();
  ASSERT_EQ(::kill(run->pid(), SIGKILL), 0);
  EXPECT_EQ(run->Wait(10s), 128 + SIGKILL);

  auto rm = NetUvmctl({"rm", "-f", name});
  ASSERT_EQ(rm.exit_code, 0) << rm.Describe();
  EXPECT_EQ(NetworkLeftovers(name), std::vector<std::string>{});
}

TEST_P(NetworkBridgeTest, FailingPluginLeavesNothing) {
  // cni_path without the plugins: the first ADD fails; what was made is undone.
  fs::create_directories(dir() / "no-plugins");
  std::ofstream(dir() / "uvmctl.toml", std::ios::app) << "cni_path = [\"" << (dir() / "no-plugins").string() << "\"]\n";
  const std::string name = NetName("fail");
  auto r = NetUvmctl(RunArgs({"--name", name, "--network", "bridge"}, {"true"}));
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  EXPECT_NE(r.err.find("CNI plugin \"loopback\" not found"), std::string::npos) << r.Describe();
  EXPECT_EQ(NetworkLeftovers(name), std::vector<std::string>{});
  EXPECT_FALSE(fs::exists(root() / "bundles" / "uvmctl" / name));
}

TEST_P(NetworkValidationTest, BadNetworkFlagsFailBeforeAnythingStarts) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-p", "8080:80"}, "needs --network bridge"},
      {{"--network", "none", "-p", "8080:80"}, "needs --network bridge"},
      {{"--network", "bridge", "-p", "8080"}, "-p \"8080\""},
      {{"--network", "bridge", "-p", "8080:80/sctp"}, "sctp"},
      {{"--network", "host"}, "--network"},
  };
  for (const auto& [flags, expected] : cases) {
    auto r = Uvmctl(RunArgs(flags, {"true"}), WithTimeout(30s));
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.Describe();
  }
  ProcessOptions bad_config;
  bad_config.env = {"UVMCTL_CONFIG=" + (dir() / "missing.toml").string()};
  bad_config.timeout = 30s;
  auto missing = Uvmctl(RunArgs({"--network", "bridge"}, {"true"}), bad_config);
  EXPECT_EQ(missing.exit_code, 125) << missing.Describe();
  EXPECT_NE(missing.err.find("UVMCTL_CONFIG="), std::string::npos) << missing.Describe();
  std::ofstream(dir() / "typo.toml") << "[network]\nsubnett = \"10.0.0.0/24\"\n";
  bad_config.env = {"UVMCTL_CONFIG=" + (dir() / "typo.toml").string()};
  auto typo = Uvmctl(RunArgs({"--network", "bridge"}, {"true"}), bad_config);
  EXPECT_EQ(typo.exit_code, 125) << typo.Describe();
  EXPECT_NE(typo.err.find("unknown key \"subnett\""), std::string::npos) << typo.Describe();
}

UVMCTL_INSTANTIATE(NetworkNoneTest);
UVMCTL_INSTANTIATE(NetworkValidationTest);
#ifdef UVMSHIM_HYPERV_NETWORK_TESTS
UVMCTL_INSTANTIATE(NetworkBridgeTest);
#else
INSTANTIATE_TEST_SUITE_P(Isolation, NetworkBridgeTest, ::testing::Values("process"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });
#endif

}  // namespace
}  // namespace uvmshim::uvmctl_test
