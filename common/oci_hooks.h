// The OCI runtime-spec "hooks" object, parsed once for both places that run
// hooks: the host runtime (host-shim/runc/host_hooks.*, every isolation) and
// the agent in process isolation (guest-agent/hooks.*). Each keeps its own
// way of running them (fork+pidfd with captured output on the host,
// posix_spawn through the agent's reaper); what they share is the field
// checks, the exec arguments and how a hook's end is described.
// POSIX only (common/CMakeLists.txt builds it outside Windows).
#pragma once

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace uvmshim {

// runc's default when a hook gives no timeout.
inline constexpr std::chrono::seconds kDefaultOciHookTimeout{120};

struct OciHook {
  std::string path;               // absolute, checked
  std::vector<std::string> args;  // argv as given (args[0] = argv[0]); [path] when empty
  std::vector<std::string> env;   // the whole environment (none is inherited)
  std::optional<int> timeout_seconds;

  std::chrono::seconds timeout() const {
    return timeout_seconds ? std::chrono::seconds(*timeout_seconds) : kDefaultOciHookTimeout;
  }
};

// The stages a runtime runs itself; createContainer and startContainer run
// inside the container and are not parsed here.
struct OciHookStages {
  std::vector<OciHook> prestart, create_runtime, poststart, poststop;
  bool empty() const { return prestart.empty() && create_runtime.empty() && poststart.empty() && poststop.empty(); }
};

// The spec keys of the stages above, in the order a runtime runs them.
inline constexpr const char* kOciHookStageKeys[] = {"prestart", "createRuntime", "poststart", "poststop"};

// Parses one stage's list; `field` is its name in the spec ("hooks.prestart").
// null is an empty list. Throws uvmshim::Error (kInvalidArgument) naming the
// field: "hooks.prestart[0].path must be an absolute path".
std::vector<OciHook> ParseOciHookList(const nlohmann::json& list, const std::string& field);

// Parses the spec's "hooks" value (null: no hooks); keys other than the four
// stages are left to the caller. Throws as ParseOciHookList.
OciHookStages ParseOciHookStages(const nlohmann::json& hooks);

// argv and envp for execve/posix_spawn, owning their strings. Build it before
// fork(): the child only reads the arrays.
class HookExecArgs {
 public:
  explicit HookExecArgs(const OciHook& hook);
  HookExecArgs(const HookExecArgs&) = delete;  // argv_/envp_ point into args_/env_
  HookExecArgs& operator=(const HookExecArgs&) = delete;

  char* const* argv() const { return argv_.data(); }
  char* const* envp() const { return envp_.data(); }

 private:
  std::vector<std::string> args_, env_;
  std::vector<char*> argv_, envp_;
};

// "exit status 1", "killed by signal 9", or the raw wait status.
std::string DescribeWaitStatus(int wait_status);

}  // namespace uvmshim
