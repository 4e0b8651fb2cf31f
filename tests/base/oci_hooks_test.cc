// The shared OCI hooks parser (common/oci_hooks.h): every field it checks is
// named in its error, and the exec arguments follow runc (argv[0] = path when
// args is empty, the environment is exactly env).
#include "common/oci_hooks.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace uvmshim {
namespace {

using nlohmann::json;

std::string RefusalOf(const json& hooks) {
  try {
    ParseOciHookStages(hooks);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  return "";
}

TEST(OciHooks, ParsesEveryStageAndLeavesOtherKeys) {
  const auto stages = ParseOciHookStages(json::parse(R"({
    "prestart": [{"path": "/bin/a", "args": ["a", "1"], "env": ["X=1"], "timeout": 5}],
    "createRuntime": [{"path": "/bin/b"}], "poststart": null,
    "poststop": [{"path": "/bin/c"}, {"path": "/bin/d"}],
    "createContainer": [{"path": "in-the-container"}]})"));
  ASSERT_EQ(stages.prestart.size(), 1u);
  EXPECT_EQ(stages.prestart[0].path, "/bin/a");
  EXPECT_EQ(stages.prestart[0].args, (std::vector<std::string>{"a", "1"}));
  EXPECT_EQ(stages.prestart[0].env, (std::vector<std::string>{"X=1"}));
  EXPECT_EQ(stages.prestart[0].timeout(), std::chrono::seconds(5));
  ASSERT_EQ(stages.create_runtime.size(), 1u);
  EXPECT_EQ(stages.create_runtime[0].timeout(), kDefaultOciHookTimeout);
  EXPECT_TRUE(stages.poststart.empty());
  EXPECT_EQ(stages.poststop.size(), 2u);
  EXPECT_FALSE(stages.empty());
  EXPECT_TRUE(ParseOciHookStages(json()).empty());
}

TEST(OciHooks, NamesTheBadField) {
  EXPECT_EQ(RefusalOf(json::array()), "hooks must be an object");
  EXPECT_EQ(RefusalOf(json::parse(R"({"prestart": {}})")), "hooks.prestart must be an array");
  EXPECT_EQ(RefusalOf(json::parse(R"({"poststop": [5]})")), "hooks.poststop[0] must be an object");
  EXPECT_EQ(RefusalOf(json::parse(R"({"poststart": [{"path": "relative"}]})")),
            "hooks.poststart[0].path must be an absolute path");
  EXPECT_EQ(RefusalOf(json::parse(R"({"prestart": [{"path": ""}]})")), "hooks.prestart[0].path must be an absolute path");
  EXPECT_EQ(RefusalOf(json::parse(R"({"prestart": [{"args": ["x"]}]})")), "hooks.prestart[0].path must be an absolute path");
  EXPECT_EQ(RefusalOf(json{{"createRuntime", {{{"path", "/bin/x"}}, {{"path", std::string("/a\0b", 4)}}}}}),
            "hooks.createRuntime[1].path must not contain a NUL character");
  EXPECT_EQ(RefusalOf(json::parse(R"({"prestart": [{"path": "/x", "args": "x"}]})")),
            "hooks.prestart[0].args must be an array of strings");
  EXPECT_EQ(RefusalOf(json::parse(R"({"prestart": [{"path": "/x", "env": [1]}]})")),
            "hooks.prestart[0].env must be an array of strings");
  for (const char* timeout : {"0", "-1", "86401", "1.5", "\"5\""})
    EXPECT_EQ(RefusalOf(json::parse(std::string(R"({"prestart": [{"path": "/x", "timeout": )") + timeout + "}]}")),
              "hooks.prestart[0].timeout must be a positive number of seconds")
        << timeout;
}

TEST(OciHooks, ExecArgsFollowRunc) {
  OciHook bare{"/bin/hook", {}, {}, std::nullopt};
  HookExecArgs bare_args(bare);
  EXPECT_STREQ(bare_args.argv()[0], "/bin/hook");
  EXPECT_EQ(bare_args.argv()[1], nullptr);
  EXPECT_EQ(bare_args.envp()[0], nullptr);  // nothing of the caller's environment

  OciHook full{"/bin/hook", {"name", "--flag"}, {"A=1", "B=2"}, 3};
  HookExecArgs full_args(full);
  EXPECT_STREQ(full_args.argv()[0], "name");
  EXPECT_STREQ(full_args.argv()[1], "--flag");
  EXPECT_EQ(full_args.argv()[2], nullptr);
  EXPECT_STREQ(full_args.envp()[1], "B=2");
  EXPECT_EQ(full_args.envp()[2], nullptr);
}

TEST(OciHooks, DescribesHowAHookEnded) {
  EXPECT_EQ(DescribeWaitStatus(W_EXITCODE(3, 0)), "exit status 3");
  EXPECT_EQ(DescribeWaitStatus(W_EXITCODE(0, SIGKILL)), "killed by signal 9");
}

}  // namespace
}  // namespace uvmshim
