#include "guest-agent/hooks.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "guest-agent/oci_spec.h"
#include "guest-agent/reaper.h"

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;

// The exit of one hook, delivered by the reaper thread.
struct HookExit {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<int> wait_status;
};

void RunOne(const OciHook& hook, const std::string& name, const std::string& state_json, Reaper& reaper) {
  int fds[2];
  // A socket rather than a pipe: send(MSG_NOSIGNAL) survives a hook that
  // never reads its stdin.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::runtime_error(name + ": socketpair: " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 0);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // nothing of the agent's leaks
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);  // the agent blocks SIGCHLD
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);

  const HookExecArgs exec_args(hook);

  auto exit = std::make_shared<HookExit>();
  pid_t pid = 0;
  int error;
  {
    auto token = reaper.BeginSpawn();
    error = posix_spawn(&pid, hook.path.c_str(), &actions, &attributes, exec_args.argv(), exec_args.envp());
    if (error == 0)
      reaper.Watch(pid, [exit](const ChildExit& child) {
        std::lock_guard lock(exit->mu);
        exit->wait_status = child.wait_status;
        exit->cv.notify_all();
      }, token);
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(fds[1]);
  if (error != 0) {
    close(fds[0]);
    throw std::runtime_error(name + ": " + std::strerror(error));
  }
  // The state is small (far below a socket buffer): one send, then EOF.
  [[maybe_unused]] ssize_t sent = send(fds[0], state_json.data(), state_json.size(), MSG_NOSIGNAL);
  close(fds[0]);

  const auto timeout = hook.timeout();
  std::unique_lock lock(exit->mu);
  if (!exit->cv.wait_for(lock, timeout, [&] { return exit->wait_status.has_value(); })) {
    lock.unlock();
    {
      auto pin = reaper.PinPids();
      bool reaped;
      {
        std::lock_guard check(exit->mu);
        reaped = exit->wait_status.has_value();
      }
      if (!reaped) kill(pid, SIGKILL);
    }
    lock.lock();
    exit->cv.wait(lock, [&] { return exit->wait_status.has_value(); });
    throw std::runtime_error(name + ": timed out after " + std::to_string(timeout.count()) + " s");
  }
  int status = *exit->wait_status;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(name + ": " + DescribeWaitStatus(status));
}

}  // namespace

OciHooks ParseOciHooks(std::string_view spec_json) {
  json doc;
  try {
    doc = json::parse(spec_json.begin(), spec_json.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 9E999
    throw SpecError(std::string("spec: invalid JSON: ") + e.what());
  }
  OciHooks hooks;
  try {
    static_cast<OciHookStages&>(hooks) = ParseOciHookStages(doc.contains("hooks") ? doc["hooks"] : json());
  } catch (const Error& e) {
    throw SpecError("spec: " + std::string(e.what()));
  }
  if (!hooks.empty() && doc.contains("annotations") && doc["annotations"].is_object())
    for (const auto& [key, value] : doc["annotations"].items())
      if (value.is_string()) hooks.annotations[key] = value.get<std::string>();
  return hooks;
}

std::string HookState::ToJson() const {
  json state = {{"ociVersion", "1.0.2"}, {"id", id}, {"status", status}, {"bundle", bundle}};
  if (pid > 0) state["pid"] = pid;
  if (annotations && !annotations->empty()) state["annotations"] = *annotations;
  return state.dump();
}

void RunHooks(const std::vector<OciHook>& hooks, std::string_view stage, const HookState& state, Reaper& reaper) {
  std::string state_json = state.ToJson();
  for (size_t i = 0; i < hooks.size(); ++i)
    RunOne(hooks[i], "hooks." + std::string(stage) + "[" + std::to_string(i) + "] (" + hooks[i].path + ")",
           state_json, reaper);
}

}  // namespace uvmshim::agent
