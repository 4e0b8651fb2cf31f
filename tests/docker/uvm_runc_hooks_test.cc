// uvm-runc's host hooks and the network namespace it makes for them, without
// an engine: fields are checked by name, a hook reads the state on stdin, its
// failure names it (with its output), its timeout kills it, and a prestart
// hook sees /proc/<state pid>/ns/net as the container's new namespace, which
// process isolation then names in the spec for the agent to join.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/error.h"
#include "e2e_support.h"
#include "runc/container_network.h"
#include "runc/host_hooks.h"

namespace uvmshim::runc {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string HookError(json spec) {
  try {
    TakeHostHooks(spec);
  } catch (const Error& e) {
    return e.code() == ErrorCode::kInvalidArgument ? e.what() : std::string("(not kInvalidArgument) ") + e.what();
  }
  return "(no error)";
}

TEST(UvmRuncHooks, TakesHostHooksOutOfTheSpecAndNamesBadFields) {
  json spec = {{"hooks",
                {{"prestart", {{{"path", "/bin/true"}, {"args", {"true", "x"}}, {"env", {"A=1"}}, {"timeout", 5}}}},
                 {"poststop", {{{"path", "/bin/true"}}}},
                 {"createContainer", {{{"path", "/bin/true"}}}}}}};
  auto hooks = TakeHostHooks(spec);
  ASSERT_EQ(hooks.prestart.size(), 1u);
  EXPECT_EQ(hooks.prestart[0].args, (std::vector<std::string>{"true", "x"}));
  EXPECT_EQ(hooks.prestart[0].timeout_seconds, 5);
  EXPECT_EQ(hooks.poststop.size(), 1u);
  EXPECT_TRUE(hooks.BeforeStart());
  // What runs inside the container stays, for the agent to refuse by name.
  EXPECT_EQ(spec, json({{"hooks", {{"createContainer", {{{"path", "/bin/true"}}}}}}}));

  EXPECT_EQ(HookError({{"hooks", {{"prestart", {{{"path", "true"}}}}}}}),
            "hooks.prestart[0].path must be an absolute path");
  EXPECT_EQ(HookError({{"hooks", {{"createRuntime", {{{"path", "/x"}, {"timeout", 0}}}}}}}),
            "hooks.createRuntime[0].timeout must be a positive number of seconds");
  EXPECT_EQ(HookError({{"hooks", {{"poststart", {{{"path", "/x"}, {"args", {1}}}}}}}}),
            "hooks.poststart[0].args must be an array of strings");
  EXPECT_EQ(HookError({{"hooks", {{"prestart", "x"}}}}), "hooks.prestart must be an array");
}

class HookRun : public ::testing::Test {
 protected:
  e2e::TempDir dir_{"uvm-runc-hooks"};
  fs::path out() const { return dir_.path() / "out"; }
  std::string Read(const fs::path& file) {
    std::ifstream in(file);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  HostHook Shell(const std::string& script) {
    return {"/bin/sh", {"sh", "-c", script}, {"PATH=/usr/bin:/bin", "OUT=" + out().string()}, std::nullopt};
  }
};

TEST_F(HookRun, StateOnStdinArgsAndEnvironment) {
  json spec = {{"ociVersion", "1.0.2"}, {"annotations", {{"a", "b"}}}};
  const std::string state = HookStateJson(spec, "c1", "creating", 4242, "/bundle");
  RunHostHooks({Shell("cat > \"$OUT\"; echo >> \"$OUT\"; echo \"$0 $A\" >> \"$OUT\"")}, "prestart", state);
  const std::string written = Read(out());
  const auto lines = written.find('\n');
  ASSERT_NE(lines, std::string::npos) << written;
  const json got = json::parse(written.substr(0, lines));
  EXPECT_EQ(got, json({{"ociVersion", "1.0.2"}, {"id", "c1"}, {"status", "creating"}, {"pid", 4242},
                       {"bundle", "/bundle"}, {"annotations", {{"a", "b"}}}}));
  EXPECT_EQ(written.substr(lines + 1), "sh \n");  // the hook's env only: no A from ours
}

TEST_F(HookRun, FailureNamesTheHookWithItsOutputAndStopsTheStage) {
  try {
    RunHostHooks({Shell("echo not today >&2; exit 3"), Shell("touch \"$OUT\"")}, "createRuntime", "{}");
    FAIL() << "a failing hook must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "hooks.createRuntime[0] (/bin/sh): exit status 3: not today");
  }
  EXPECT_FALSE(fs::exists(out())) << "the next hook ran after a failure";
  try {
    RunHostHooks({{"/nonexistent/hook", {}, {}, std::nullopt}}, "prestart", "{}");
    FAIL() << "a missing hook must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "hooks.prestart[0] (/nonexistent/hook): cannot be executed");
  }
}

TEST_F(HookRun, TimeoutKillsTheHook) {
  HostHook slow = Shell("echo $$ > \"$OUT\"; exec sleep 100");
  slow.timeout_seconds = 1;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(RunHostHooks({slow}, "prestart", "{}"), std::runtime_error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  const pid_t pid = std::stoi(Read(out()));
  EXPECT_FALSE(e2e::PidAlive(pid)) << "the timed-out hook " << pid << " still runs";
}

// Docker's case: a new network namespace, filled by a prestart hook through
// /proc/<state pid>/ns/net; process isolation then joins it by the monitor's fd.
TEST_F(HookRun, PrestartSeesTheNewNetnsAndProcessIsolationJoinsIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (unshare)";
  const auto before = fs::read_symlink("/proc/thread-self/ns/net");
  json spec = {{"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "network"}}}}}}};
  HostHooks hooks;
  hooks.prestart.push_back(Shell("cat >/dev/null; readlink /proc/" + std::to_string(::getpid()) +
                                 "/ns/net > \"$OUT\"; readlink /proc/self/ns/net >> \"$OUT\""));
  const std::string state = HookStateJson(spec, "c1", "creating", ::getpid(), "/b");
  {
    auto network = ContainerNetwork::Prepare(spec, host::Isolation::kProcess, hooks, state);
    EXPECT_FALSE(network.vm_network());
    EXPECT_EQ(fs::read_symlink("/proc/thread-self/ns/net"), before) << "the caller is back in its namespace";
    const std::string seen = Read(out());
    const auto newline = seen.find('\n');
    ASSERT_NE(newline, std::string::npos) << seen;
    const std::string container_ns = seen.substr(0, newline);
    EXPECT_NE(container_ns, before.string()) << "the hook saw the caller's namespace as the container's";
    EXPECT_EQ(seen.substr(newline + 1), before.string() + "\n") << "a hook runs in the runtime's namespace";
    const std::string path = spec["linux"]["namespaces"][1].value("path", "");
    ASSERT_FALSE(path.empty()) << spec.dump();
    EXPECT_EQ(fs::read_symlink(path).string(), container_ns);
  }
  // No hook: nothing is made, the agent makes the namespace as runc would.
  json plain = {{"linux", {{"namespaces", {{{"type", "network"}}}}}}};
  auto none = ContainerNetwork::Prepare(plain, host::Isolation::kProcess, {}, "{}");
  EXPECT_FALSE(plain["linux"]["namespaces"][0].contains("path"));
}

}  // namespace
}  // namespace uvmshim::runc
