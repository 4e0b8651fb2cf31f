// The spec field policy through a real agent (process isolation): a refused
// field fails CreateContainer with an error naming it and leaves no process,
// mount or cgroup behind; honoured fields take effect; hooks run on the host.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "guest-agent/spec_policy.h"
#include "tests/agent/integration_fixture.h"

namespace uvmshim::agent::testing {
namespace {

using json = nlohmann::json;
using Policy = AgentIntegrationTest;

grpc::Status Create(AgentProcess& agent, const std::string& id, const json& spec) {
  grpc::ClientContext context;
  pb::CreateContainerRequest request;
  request.set_container_id(id);
  request.set_spec_json(spec.dump());
  request.set_rootfs_path(BusyboxRootfs());
  pb::CreateContainerResponse response;
  return agent.stub().CreateContainer(&context, request, &response);
}

json Spec(std::vector<std::string> args) {
  SpecOptions options;
  options.args = std::move(args);
  return json::parse(MakeSpec(options));
}

// Every cgroup hierarchy mounted on this machine.
std::vector<std::string> CgroupMounts() {
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream head(line.substr(0, dash)), tail(line.substr(dash + 3));
    std::string id, parent, devno, root, mountpoint, fstype;
    head >> id >> parent >> devno >> root >> mountpoint;
    tail >> fstype;
    if (fstype == "cgroup" || fstype == "cgroup2") mounts.push_back(mountpoint);
  }
  return mounts;
}

void ExpectNoCgroupOf(AgentProcess& agent, const std::string& id) {
  for (const auto& mount : CgroupMounts()) {
    struct stat st {};
    std::string dir = mount + "/" + agent.cgroup_parent() + "/" + id;
    EXPECT_NE(stat(dir.c_str(), &st), 0) << dir << " was left behind";
  }
}

// Sets a dotted path (no arrays) in spec.
void Set(json& spec, const std::string& path, const json& value) {
  json* node = &spec;
  std::stringstream parts(path);
  std::string part;
  std::vector<std::string> names;
  while (std::getline(parts, part, '.')) names.push_back(part);
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    if (!node->contains(names[i]) || !(*node)[names[i]].is_object()) (*node)[names[i]] = json::object();
    node = &(*node)[names[i]];
  }
  (*node)[names.back()] = value;
}

TEST_F(Policy, EveryRefusedFieldFailsTheCreateByNameAndLeavesNothing) {
  int n = 0;
  for (const auto& field : SpecFieldTable()) {
    if (field.verdict != FieldVerdict::kRefused || field.path.find("[]") != std::string_view::npos) continue;
    json spec = Spec({"true"});
    std::string path(field.path);
    Set(spec, path, json{{"asks", 1}});
    if (path == "linux.personality.flags") spec["linux"]["personality"]["domain"] = "LINUX";  // required
    std::string id = "refused" + std::to_string(n++);
    grpc::Status status = Create(agent(), id, spec);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path << ": " << status.error_message();
    EXPECT_NE(status.error_message().find("spec: " + path + " is not supported"), std::string::npos)
        << path << ": " << status.error_message();
    ExpectNoCgroupOf(agent(), id);
  }
  EXPECT_GE(n, 25);
  EXPECT_TRUE(agent().Children().empty());
}

TEST_F(Policy, ConditionalFieldsRefusedOnThisMachineByName) {
  struct {
    const char* path;
    json value;
    const char* error;
  } cases[] = {
      {"linux.sysctl", {{"kernel.panic", "0"}}, "spec: linux.sysctl.kernel.panic is not a namespaced sysctl"},
      {"linux.resources.memory", {{"limit", 67108864}, {"swap", 134217728}},
       "spec: linux.resources.memory.swap must be -1 or equal to memory.limit"},
      {"linux.personality", {{"domain", "PER_SVR4"}}, "spec: linux.personality.domain must be LINUX or LINUX32"},
      {"linux.namespaces", json::array({{{"type", "mount"}}, {{"type", "user"}}}), "\"user\" namespaces are not supported"},
  };
  for (const auto& c : cases) {
    json spec = Spec({"true"});
    Set(spec, c.path, c.value);
    grpc::Status status = Create(agent(), "cond", spec);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.path << ": " << status.error_message();
    EXPECT_NE(status.error_message().find(c.error), std::string::npos) << status.error_message();
    ExpectNoCgroupOf(agent(), "cond");
  }
  if (access("/sys/module/apparmor/parameters/enabled", F_OK) != 0) {
    json spec = Spec({"true"});
    spec["process"]["apparmorProfile"] = "docker-default";
    grpc::Status status = Create(agent(), "aa", spec);
    EXPECT_NE(status.error_message().find("spec: process.apparmorProfile asks for AppArmor profile"), std::string::npos)
        << status.error_message();
  }
}

TEST_F(Policy, HonouredFieldsTakeEffect) {
  SpecOptions options;
  options.args = {"sh", "-c", "uname -m; cat /proc/sys/kernel/domainname /proc/sys/kernel/msgmax; ionice -p $$"};
  options.hostname = "box";
  // RunContainer takes options; add the fields through a raw spec instead.
  json spec = json::parse(MakeSpec(options));
  spec["linux"]["personality"] = {{"domain", "LINUX32"}};
  spec["domainname"] = "example.test";
  spec["linux"]["sysctl"] = {{"kernel.msgmax", "4242"}};
  spec["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_BE"}, {"priority", 6}};
  ASSERT_TRUE(Create(agent(), "honoured", spec).ok());
  OutputReader out(stub(), "honoured", "", pb::STDOUT);
  ASSERT_TRUE(out.WaitAttached());
  {
    grpc::ClientContext context;
    pb::StartContainerRequest request;
    request.set_container_id("honoured");
    pb::StartContainerResponse response;
    ASSERT_TRUE(stub().StartContainer(&context, request, &response).ok());
  }
  pb::WaitProcessResponse waited;
  ASSERT_TRUE(Wait(agent(), "honoured", "", &waited).ok());
  EXPECT_EQ(waited.exit_status(), 0u);
  EXPECT_EQ(out.Finish(), "i686\nexample.test\n4242\nbest-effort: prio 6\n");
  DeleteContainer(agent(), "honoured");
}

TEST_F(Policy, ExecsGetTheContainersPersonality) {
  json spec = Spec({"sleep", "1000"});
  spec["linux"]["personality"] = {{"domain", "LINUX32"}};
  ASSERT_TRUE(Create(agent(), "pers", spec).ok());
  {
    grpc::ClientContext context;
    pb::StartContainerRequest request;
    request.set_container_id("pers");
    pb::StartContainerResponse response;
    ASSERT_TRUE(stub().StartContainer(&context, request, &response).ok());
  }
  EXPECT_EQ(RunExec(agent(), "pers", "x1", {"uname", "-m"}).out, "i686\n");
  DeleteContainer(agent(), "pers");
}

TEST_F(Policy, HooksRunOnTheHostWithTheState) {
  json spec = Spec({"true"});
  std::string dir = agent().dir();
  auto hook = [&](const std::string& file) {
    return json{{"path", "/bin/sh"}, {"args", {"sh", "-c", "exec /bin/cat > " + dir + "/" + file}}};
  };
  spec["hooks"] = {{"prestart", {hook("prestart.json")}}, {"createRuntime", {hook("createRuntime.json")}},
                   {"poststart", {hook("poststart.json")}}, {"poststop", {hook("poststop.json")}}};
  spec["annotations"] = {{"org.example", "yes"}};
  ASSERT_TRUE(Create(agent(), "hooked", spec).ok());
  auto read = [&](const std::string& file) {
    std::ifstream in(dir + "/" + file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str().empty() ? json() : json::parse(text.str());
  };
  json prestart = read("prestart.json");
  EXPECT_EQ(prestart.value("status", ""), "created");
  EXPECT_EQ(prestart.value("id", ""), "hooked");
  EXPECT_GT(prestart.value("pid", 0), 0);
  EXPECT_EQ(prestart["annotations"].value("org.example", ""), "yes");
  EXPECT_EQ(read("createRuntime.json").value("status", ""), "created");
  {
    grpc::ClientContext context;
    pb::StartContainerRequest request;
    request.set_container_id("hooked");
    pb::StartContainerResponse response;
    ASSERT_TRUE(stub().StartContainer(&context, request, &response).ok());
  }
  EXPECT_EQ(read("poststart.json").value("status", ""), "running");
  pb::WaitProcessResponse waited;
  ASSERT_TRUE(Wait(agent(), "hooked", "", &waited).ok());
  DeleteContainer(agent(), "hooked");
  EXPECT_EQ(read("poststop.json").value("status", ""), "stopped");
}

TEST_F(Policy, FailingPrestartHookFailsTheCreateAndLeavesNothing) {
  json spec = Spec({"sleep", "100"});
  spec["hooks"] = {{"prestart", {{{"path", "/bin/false"}}}}};
  grpc::Status status = Create(agent(), "badhook", spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_NE(status.error_message().find("hooks.prestart[0] (/bin/false): exit status 1"), std::string::npos)
      << status.error_message();
  EXPECT_TRUE(agent().WaitNoChildren(std::chrono::seconds(5)));
  ExpectNoCgroupOf(agent(), "badhook");
  // The id is free again.
  spec["hooks"] = json::object();
  EXPECT_TRUE(Create(agent(), "badhook", spec).ok());
  DeleteContainer(agent(), "badhook");
}

TEST_F(Policy, HookTimeoutKillsTheHook) {
  json spec = Spec({"true"});
  spec["hooks"] = {{"createRuntime", {{{"path", "/bin/sleep"}, {"args", {"sleep", "100"}}, {"timeout", 1}}}}};
  grpc::Status status = Create(agent(), "slowhook", spec);
  EXPECT_NE(status.error_message().find("hooks.createRuntime[0] (/bin/sleep): timed out after 1 s"), std::string::npos)
      << status.error_message();
  EXPECT_TRUE(agent().WaitNoChildren(std::chrono::seconds(5)));
  ExpectNoCgroupOf(agent(), "slowhook");
}

// The specs engines write (tests/fixtures/specs), made runnable here: the
// busybox rootfs (read-only: it is shared), no bind mounts of the engines'
// files, fresh namespaces instead of a pod sandbox's, Docker's libnetwork
// hook replaced by /bin/true, negative oomScoreAdj raised to 0. Everything else (limits, capabilities, masked
// paths, Docker's cgroup mount, hugepage limits, swap = limit) is as written.
TEST_F(Policy, EngineSpecsRunInProcessIsolation) {
  for (const char* name : {"containerd-1.6-ctr-default.json", "cri-1.6-besteffort.json", "cri-1.6-guaranteed.json",
                           "docker-20.10-run.json"}) {
    std::ifstream in(std::string(UVMSHIM_SPEC_FIXTURES) + "/" + name);
    ASSERT_TRUE(in.good()) << name;
    json spec = json::parse(in);
    spec["root"] = {{"path", BusyboxRootfs()}, {"readonly", true}};
    spec["process"]["args"] = {"sh", "-c", "echo ok"};
    json mounts = json::array();
    for (const auto& m : spec["mounts"])
      if (m.value("type", "") != "bind") mounts.push_back(m);
    spec["mounts"] = mounts;
    for (auto& ns : spec["linux"]["namespaces"]) ns.erase("path");
    // Root here lacks CAP_SYS_RESOURCE: lower scores fail (as under runc);
    // containerd's restrict_oom_score_adj raises them the same way.
    if (spec["process"].value("oomScoreAdj", 0) < 0) spec["process"]["oomScoreAdj"] = 0;
    if (spec.contains("hooks"))
      for (auto& hook : spec["hooks"]["prestart"]) hook = {{"path", "/bin/true"}};
    std::string id = "engine" + std::to_string(std::hash<std::string>()(name) % 1000);
    grpc::Status status = Create(agent(), id, spec);
    ASSERT_TRUE(status.ok()) << name << ": " << status.error_message();
    OutputReader out(stub(), id, "", pb::STDOUT);
    ASSERT_TRUE(out.WaitAttached());
    {
      grpc::ClientContext context;
      pb::StartContainerRequest request;
      request.set_container_id(id);
      pb::StartContainerResponse response;
      ASSERT_TRUE(stub().StartContainer(&context, request, &response).ok()) << name;
    }
    pb::WaitProcessResponse waited;
    ASSERT_TRUE(Wait(agent(), id, "", &waited).ok());
    EXPECT_EQ(waited.exit_status(), 0u) << name;
    EXPECT_EQ(out.Finish(), "ok\n") << name;
    DeleteContainer(agent(), id);
    ExpectNoCgroupOf(agent(), id);
  }
}

TEST(PolicyNoCgroups, LimitsWithoutCgroupsAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  AgentProcess agent({"--cgroup-parent", ""});
  json spec = Spec({"true"});
  spec["linux"]["resources"] = {{"memory", {{"limit", 67108864}}}};
  grpc::Status status = Create(agent, "limited", spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_NE(status.error_message().find("spec: linux.resources cannot be applied: the agent runs without cgroups"),
            std::string::npos)
      << status.error_message();
  EXPECT_TRUE(agent.WaitNoChildren(std::chrono::seconds(5)));
}

}  // namespace
}  // namespace uvmshim::agent::testing
