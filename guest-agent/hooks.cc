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

[[noreturn]] void Fail(const std::string& where, const std::string& what) { throw SpecError("spec: " + where + " " + what); }

std::vector<std::string> Strings(const json& hook, const char* key, const std::string& where) {
  std::vector<std::string> out;
  if (!hook.contains(key) || hook[key].is_null()) return out;
  if (!hook[key].is_array()) Fail(where + "." + key, "must be an array of strings");
  for (const auto& item : hook[key]) {
    if (!item.is_string()) Fail(where + "." + key, "must be an array of strings");
    out.push_back(item.get<std::string>());
    if (out.back().find('\0') != std::string::npos) Fail(where + "." + key, "must not contain a NUL character");
  }
  return out;
}

std::vector<OciHook> ParseStage(const json& hooks, const char* stage) {
  std::vector<OciHook> out;
  if (!hooks.contains(stage) || hooks[stage].is_null()) return out;
  std::string where = std::string("hooks.") + stage;
  if (!hooks[stage].is_array()) Fail(where, "must be an array");
  for (size_t i = 0; i < hooks[stage].size(); ++i) {
    const json& item = hooks[stage][i];
    std::string w = where + "[" + std::to_string(i) + "]";
    if (!item.is_object()) Fail(w, "must be an object");
    OciHook hook;
    if (!item.contains("path") || !item["path"].is_string() || item["path"].get<std::string>().empty() ||
        item["path"].get<std::string>().front() != '/')
      Fail(w + ".path", "must be an absolute path");
    hook.path = item["path"].get<std::string>();
    if (hook.path.find('\0') != std::string::npos) Fail(w + ".path", "must not contain a NUL character");
    hook.args = Strings(item, "args", w);
    hook.env = Strings(item, "env", w);
    if (item.contains("timeout") && !item["timeout"].is_null()) {
      if (!item["timeout"].is_number_integer() || item["timeout"].get<int64_t>() <= 0 ||
          item["timeout"].get<int64_t>() > 86400)
        Fail(w + ".timeout", "must be a positive number of seconds");
      hook.timeout_seconds = item["timeout"].get<int>();
    }
    out.push_back(std::move(hook));
  }
  return out;
}

// The exit of one hook, delivered by the reaper thread.
struct HookExit {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<int> wait_status;
};

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

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

  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = hook.env;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  auto exit = std::make_shared<HookExit>();
  pid_t pid = 0;
  int error;
  {
    auto token = reaper.BeginSpawn();
    error = posix_spawn(&pid, hook.path.c_str(), &actions, &attributes, argv.data(), envp.data());
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

  auto timeout = hook.timeout_seconds ? std::chrono::seconds(*hook.timeout_seconds) : kDefaultHookTimeout;
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
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(name + ": " + DescribeStatus(status));
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
  if (doc.contains("hooks") && !doc["hooks"].is_null()) {
    const json& h = doc["hooks"];
    if (!h.is_object()) Fail("hooks", "must be an object");
    hooks.prestart = ParseStage(h, "prestart");
    hooks.create_runtime = ParseStage(h, "createRuntime");
    hooks.poststart = ParseStage(h, "poststart");
    hooks.poststop = ParseStage(h, "poststop");
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
