// Unit tests of uvmctl's networking parts that need no namespace: -p and
// config parsing, resolv.conf/hosts generation, the CNI lists, and the CNI
// exec protocol against a real (shell script) plugin in a temp dir.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "uvmctl/cni.h"
#include "uvmctl/container_network.h"
#include "uvmctl/network_config.h"
#include "uvmctl/network_files.h"
#include "tests/support/temp_dir.h"

namespace uvmshim::uvmctl {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string ErrorOf(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(PortMappings, ParsesPortsAndProtocols) {
  auto ports = ParsePortMappings({"18080:80", "5353:53/udp", "8443:443/tcp"});
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0].host_port, 18080);
  EXPECT_EQ(ports[0].container_port, 80);
  EXPECT_EQ(ports[0].protocol, "tcp");
  EXPECT_EQ(ports[1].protocol, "udp");
  EXPECT_EQ(ports[2].container_port, 443);
  EXPECT_EQ(PortMappingsArg(ports)[1], (json{{"hostPort", 5353}, {"containerPort", 53}, {"protocol", "udp"}}));
}

TEST(PortMappings, RejectsBadValuesNamingThem) {
  for (const std::string bad : {"80", "0:80", "80:65536", "x:80", "80:", ":80", "1:2:3", "80:80/sctp", "-1:80"}) {
    const std::string error = ErrorOf([&] { ParsePortMappings({bad}); });
    EXPECT_NE(error.find("-p \"" + bad + "\""), std::string::npos) << bad << ": " << error;
  }
  EXPECT_NE(ErrorOf([] { ParsePortMappings({"8080:80", "8080:81"}); }).find("published twice"), std::string::npos);
  EXPECT_EQ(ErrorOf([] { ParsePortMappings({"8080:80", "8080:80/udp"}); }), "") << "tcp and udp are distinct";
}

TEST(NetworkRequest, PublishNeedsBridgeAndModesAreChecked) {
  EXPECT_NE(ErrorOf([] { ParseNetworkRequest("", {"80:80"}); }).find("--network bridge"), std::string::npos);
  EXPECT_NE(ErrorOf([] { ParseNetworkRequest("none", {"80:80"}); }).find("--network bridge"), std::string::npos);
  EXPECT_NE(ErrorOf([] { ParseNetworkRequest("host", {}); }).find("--network \"host\""), std::string::npos);
  EXPECT_EQ(ParseNetworkRequest("", {}).mode, NetworkMode::kDefault);
}

TEST(NetworkConfigFile, DefaultsAndEveryKey) {
  auto defaults = ParseNetworkConfig("", "t.toml");
  EXPECT_EQ(defaults.bridge, "uvmshim0");
  EXPECT_EQ(defaults.subnet, "10.89.0.0/16");
  EXPECT_EQ(defaults.netns_dir, "/run/netns");
  auto config = ParseNetworkConfig(R"([network]
name = "lab"
bridge = "br-lab"
subnet = "192.168.77.0/24"
gateway = "192.168.77.254"
mtu = 1400
cni_path = ["/opt/cni/bin", "/usr/lib/cni"]
netns_dir = "/run/lab-netns"
ipam_data_dir = "/var/lib/lab-ipam"
dns = ["192.0.2.53"]
host_resolv_conf = "/etc/lab-resolv.conf"
)", "t.toml");
  EXPECT_EQ(config.name, "lab");
  EXPECT_EQ(config.bridge, "br-lab");
  EXPECT_EQ(config.mtu, 1400u);
  ASSERT_EQ(config.cni_path.size(), 2u);
  EXPECT_EQ(config.cni_path[0], "/opt/cni/bin");
  json list = BridgeConflist(config, true);
  EXPECT_EQ(list["name"], "lab");
  ASSERT_EQ(list["plugins"].size(), 2u);
  EXPECT_EQ(list["plugins"][0]["type"], "bridge");
  EXPECT_EQ(list["plugins"][0]["bridge"], "br-lab");
  EXPECT_EQ(list["plugins"][0]["mtu"], 1400);
  EXPECT_EQ(list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "192.168.77.0/24");
  EXPECT_EQ(list["plugins"][0]["ipam"]["ranges"][0][0]["gateway"], "192.168.77.254");
  EXPECT_EQ(list["plugins"][0]["ipam"]["dataDir"], "/var/lib/lab-ipam");
  EXPECT_EQ(list["plugins"][1]["type"], "portmap");
  EXPECT_EQ(list["plugins"][1]["capabilities"]["portMappings"], true);
  EXPECT_EQ(BridgeConflist(config, false)["plugins"].size(), 1u) << "portmap only when ports are published";
  EXPECT_NO_THROW(ValidateConflist(list));
  EXPECT_NO_THROW(ValidateConflist(LoopbackConflist()));
}

TEST(NetworkConfigFile, BadValuesNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[network]\nbrigde = \"x\"\n", "unknown key \"brigde\""},
      {"[netwrk]\n", "unknown key \"netwrk\""},
      {"[network]\nbridge = \"a-very-long-bridge-name\"\n", "\"bridge\""},
      {"[network]\nsubnet = \"10.0.0.1/24\"\n", "host bits"},
      {"[network]\nsubnet = \"10.0.0.0\"\n", "\"subnet\""},
      {"[network]\nsubnet = \"10.0.0.0/31\"\n", "\"subnet\""},
      {"[network]\ngateway = \"ten\"\n", "\"gateway\""},
      {"[network]\nmtu = 10\n", "\"mtu\""},
      {"[network]\ncni_path = [\"lib/cni\"]\n", "\"cni_path\""},
      {"[network]\ncni_path = []\n", "\"cni_path\""},
      {"[network]\nnetns_dir = \"run\"\n", "\"netns_dir\""},
      {"[network]\ndns = [\"resolver\"]\n", "\"dns\""},
      {"[network]\nname = \"-x\"\n", "\"name\""},
      {"[network]\nbridge = 3\n", "wrong type"},
      {"[network\n", "t.toml"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string error = ErrorOf([&text = text] { ParseNetworkConfig(text, "t.toml"); });
    EXPECT_NE(error.find(expected), std::string::npos) << text << "-> " << error;
    EXPECT_NE(error.find("t.toml"), std::string::npos) << error;
  }
}

TEST(ResolvConf, LoopbackServersDroppedFallbackWhenNoneLeft) {
  const std::string systemd = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lab.example\n";
  const std::string out = ContainerResolvConf(systemd, {"192.0.2.1", "192.0.2.2"});
  EXPECT_EQ(out.find("127.0.0.53"), std::string::npos) << out;
  EXPECT_NE(out.find("nameserver 192.0.2.1\nnameserver 192.0.2.2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("search lab.example\n"), std::string::npos) << out;
  EXPECT_NE(out.find("options edns0 trust-ad\n"), std::string::npos) << out;

  const std::string mixed = "# comment\nnameserver 127.0.1.1\nnameserver 198.51.100.7\nnameserver ::1\n";
  const std::string copied = ContainerResolvConf(mixed, {"192.0.2.1"});
  EXPECT_NE(copied.find("nameserver 198.51.100.7\n"), std::string::npos) << copied;
  EXPECT_EQ(copied.find("192.0.2.1"), std::string::npos) << "a usable host server needs no fallback: " << copied;
  EXPECT_EQ(copied.find("127.0.1.1"), std::string::npos) << copied;
  EXPECT_EQ(copied.find("::1"), std::string::npos) << copied;

  const json dns = {{"nameservers", {"10.89.0.1"}}, {"search", {"pod.local"}}};
  const std::string from_cni = ContainerResolvConf(mixed, {"192.0.2.1"}, dns);
  EXPECT_NE(from_cni.find("nameserver 10.89.0.1\nsearch pod.local\n"), std::string::npos) << from_cni;
  EXPECT_EQ(from_cni.find("198.51.100.7"), std::string::npos) << from_cni;
}

TEST(HostsFile, LocalhostAndTheContainersName) {
  const std::string with = ContainerHosts("web", "10.89.0.5");
  EXPECT_EQ(with.rfind("127.0.0.1\tlocalhost\n", 0), 0u) << with;
  EXPECT_NE(with.find("\n10.89.0.5\tweb\n"), std::string::npos) << with;
  EXPECT_EQ(ContainerHosts("web", "").find("web"), std::string::npos);
}

TEST(CniResult, FirstAddressPrefersIpv4) {
  EXPECT_EQ(FirstAddress(json::parse(R"({"ips":[{"address":"fd00::5/64"},{"address":"10.89.0.5/16"}]})")),
            "10.89.0.5");
  EXPECT_EQ(FirstAddress(json::parse(R"({"ips":[{"address":"fd00::5/64"}]})")), "fd00::5");
  EXPECT_EQ(FirstAddress(json::object()), "");
}

// Real plugin executables (shell scripts in a temp dir) that record the
// environment and stdin they were given and answer what the test wrote.
class CniExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.container_id = "c1";
    runtime_.netns = "/run/netns/none-such";
    runtime_.ifname = "eth0";
    runtime_.plugin_dirs = {dir_ / "empty", dir_};
    runtime_.timeout = std::chrono::seconds(10);
  }

  // A plugin named `type` whose body is `script` (sh); it sees the call in
  // env and stdin, and saves both as <dir>/<type>.<command>.{env,in}.
  void Plugin(const std::string& type, const std::string& script) {
    const fs::path path = dir_ / type;
    std::ofstream(path) << "#!/bin/sh\n"
                        << "env | grep '^CNI_' | sort > " << (dir_ / type).string() << ".$CNI_COMMAND.env\n"
                        << "cat > " << (dir_ / type).string() << ".$CNI_COMMAND.in\n"
                        << script << "\n";
    fs::permissions(path, fs::perms::owner_all);
  }
  json Input(const std::string& type, const std::string& command) {
    std::ifstream in(dir_ / (type + "." + command + ".in"));
    return json::parse(in);
  }
  std::string Env(const std::string& type, const std::string& command) {
    std::ifstream in(dir_ / (type + "." + command + ".env"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  uvmshim::testing::TempDir temp_{"uvcni"};
  const std::filesystem::path dir_ = temp_.path();
  CniRuntime runtime_;
};

TEST_F(CniExecTest, ListChainsResultsAndPassesCapabilitiesOnlyToCapablePlugins) {
  Plugin("first", R"(echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.2/24"}]}')");
  Plugin("second", R"(echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.2/24"}],"dns":{}}')");
  const json list = {{"cniVersion", "1.0.0"}, {"name", "net1"},
                     {"plugins", {{{"type", "first"}}, {{"type", "second"}, {"capabilities", {{"portMappings", true}}}}}}};
  runtime_.capability_args = {{"portMappings", json::array({{{"hostPort", 1}, {"containerPort", 2}, {"protocol", "tcp"}}})}};
  const json result = AddNetworkList(list, runtime_);
  EXPECT_EQ(FirstAddress(result), "10.1.0.2");

  const json first = Input("first", "ADD");
  EXPECT_EQ(first["name"], "net1");
  EXPECT_EQ(first["cniVersion"], "1.0.0");
  EXPECT_FALSE(first.contains("prevResult"));
  EXPECT_FALSE(first.contains("runtimeConfig")) << "first declares no capability";
  const json second = Input("second", "ADD");
  EXPECT_EQ(second["prevResult"]["ips"][0]["address"], "10.1.0.2/24");
  EXPECT_EQ(second["runtimeConfig"]["portMappings"][0]["hostPort"], 1);
  EXPECT_EQ(Env("first", "ADD"), "CNI_COMMAND=ADD\nCNI_CONTAINERID=c1\nCNI_IFNAME=eth0\nCNI_NETNS=/run/netns/none-such\n"
                                 "CNI_PATH=" + (dir_ / "empty").string() + ":" + dir_.string() + "\n");

  DelNetworkList(list, runtime_, result);
  EXPECT_EQ(Input("first", "DEL")["prevResult"], result);
  EXPECT_NE(Env("second", "DEL").find("CNI_COMMAND=DEL"), std::string::npos);
}

TEST_F(CniExecTest, PluginErrorsCarryTheirMessageAndDelCallsEveryPlugin) {
  Plugin("ok", "exit 0");
  Plugin("bad", R"(echo '{"cniVersion":"1.0.0","code":11,"msg":"failed to allocate","details":"range full"}'; exit 1)");
  const json list = {{"cniVersion", "1.0.0"}, {"name", "net1"}, {"plugins", {{{"type", "ok"}}, {{"type", "bad"}}}}};
  const std::string add = ErrorOf([&] { AddNetworkList(list, runtime_); });
  EXPECT_NE(add.find("CNI plugin bad ADD"), std::string::npos) << add;
  EXPECT_NE(add.find("failed to allocate: range full"), std::string::npos) << add;
  const std::string del = ErrorOf([&] { DelNetworkList(list, runtime_, nullptr); });
  EXPECT_NE(del.find("bad DEL"), std::string::npos) << del;
  EXPECT_TRUE(fs::exists(dir_ / "ok.DEL.in")) << "DEL goes on past a failing plugin";
  EXPECT_FALSE(Input("ok", "DEL").contains("prevResult")) << "no prevResult when the ADD never completed";
}

TEST_F(CniExecTest, MissingPluginHungPluginAndGarbageOutput) {
  const json missing = {{"cniVersion", "1.0.0"}, {"name", "n"}, {"plugins", {{{"type", "nope"}}}}};
  EXPECT_NE(ErrorOf([&] { AddNetworkList(missing, runtime_); }).find("\"nope\" not found"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { CheckPluginsInstalled(missing, runtime_.plugin_dirs); }).find("\"nope\" not found"),
            std::string::npos);
  EXPECT_EQ(ErrorOf([&] { DelNetworkList(missing, runtime_, nullptr); }), "")
      << "DEL of a plugin that is gone cannot be retried: skipped with a warning";
  const json escape = {{"cniVersion", "1.0.0"}, {"name", "n"}, {"plugins", {{{"type", "../bin/sh"}}}}};
  EXPECT_NE(ErrorOf([&] { AddNetworkList(escape, runtime_); }).find("not a plugin name"), std::string::npos);

  Plugin("hang", "exec sleep 100");
  runtime_.timeout = std::chrono::seconds(1);
  const json hang = {{"cniVersion", "1.0.0"}, {"name", "n"}, {"plugins", {{{"type", "hang"}}}}};
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(ErrorOf([&] { AddNetworkList(hang, runtime_); }).find("no answer within 1 s"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  Plugin("garbage", "echo not-json");
  const json garbage = {{"cniVersion", "1.0.0"}, {"name", "n"}, {"plugins", {{{"type", "garbage"}}}}};
  EXPECT_NE(ErrorOf([&] { AddNetworkList(garbage, runtime_); }).find("not JSON"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { ValidateConflist(json{{"name", "n"}}); }).find("cniVersion"), std::string::npos);
}

}  // namespace
}  // namespace uvmshim::uvmctl
