#include "runc/host_hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/unique_fd.h"

namespace uvmshim::runc {

using nlohmann::json;

namespace {

[[noreturn]] void Refuse(const std::string& field, const std::string& why) {
  throw std::invalid_argument(fmt::format("{} {}", field, why));
}

std::vector<std::string> StringsOf(const json& hook, const char* key, const std::string& where) {
  std::vector<std::string> out;
  if (!hook.contains(key) || hook[key].is_null()) return out;
  const std::string field = where + "." + key;
  if (!hook[key].is_array()) Refuse(field, "must be an array of strings");
  for (const auto& item : hook[key]) {
    if (!item.is_string()) Refuse(field, "must be an array of strings");
    out.push_back(item.get<std::string>());
    if (out.back().find('\0') != std::string::npos) Refuse(field, "must not contain a NUL character");
  }
  return out;
}

std::vector<HostHook> TakeStage(json& hooks, const char* stage) {
  std::vector<HostHook> out;
  if (!hooks.contains(stage)) return out;
  const std::string where = std::string("hooks.") + stage;
  const json list = std::move(hooks[stage]);
  hooks.erase(stage);
  if (list.is_null()) return out;
  if (!list.is_array()) Refuse(where, "must be an array");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& item = list[i];
    const std::string w = fmt::format("{}[{}]", where, i);
    if (!item.is_object()) Refuse(w, "must be an object");
    HostHook hook;
    if (!item.contains("path") || !item["path"].is_string() || !item["path"].get<std::string>().starts_with('/'))
      Refuse(w + ".path", "must be an absolute path");
    hook.path = item["path"].get<std::string>();
    if (hook.path.find('\0') != std::string::npos) Refuse(w + ".path", "must not contain a NUL character");
    hook.args = StringsOf(item, "args", w);
    hook.env = StringsOf(item, "env", w);
    if (item.contains("timeout") && !item["timeout"].is_null()) {
      if (!item["timeout"].is_number_integer() || item["timeout"].get<std::int64_t>() <= 0 ||
          item["timeout"].get<std::int64_t>() > 86400)
        Refuse(w + ".timeout", "must be a positive number of seconds");
      hook.timeout_seconds = item["timeout"].get<int>();
    }
    out.push_back(std::move(hook));
  }
  return out;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("wait status {}", status);
}

// Forks and execs one hook. Everything the child touches is prepared here:
// after fork() only async-signal-safe calls (the monitor has threads).
void RunOne(const HostHook& hook, const std::string& name, const std::string& state_json, int netns_fd) {
  int in[2], out[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
    throw std::runtime_error(fmt::format("{}: socketpair: {}", name, std::strerror(errno)));
  UniqueFd stdin_ours(in[0]), stdin_theirs(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("{}: pipe: {}", name, std::strerror(errno)));
  UniqueFd output_ours(out[0]), output_theirs(out[1]);

  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = hook.env;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("{}: fork: {}", name, std::strerror(errno)));
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the monitor blocks the signals it forwards
    ::signal(SIGPIPE, SIG_DFL);
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(126);
    if (::dup2(stdin_theirs.get(), 0) < 0 || ::dup2(output_theirs.get(), 1) < 0 || ::dup2(output_theirs.get(), 2) < 0)
      ::_exit(126);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);  // nothing of the monitor's leaks into the hook
    ::execve(hook.path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  stdin_theirs.reset();
  output_theirs.reset();
  // The state is small (far below a socket buffer): one send, then EOF.
  [[maybe_unused]] auto sent = ::send(stdin_ours.get(), state_json.data(), state_json.size(), MSG_NOSIGNAL);
  stdin_ours.reset();

  UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  const auto timeout = hook.timeout_seconds ? std::chrono::seconds(*hook.timeout_seconds) : kDefaultHostHookTimeout;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string output;
  bool timed_out = false;
  // Output until the hook exits (a daemon it leaves behind may keep the pipe open).
  while (exited) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{exited.get(), POLLIN, 0}, {output_ours ? output_ours.get() : -1, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) {
      char buffer[4096];
      const ssize_t n = ::read(output_ours.get(), buffer, sizeof buffer);
      if (n > 0 && output.size() < 64 * 1024) output.append(buffer, static_cast<std::size_t>(n));
      if (n == 0) output_ours.reset();
    }
    if (fds[0].revents) break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output_ours) {  // what it wrote just before it exited
    ::fcntl(output_ours.get(), F_SETFL, O_NONBLOCK);
    char buffer[4096];
    for (ssize_t n; output.size() < 64 * 1024 && (n = ::read(output_ours.get(), buffer, sizeof buffer)) > 0;)
      output.append(buffer, static_cast<std::size_t>(n));
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  const std::string said = output.empty() ? "" : ": " + output;
  if (timed_out) throw std::runtime_error(fmt::format("{}: timed out after {} s{}", name, timeout.count(), said));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && output.empty())
    throw std::runtime_error(fmt::format("{}: cannot be executed", name));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(fmt::format("{}: {}{}", name, DescribeWaitStatus(status), said));
}

}  // namespace

HostHooks TakeHostHooks(json& spec) {
  HostHooks hooks;
  if (!spec.contains("hooks") || spec["hooks"].is_null()) return hooks;
  if (!spec["hooks"].is_object()) Refuse("hooks", "must be an object");
  json& stages = spec["hooks"];
  hooks.prestart = TakeStage(stages, "prestart");
  hooks.create_runtime = TakeStage(stages, "createRuntime");
  hooks.poststart = TakeStage(stages, "poststart");
  hooks.poststop = TakeStage(stages, "poststop");
  if (stages.empty()) spec.erase("hooks");
  return hooks;
}

std::string HookStateJson(const json& spec, const std::string& id, std::string_view status, pid_t pid,
                          const std::string& bundle) {
  json state = {{"ociVersion", spec.value("ociVersion", std::string("1.0.2"))},
                {"id", id},
                {"status", status},
                {"pid", pid},
                {"bundle", bundle}};
  if (spec.contains("annotations") && spec["annotations"].is_object()) state["annotations"] = spec["annotations"];
  return state.dump();
}

void RunHostHooks(const std::vector<HostHook>& hooks, std::string_view stage, const std::string& state_json,
                  int netns_fd) {
  for (std::size_t i = 0; i < hooks.size(); ++i)
    RunOne(hooks[i], fmt::format("hooks.{}[{}] ({})", stage, i, hooks[i].path), state_json, netns_fd);
}

}  // namespace uvmshim::runc
