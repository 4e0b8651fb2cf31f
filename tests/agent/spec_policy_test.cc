// The spec field policy (guest-agent/spec_policy.h): every refused field
// fails with an error naming it, conditional fields follow the machine, and
// the specs containerd, CRI and Docker write are accepted.
#include "guest-agent/spec_policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "guest-agent/hooks.h"
#include "guest-agent/oci_spec.h"

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;

json BaseSpec() {
  return json::parse(R"({
    "ociVersion": "1.0.2",
    "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
    "root": {"path": "rootfs"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
                             {"type": "network"}]}
  })");
}

PolicyEnvironment PlainHost() {
  // This machine's namespaces, but no LSMs, no swap, no huge pages.
  PolicyEnvironment env = PolicyEnvironment::Probe(false);
  env.apparmor = env.selinux = false;
  env.swap_total_kb = env.hugepages_total = 0;
  return env;
}

// The error of CheckSpecPolicy, "" when accepted.
std::string PolicyError(const json& spec, const PolicyEnvironment& env = PlainHost()) {
  try {
    CheckSpecPolicy(spec.dump(), env);
    return "";
  } catch (const SpecError& e) {
    return e.what();
  }
}

// Sets `path` (table syntax, "mounts[].uidMappings") in `spec` to `value`;
// returns the concrete path an error names ("mounts[0].uidMappings").
std::string SetPath(json& spec, std::string_view path, const json& value) {
  json* node = &spec;
  std::string concrete;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    bool last = dot == std::string_view::npos;
    bool array = part.size() > 2 && part.compare(part.size() - 2, 2, "[]") == 0;
    if (array) part.resize(part.size() - 2);
    concrete += (concrete.empty() ? "" : ".") + part;
    if (array) {
      json element = part == "mounts" ? json{{"destination", "/x"}, {"type", "tmpfs"}, {"source", "tmpfs"}}
                                      : json::object();
      (*node)[part] = json::array({element});
      node = &(*node)[part][0];
      concrete += "[0]";
    } else if (last) {
      (*node)[part] = value;
    } else {
      if (!node->contains(part) || !(*node)[part].is_object()) (*node)[part] = json::object();
      node = &(*node)[part];
    }
    if (last) break;
    start = dot + 1;
  }
  return concrete;
}

TEST(SpecPolicy, EveryRefusedFieldFailsNamingTheField) {
  int refused = 0;
  for (const auto& field : SpecFieldTable()) {
    if (field.verdict != FieldVerdict::kRefused) continue;
    ++refused;
    json spec = BaseSpec();
    std::string name = SetPath(spec, field.path, json{{"asks", 1}});
    std::string error = PolicyError(spec);
    EXPECT_NE(error.find("spec: " + name + " is not supported"), std::string::npos)
        << field.path << " gave: " << error;
  }
  EXPECT_GE(refused, 30);
}

TEST(SpecPolicy, RefusedFieldsAskingForNothingPass) {
  for (const auto& field : SpecFieldTable()) {
    if (field.verdict != FieldVerdict::kRefused) continue;
    for (const json& empty : {json(nullptr), json(""), json::array(), json::object(), json(false)}) {
      json spec = BaseSpec();
      SetPath(spec, field.path, empty);
      EXPECT_EQ(PolicyError(spec), "") << field.path << " = " << empty.dump();
    }
  }
}

TEST(SpecPolicy, TableHasNoDuplicatesAndEveryLeafHasAVerdict) {
  std::set<std::string_view> seen;
  for (const auto& field : SpecFieldTable()) {
    EXPECT_TRUE(seen.insert(field.path).second) << field.path;
    if (field.verdict == FieldVerdict::kRefused || field.verdict == FieldVerdict::kConditional) {
      EXPECT_FALSE(field.note.empty()) << field.path << " needs a reason";
    }
  }
}

struct Case {
  const char* name;
  const char* path;
  const char* value;       // JSON
  const char* error;       // substring of the error; "" = accepted
  bool in_vm = false;
  bool apparmor = false;
  uint64_t swap_kb = 0;
  uint64_t hugepages = 0;
};

const Case kCases[] = {
    {"apparmor without AppArmor", "process.apparmorProfile", R"("docker-default")",
     "spec: process.apparmorProfile asks for AppArmor profile \"docker-default\" but AppArmor is not enabled"},
    {"apparmor with AppArmor", "process.apparmorProfile", R"("docker-default")", "", false, true},
    {"apparmor empty", "process.apparmorProfile", R"("")", ""},
    {"selinux label", "process.selinuxLabel", R"("system_u:system_r:container_t:s0")",
     "spec: process.selinuxLabel is not supported: SELinux"},
    {"mount label", "linux.mountLabel", R"("system_u:object_r:container_file_t:s0")",
     "spec: linux.mountLabel is not supported"},
    {"sysctl ipc key", "linux.sysctl", R"({"kernel.shmmax": "1000000"})", ""},
    {"sysctl mqueue key", "linux.sysctl", R"({"fs.mqueue.msg_max": "20"})", ""},
    {"sysctl net key, private netns", "linux.sysctl", R"({"net.ipv4.ip_forward": "1"})", ""},
    {"sysctl non-namespaced key", "linux.sysctl", R"({"kernel.panic": "1"})",
     "spec: linux.sysctl.kernel.panic is not a namespaced sysctl: it would change the whole host"},
    {"sysctl vm key in VM", "linux.sysctl", R"({"vm.swappiness": "1"})",
     "spec: linux.sysctl.vm.swappiness is not a namespaced sysctl: it would change the whole utility VM", true},
    {"swap equal to limit", "linux.resources.memory", R"({"limit": 1048576, "swap": 1048576})", ""},
    {"swap unlimited", "linux.resources.memory", R"({"limit": 1048576, "swap": -1})", ""},
    {"swap beyond limit", "linux.resources.memory", R"({"limit": 1048576, "swap": 2097152})",
     "spec: linux.resources.memory.swap must be -1 or equal to memory.limit"},
    {"swap equal, machine has swap", "linux.resources.memory", R"({"limit": 1048576, "swap": 1048576})",
     "spec: linux.resources.memory.swap equal to memory.limit cannot be enforced", false, false, 4096},
    {"reservation", "linux.resources.memory", R"({"reservation": 1048576})",
     "spec: linux.resources.memory.reservation is not supported"},
    {"disableOOMKiller false", "linux.resources.memory", R"({"disableOOMKiller": false})", ""},
    {"disableOOMKiller true", "linux.resources.memory", R"({"disableOOMKiller": true})",
     "spec: linux.resources.memory.disableOOMKiller is not supported"},
    {"hugepage limits, no huge pages", "linux.resources.hugepageLimits", R"([{"pageSize": "2MB", "limit": 0}])", ""},
    {"hugepage limits, huge pages", "linux.resources.hugepageLimits", R"([{"pageSize": "2MB", "limit": 0}])",
     "spec: linux.resources.hugepageLimits is not applied", false, false, 0, 64},
    {"blockIO weight 0 (Docker's unset)", "linux.resources.blockIO", R"({"weight": 0, "weightDevice": []})", ""},
    {"blockIO weight", "linux.resources.blockIO", R"({"weight": 500})", "spec: linux.resources.blockIO is not supported"},
    {"blockIO throttle", "linux.resources.blockIO",
     R"({"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]})",
     "spec: linux.resources.blockIO is not supported"},
    {"cpu shares and quota", "linux.resources.cpu", R"({"shares": 2, "quota": 50000, "period": 100000})", ""},
    {"cpuset", "linux.resources.cpu", R"({"cpus": "0-1"})", "spec: linux.resources.cpu.cpus is not supported"},
    {"cpuset empty", "linux.resources.cpu", R"({"cpus": "", "mems": ""})", ""},
    {"realtime", "linux.resources.cpu", R"({"realtimeRuntime": 950000})",
     "spec: linux.resources.cpu.realtimeRuntime is not supported"},
    {"unified", "linux.resources.unified", R"({"memory.high": "1000000"})", "spec: linux.resources.unified is not supported"},
    {"personality LINUX32", "linux.personality", R"({"domain": "LINUX32"})", ""},
    {"personality unknown", "linux.personality", R"({"domain": "SVR4"})", "spec: linux.personality.domain must be LINUX or LINUX32"},
    {"personality flags", "linux.personality", R"({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]})",
     "spec: linux.personality.flags is not supported"},
    {"ioPriority", "process.ioPriority", R"({"class": "IOPRIO_CLASS_IDLE", "priority": 7})", ""},
    {"ioPriority bad class", "process.ioPriority", R"({"class": "IOPRIO_CLASS_NONE", "priority": 7})",
     "spec: process.ioPriority.class must be"},
    {"scheduler", "process.scheduler", R"({"policy": "SCHED_BATCH"})", "spec: process.scheduler is not supported"},
    {"uid mappings", "linux.uidMappings", R"([{"containerID": 0, "hostID": 1000, "size": 1}])",
     "spec: linux.uidMappings is not supported: user namespaces"},
    {"time offsets", "linux.timeOffsets", R"({"monotonic": {"secs": 1}})", "spec: linux.timeOffsets is not supported"},
    {"intelRdt", "linux.intelRdt", R"({"closID": "x"})", "spec: linux.intelRdt is not supported"},
    {"hooks in process isolation", "hooks", R"({"prestart": [{"path": "/bin/true"}]})", ""},
    {"hooks in hyperv", "hooks", R"({"prestart": [{"path": "/bin/true"}]})",
     "spec: hooks.prestart cannot run: in hyperv isolation", true},
    {"empty hooks in hyperv", "hooks", R"({"prestart": []})", "", true},
    {"createContainer hook", "hooks", R"({"createContainer": [{"path": "/bin/true"}]})",
     "spec: hooks.createContainer is not supported"},
    {"ociVersion 2", "ociVersion", R"("2.0.0")", "spec: ociVersion \"2.0.0\" is not a 1.x runtime spec version"},
    {"vm object", "vm", R"({"hypervisor": {"path": "/usr/bin/qemu"}})", "spec: vm is not supported"},
    {"windows object", "windows", R"({"layerFolders": ["C:\\x"]})", "spec: windows is not supported"},
};

class SpecPolicyCase : public testing::TestWithParam<Case> {};

TEST_P(SpecPolicyCase, ErrorNamesTheField) {
  const Case& c = GetParam();
  json spec = BaseSpec();
  SetPath(spec, c.path, json::parse(c.value));
  PolicyEnvironment env = PlainHost();
  env.in_utility_vm = c.in_vm;
  env.apparmor = c.apparmor;
  env.swap_total_kb = c.swap_kb;
  env.hugepages_total = c.hugepages;
  std::string error = PolicyError(spec, env);
  if (std::string(c.error).empty())
    EXPECT_EQ(error, "") << c.name;
  else
    EXPECT_NE(error.find(c.error), std::string::npos) << c.name << " gave: " << error;
}

INSTANTIATE_TEST_SUITE_P(Table, SpecPolicyCase, testing::ValuesIn(kCases), [](const auto& param_info) {
  std::string name;
  for (char ch : std::string(param_info.param.name)) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return name;
});

TEST(SpecPolicy, NetSysctlNeedsAPrivateNetworkNamespace) {
  json spec = BaseSpec();
  spec["linux"]["namespaces"] = json::array({{{"type", "pid"}}, {{"type", "mount"}}});
  spec["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  EXPECT_NE(PolicyError(spec).find("spec: linux.sysctl.net.ipv4.ip_forward needs a private network namespace"),
            std::string::npos);
  // Joining the agent's own network namespace by path is sharing it too.
  spec["linux"]["namespaces"].push_back({{"type", "network"}, {"path", "/proc/self/ns/net"}});
  EXPECT_NE(PolicyError(spec).find("needs a private network namespace"), std::string::npos);
  spec["linux"]["sysctl"] = {{"kernel.shmmax", "100"}};
  EXPECT_NE(PolicyError(spec).find("spec: linux.sysctl.kernel.shmmax needs a private ipc namespace"), std::string::npos);
  // Joining the host's ipc namespace by path is not private either.
  spec["linux"]["namespaces"].push_back({{"type", "ipc"}, {"path", "/proc/self/ns/ipc"}});
  EXPECT_NE(PolicyError(spec).find("needs a private ipc namespace"), std::string::npos);
  spec["linux"]["namespaces"].back()["path"] = "";
  EXPECT_EQ(PolicyError(spec), "");
}

TEST(SpecPolicy, UnknownFieldsWarnAndPass) {
  json spec = BaseSpec();
  spec["futureField"] = {{"x", 1}};
  spec["linux"]["resources"]["futureController"] = {{"limit", 1}};
  auto warnings = CheckSpecPolicy(spec.dump(), PlainHost());
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("futureField is not a field this agent knows"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("linux.resources.futureController"), std::string::npos) << warnings[1];
}

TEST(SpecPolicy, ExecProcessIsCheckedToo) {
  try {
    CheckProcessPolicy(R"({"args": ["sh"], "cwd": "/", "selinuxLabel": "x"})", PlainHost());
    FAIL() << "accepted";
  } catch (const SpecError& e) {
    EXPECT_STREQ(e.what(), "process: selinuxLabel is not supported: SELinux labels are not supported");
  }
  EXPECT_TRUE(CheckProcessPolicy(R"({"args": ["sh"], "cwd": "/", "noNewPrivileges": true})", PlainHost()).empty());
}

json LoadFixture(const std::string& name) {
  std::ifstream in(std::string(UVMSHIM_SPEC_FIXTURES) + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream text;
  text << in.rdbuf();
  json spec = json::parse(text.str());
  if (!spec["process"].contains("args")) spec["process"]["args"] = {"sh"};  // `ctr run` adds the command
  // CRI joins the sandbox's namespaces: any namespace files of another process do.
  std::string text_out = spec.dump();
  for (const auto& [placeholder, ns] : {std::pair{"IPC_NS", "ipc"}, std::pair{"UTS_NS", "uts"}, std::pair{"NET_NS", "net"}}) {
    std::string replacement = std::string("/proc/1/ns/") + ns;
    for (size_t at; (at = text_out.find(placeholder)) != std::string::npos;)
      text_out.replace(at, std::string(placeholder).size(), replacement);
  }
  return json::parse(text_out);
}

class EngineSpec : public testing::TestWithParam<const char*> {};

TEST_P(EngineSpec, IsAcceptedInBothModes) {
  json spec = LoadFixture(GetParam());
  for (bool in_vm : {false, true}) {
    PolicyEnvironment env = PlainHost();
    env.in_utility_vm = in_vm;
    bool has_hooks = spec.contains("hooks") && !spec["hooks"].empty();
    EXPECT_NO_THROW(ParseOciSpec(spec.dump())) << GetParam();
    std::string error = PolicyError(spec, env);
    if (in_vm && has_hooks) {
      // Docker's libnetwork hook is a host program: hyperv refuses it by name.
      EXPECT_NE(error.find("spec: hooks.prestart cannot run"), std::string::npos) << error;
    } else {
      EXPECT_EQ(error, "") << GetParam() << (in_vm ? " (hyperv)" : " (process)");
      if (error.empty()) {
        EXPECT_TRUE(CheckSpecPolicy(spec.dump(), env).empty()) << "unknown fields in " << GetParam();
      }
    }
  }
  EXPECT_NO_THROW(ParseOciHooks(spec.dump()));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EngineSpec,
                         testing::Values("containerd-1.6-ctr-default.json", "cri-1.6-besteffort.json",
                                         "cri-1.6-guaranteed.json", "docker-20.10-run.json"),
                         [](const auto& param_info) {
                           std::string name;
                           for (char ch : std::string(param_info.param)) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return name;
                         });

TEST(OciHooks, ParsesAndNamesBadFields) {
  auto hooks = ParseOciHooks(R"({"hooks": {"prestart": [{"path": "/bin/x", "args": ["x", "1"], "timeout": 5}],
                                            "poststop": [{"path": "/bin/y"}]}, "annotations": {"a": "b"}})");
  ASSERT_EQ(hooks.prestart.size(), 1u);
  EXPECT_EQ(hooks.prestart[0].args, (std::vector<std::string>{"x", "1"}));
  EXPECT_EQ(hooks.prestart[0].timeout_seconds, 5);
  EXPECT_EQ(hooks.poststop.size(), 1u);
  EXPECT_EQ(hooks.annotations.at("a"), "b");
  try {
    ParseOciHooks(R"({"hooks": {"poststart": [{"path": "relative"}]}})");
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_STREQ(e.what(), "spec: hooks.poststart[0].path must be an absolute path");
  }
  try {
    ParseOciHooks(R"({"hooks": {"prestart": [{"path": "/x", "timeout": 0}]}})");
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_STREQ(e.what(), "spec: hooks.prestart[0].timeout must be a positive number of seconds");
  }
}

}  // namespace
}  // namespace uvmshim::agent
