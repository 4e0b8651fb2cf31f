#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "oci_spec.h"
#include "paths.h"

using namespace uvmshim::host;
using nlohmann::json;

TEST(OciSpec, CarriesProcessSettings) {
  SpecOptions options;
  options.process.args = {"/bin/echo", "hi"};
  options.process.env = {"FOO=bar", "PATH=/custom"};
  options.process.cwd = "/tmp";
  options.process.uid = 1000;
  options.process.gid = 100;
  options.process.terminal = true;
  options.hostname = "box";
  json spec = json::parse(BuildSpecJson(options));
  EXPECT_EQ(spec["process"]["args"], json({"/bin/echo", "hi"}));
  EXPECT_EQ(spec["process"]["cwd"], "/tmp");
  EXPECT_EQ(spec["process"]["user"]["uid"], 1000);
  EXPECT_EQ(spec["process"]["user"]["gid"], 100);
  EXPECT_EQ(spec["process"]["terminal"], true);
  EXPECT_EQ(spec["hostname"], "box");
  auto env = spec["process"]["env"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(env.begin(), env.end(), "FOO=bar"), env.end());
  // A given PATH replaces the default one rather than adding a second.
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](auto& e) { return e.starts_with("PATH="); }), 1);
  EXPECT_NE(std::find(env.begin(), env.end(), "PATH=/custom"), env.end());
  std::vector<std::string> ns;
  for (auto& n : spec["linux"]["namespaces"]) ns.push_back(n["type"]);
  EXPECT_EQ(ns, (std::vector<std::string>{"pid", "ipc", "uts", "mount"}));
}

// uvmctl's containers get what `ctr run` gives a runc container: kernel
// files hidden, tunables read-only, /proc without suid/exec/devices.
TEST(OciSpec, HidesAndProtectsWhatContainerdsDefaultSpecDoes) {
  json spec = json::parse(BuildSpecJson({}));
  auto masked = spec["linux"]["maskedPaths"].get<std::vector<std::string>>();
  for (const char* path : {"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/timer_list"})
    EXPECT_NE(std::find(masked.begin(), masked.end(), path), masked.end()) << path;
  auto readonly = spec["linux"]["readonlyPaths"].get<std::vector<std::string>>();
  for (const char* path : {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq"})
    EXPECT_NE(std::find(readonly.begin(), readonly.end(), path), readonly.end()) << path;
  const json& proc = spec["mounts"][0];
  ASSERT_EQ(proc["destination"], "/proc");
  EXPECT_EQ(proc["options"], json({"nosuid", "noexec", "nodev"}));
}

TEST(OciSpec, ParseUser) {
  EXPECT_EQ(ParseUser("1000"), std::make_pair(1000u, 0u));
  EXPECT_EQ(ParseUser("1000:100"), std::make_pair(1000u, 100u));
  EXPECT_THROW(ParseUser("root"), std::invalid_argument);
  EXPECT_THROW(ParseUser("1:"), std::invalid_argument);
  EXPECT_THROW(ParseUser(":1"), std::invalid_argument);
  EXPECT_THROW(ParseUser("-1"), std::invalid_argument);
}

TEST(Paths, RandomIdIsAValidFreshId) {
  EXPECT_TRUE(uvmshim::IsValidId(RandomId()));
  EXPECT_NE(RandomId(), RandomId());
}

#include "sandbox_config.h"

TEST(SandboxConfig, ParsesEveryKey) {
  auto config = ParseSandboxConfig(R"(
isolation = "process"
[uvm]
memory_mb = 512
cpus = 2
kernel = "/k"
initrd = "/i"
kernel_cmdline_extra = "loglevel=7"
boot_timeout_seconds = 30
console_log = false
[agent]
log_level = "debug"
call_timeout_seconds = 7
lifecycle_timeout_seconds = 90
)", "test.toml");
  EXPECT_EQ(config.isolation, Isolation::kProcess);
  EXPECT_EQ(config.memory_mb, 512u);
  EXPECT_EQ(config.cpus, 2u);
  EXPECT_EQ(config.kernel, "/k");
  EXPECT_EQ(config.initrd, "/i");
  EXPECT_EQ(config.kernel_cmdline_extra, "loglevel=7");
  EXPECT_EQ(config.boot_timeout, std::chrono::seconds(30));
  EXPECT_FALSE(config.console_log);
  EXPECT_EQ(config.agent_log_level, "debug");
  EXPECT_EQ(config.agent_call_timeout, std::chrono::seconds(7));
  EXPECT_EQ(config.agent_lifecycle_timeout, std::chrono::seconds(90));
}

TEST(SandboxConfig, RejectsWhatItDoesNotKnow) {
  auto message = [](const std::string& text) {
    try {
      ParseSandboxConfig(text, "c.toml");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("isolaton = \"process\""), "c.toml: unknown key \"isolaton\"");
  EXPECT_EQ(message("isolation = \"vm\""), "isolation \"vm\": expected process or hyperv");
  EXPECT_EQ(message("[uvm]\nmemory_mb = \"big\""), "c.toml [uvm]: \"memory_mb\" has the wrong type");
  EXPECT_EQ(message("[uvm]\ncpus = 0"), "c.toml [uvm]: \"cpus\" = 0 is out of range");
  EXPECT_EQ(message("[agent]\ncall_timeout_seconds = 0"),
            "c.toml [agent]: \"call_timeout_seconds\" = 0 is out of range");
  EXPECT_NE(message("isolation = "), "no error");
}

TEST(SandboxConfig, AnnotationOverrides) {
  SandboxConfig config;
  ApplyAnnotations(config, {{"io.uvmshim.isolation", "process"}});
  EXPECT_EQ(config.isolation, Isolation::kProcess);
  EXPECT_THROW(ApplyAnnotations(config, {{"io.uvmshim.isolation", "bogus"}}), std::invalid_argument);
}
