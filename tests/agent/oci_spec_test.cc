#include "guest-agent/oci_spec.h"

#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

namespace uvmshim::agent {
namespace {

using nlohmann::json;

json MinimalSpec() { return {{"process", {{"args", {"sh"}}}}, {"root", {{"path", "/rootfs"}}}}; }

std::string ErrorOfText(const std::string& text) {
  try {
    ParseOciSpec(text);
  } catch (const SpecError& e) {
    return e.what();
  }
  return "no error";
}

std::string ErrorOf(const json& spec) { return ErrorOfText(spec.dump()); }

TEST(OciSpec, ParsesAFullSpec) {
  json spec = {
      {"process",
       {{"terminal", true},
        {"consoleSize", {{"height", 40}, {"width", 120}}},
        {"user", {{"uid", 1000}, {"gid", 1001}, {"additionalGids", {5, 6}}, {"umask", 18}}},
        {"args", {"sh", "-c", "echo hi"}},
        {"env", {"PATH=/bin", "A=b=c"}},
        {"cwd", "/work"},
        {"capabilities", {{"bounding", {"CAP_KILL", "CAP_CHOWN"}}, {"effective", {"CAP_KILL"}}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"soft", 100}, {"hard", 200}}}},
        {"noNewPrivileges", true},
        {"oomScoreAdj", 5}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "box"},
      {"mounts", {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}, {"options", {"nosuid"}}}}},
      {"linux",
       {{"namespaces", {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "network"}, {"path", "/run/netns/x"}}}},
        {"resources", {{"memory", {{"limit", 1048576}}}, {"pids", {{"limit", 10}}}, {"cpu", {{"shares", 512}}}}},
        {"devices", {{{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}}}},
        {"maskedPaths", {"/proc/kcore"}},
        {"readonlyPaths", {"/proc/sys"}},
        {"sysctl", {{"net.ipv4.ip_forward", "1"}}}}},
  };
  OciSpec parsed = ParseOciSpec(spec.dump());
  EXPECT_TRUE(parsed.process.terminal);
  EXPECT_EQ(parsed.process.console_width, 120u);
  EXPECT_EQ(parsed.process.console_height, 40u);
  EXPECT_EQ(parsed.process.user.uid, 1000u);
  EXPECT_EQ(parsed.process.user.gid, 1001u);
  EXPECT_EQ(parsed.process.user.additional_gids, (std::vector<uint32_t>{5, 6}));
  EXPECT_EQ(parsed.process.user.umask, 18u);
  EXPECT_EQ(parsed.process.args.size(), 3u);
  EXPECT_EQ(parsed.process.cwd, "/work");
  ASSERT_TRUE(parsed.process.capabilities);
  EXPECT_EQ(*parsed.process.capabilities->bounding, (std::vector<int>{5, 0}));
  EXPECT_FALSE(parsed.process.capabilities->permitted);
  ASSERT_EQ(parsed.process.rlimits.size(), 1u);
  EXPECT_EQ(parsed.process.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(parsed.process.rlimits[0].hard, 200u);
  EXPECT_TRUE(parsed.process.no_new_privileges);
  EXPECT_EQ(parsed.process.oom_score_adj, 5);
  EXPECT_EQ(parsed.root_path, "rootfs");
  EXPECT_TRUE(parsed.root_readonly);
  EXPECT_EQ(parsed.hostname, "box");
  EXPECT_TRUE(parsed.has_mounts);
  ASSERT_EQ(parsed.mounts.size(), 1u);
  EXPECT_EQ(parsed.mounts[0].options, (std::vector<std::string>{"nosuid"}));
  EXPECT_TRUE(parsed.HasNamespace("network"));
  EXPECT_EQ(parsed.FindNamespace("network")->path, "/run/netns/x");
  EXPECT_FALSE(parsed.HasNamespace("uts"));
  EXPECT_EQ(parsed.resources.memory_limit, 1048576);
  EXPECT_EQ(parsed.resources.pids_limit, 10);
  EXPECT_EQ(parsed.resources.cpu_shares, 512u);
  ASSERT_EQ(parsed.devices.size(), 1u);
  EXPECT_EQ(parsed.devices[0].minor, 229);
  EXPECT_EQ(parsed.sysctl.at("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(EnvLookup(parsed.process.env, "A"), "b=c");
  EXPECT_EQ(EnvLookup(parsed.process.env, "B"), std::nullopt);
}

TEST(OciSpec, DefaultsWhenOmitted) {
  OciSpec parsed = ParseOciSpec(MinimalSpec().dump());
  EXPECT_EQ(parsed.process.cwd, "/");
  EXPECT_FALSE(parsed.has_mounts);
  EXPECT_EQ(parsed.mounts.size(), DefaultMounts().size());
  for (const char* ns : {"pid", "mount", "uts", "ipc"}) EXPECT_TRUE(parsed.HasNamespace(ns)) << ns;
  EXPECT_FALSE(parsed.HasNamespace("network"));
  EXPECT_FALSE(parsed.process.capabilities);
}

TEST(OciSpec, ErrorsNameTheField) {
  EXPECT_EQ(ErrorOf(json{{"root", {{"path", "/r"}}}}), "spec: process is required");
  json no_args = MinimalSpec();
  no_args["process"].erase("args");
  EXPECT_EQ(ErrorOf(no_args), "spec: process.args must be a non-empty array of strings");
  json empty_args = MinimalSpec();
  empty_args["process"]["args"] = json::array();
  EXPECT_EQ(ErrorOf(empty_args), "spec: process.args must be a non-empty array of strings");
  json number_args = MinimalSpec();
  number_args["process"]["args"] = {"sh", 5};
  EXPECT_EQ(ErrorOf(number_args), "spec: process.args must be a non-empty array of strings");
  json bad_cwd = MinimalSpec();
  bad_cwd["process"]["cwd"] = "relative";
  EXPECT_EQ(ErrorOf(bad_cwd), "spec: process.cwd must be an absolute path");
  json bad_uid = MinimalSpec();
  bad_uid["process"]["user"] = {{"uid", -1}};
  EXPECT_EQ(ErrorOf(bad_uid), "spec: process.user.uid is out of range");
  json bad_env = MinimalSpec();
  bad_env["process"]["env"] = {"PATH=/bin", "NOEQUALS"};
  EXPECT_EQ(ErrorOf(bad_env), "spec: process.env[1] must have the form NAME=value");
  json bad_cap = MinimalSpec();
  bad_cap["process"]["capabilities"] = {{"bounding", {"CAP_NOPE"}}};
  EXPECT_EQ(ErrorOf(bad_cap), "spec: process.capabilities.bounding names an unknown capability \"CAP_NOPE\"");
  json bad_rlimit = MinimalSpec();
  bad_rlimit["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 10}, {"hard", 5}}};
  EXPECT_EQ(ErrorOf(bad_rlimit), "spec: process.rlimits[0] has soft > hard");
  json bad_mount = MinimalSpec();
  bad_mount["mounts"] = {{{"destination", "relative"}}};
  EXPECT_EQ(ErrorOf(bad_mount), "spec: mounts[0].destination must be an absolute path");
  json bad_ns = MinimalSpec();
  bad_ns["linux"] = {{"namespaces", {{{"type", "pid"}}}}};
  EXPECT_NE(ErrorOf(bad_ns).find("spec: linux.namespaces must contain a new mount namespace"), std::string::npos);
  json user_ns = MinimalSpec();
  user_ns["linux"] = {{"namespaces", {{{"type", "mount"}}, {{"type", "user"}}}}};
  EXPECT_EQ(ErrorOf(user_ns), "spec: linux.namespaces[1].type \"user\" namespaces are not supported");
  json mount_path = MinimalSpec();
  mount_path["linux"] = {{"namespaces", {{{"type", "mount"}}, {{"type", "cgroup"}, {"path", "/proc/1/ns/cgroup"}}}}};
  EXPECT_EQ(ErrorOf(mount_path),
            "spec: linux.namespaces[1].path is only supported for network, ipc, uts and pid namespaces");
  json terminal = MinimalSpec();
  terminal["process"]["terminal"] = "yes";
  EXPECT_EQ(ErrorOf(terminal), "spec: process.terminal must be a boolean");
}

TEST(OciSpec, RejectsMalformedAndOversizedJson) {
  EXPECT_NE(ErrorOfText("{\"process\": ").find("spec: invalid JSON"), std::string::npos);
  EXPECT_EQ(ErrorOfText("[1,2]"), "spec: the document must be a JSON object");
  EXPECT_NE(ErrorOfText(std::string("\xff\xfe garbage")).find("spec: invalid JSON"), std::string::npos);
  json big = MinimalSpec();
  big["annotations"] = {{"x", std::string(kMaxSpecBytes, 'a')}};
  EXPECT_THROW(ParseOciSpec(big.dump()), SpecTooLarge);
}

TEST(OciSpec, ParsesExecProcess) {
  OciProcess process = ParseOciProcess(R"({"args":["ls","-l"],"cwd":"/tmp","user":{"uid":5}})");
  EXPECT_EQ(process.args, (std::vector<std::string>{"ls", "-l"}));
  EXPECT_EQ(process.cwd, "/tmp");
  EXPECT_EQ(process.user.uid, 5u);
  try {
    ParseOciProcess(R"({"cwd":"/"})");
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_STREQ(e.what(), "process: args must be a non-empty array of strings");
  }
  EXPECT_THROW(ParseOciProcess("not json"), SpecError);
}

TEST(OciSpec, NameTables) {
  EXPECT_EQ(CapabilityFromName("CAP_CHOWN"), 0);
  EXPECT_EQ(CapabilityFromName("CAP_SYS_ADMIN"), 21);
  EXPECT_EQ(CapabilityFromName("CAP_CHECKPOINT_RESTORE"), 40);
  EXPECT_EQ(CapabilityFromName("chown"), -1);
  EXPECT_EQ(RlimitFromName("RLIMIT_NPROC"), RLIMIT_NPROC);
  EXPECT_EQ(RlimitFromName("NOFILE"), -1);
}

}  // namespace
}  // namespace uvmshim::agent
