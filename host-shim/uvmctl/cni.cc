#include "uvmctl/cni.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/unique_fd.h"

extern char** environ;

namespace uvmshim::uvmctl {
namespace fs = std::filesystem;
using nlohmann::json;
using ::uvmshim::UniqueFd;

namespace {

struct PluginRun {
  int exit_code = -1;  // -1: killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
};

std::pair<UniqueFd, UniqueFd> Pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Our environment without CNI_* (a stray CNI_ARGS must not reach the plugin), then `extra`.
std::vector<std::string> PluginEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "CNI_", 4) != 0) env.emplace_back(*e);
  if (std::none_of(env.begin(), env.end(), [](const std::string& v) { return v.starts_with("PATH="); }))
    env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");  // iptables
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// fork/exec with stdin fed from `input` and stdout/stderr collected, all
// through one poll loop (no pipe can fill up and stall the other); SIGKILL by
// pid at the deadline.
PluginRun RunPlugin(const fs::path& binary, const std::vector<std::string>& env, const std::string& input,
                    std::chrono::seconds timeout) {
  auto [in_read, in_write] = Pipe();
  auto [out_read, out_write] = Pipe();
  auto [err_read, err_write] = Pipe();
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string path = binary.string();
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};

  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("fork for {}: {}", path, std::strerror(errno)));
  if (pid == 0) {
    // uvmctl blocks the signals it forwards; a plugin must start with a clean mask.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in_read.get(), 0);
    ::dup2(out_write.get(), 1);
    ::dup2(err_write.get(), 2);
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
  in_read.reset();
  out_write.reset();
  err_write.reset();
  ::fcntl(in_write.get(), F_SETFL, O_NONBLOCK);

  PluginRun run;
  std::size_t written = 0;
  if (input.empty()) in_write.reset();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out_read || err_read) {
    std::vector<pollfd> fds;
    if (in_write) fds.push_back({in_write.get(), POLLOUT, 0});
    if (out_read) fds.push_back({out_read.get(), POLLIN, 0});
    if (err_read) fds.push_back({err_read.get(), POLLIN, 0});
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (in_write && p.fd == in_write.get()) {
        const ssize_t n = ::write(p.fd, input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN) in_write.reset();  // the plugin closed its stdin: EPIPE
        if (written == input.size()) in_write.reset();
        continue;
      }
      char buffer[4096];
      const ssize_t n = ::read(p.fd, buffer, sizeof buffer);
      std::string& sink = p.fd == out_read.get() ? run.out : run.err;
      if (n > 0) {
        sink.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        (p.fd == out_read.get() ? out_read : err_read).reset();
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

struct PluginNotFound : std::runtime_error {
  using std::runtime_error::runtime_error;
};

fs::path FindPlugin(const std::string& type, const std::vector<fs::path>& dirs) {
  if (type.empty() || type.find('/') != std::string::npos || type == "." || type == "..")
    throw std::invalid_argument(fmt::format("CNI plugin type \"{}\": not a plugin name", type));
  std::string looked;
  for (const auto& dir : dirs) {
    const fs::path candidate = dir / type;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    looked += (looked.empty() ? "" : ", ") + dir.string();
  }
  throw PluginNotFound(fmt::format("CNI plugin \"{}\" not found in CNI_PATH ({})", type, looked));
}

std::string JoinPaths(const std::vector<fs::path>& dirs) {
  std::string joined;
  for (const auto& dir : dirs) joined += (joined.empty() ? "" : ":") + dir.string();
  return joined;
}

std::string Trimmed(std::string text, std::size_t limit = 600) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > limit) text = text.substr(0, limit) + "...";
  return text;
}

// The configuration one plugin of a list sees (CNI spec: "Deriving execution configuration").
json PluginConfig(const json& conflist, const json& plugin, const CniRuntime& runtime, const json& previous) {
  json config = plugin;
  config["name"] = conflist["name"];
  config["cniVersion"] = conflist["cniVersion"];
  if (!previous.is_null()) config["prevResult"] = previous;
  if (plugin.contains("capabilities") && plugin["capabilities"].is_object()) {
    json args = json::object();
    for (const auto& [capability, enabled] : plugin["capabilities"].items())
      if (enabled == true && runtime.capability_args.contains(capability))
        args[capability] = runtime.capability_args[capability];
    if (!args.empty()) config["runtimeConfig"] = args;
  }
  return config;
}

}  // namespace

void ValidateConflist(const json& conflist) {
  if (!conflist.is_object()) throw std::invalid_argument("CNI network list: not a JSON object");
  for (const char* key : {"cniVersion", "name"})
    if (!conflist.contains(key) || !conflist[key].is_string() || conflist[key].get<std::string>().empty())
      throw std::invalid_argument(fmt::format("CNI network list: \"{}\" must be a non-empty string", key));
  if (!conflist.contains("plugins") || !conflist["plugins"].is_array() || conflist["plugins"].empty())
    throw std::invalid_argument("CNI network list: \"plugins\" must be a non-empty array");
  for (std::size_t i = 0; i < conflist["plugins"].size(); ++i) {
    const json& plugin = conflist["plugins"][i];
    if (!plugin.is_object() || !plugin.contains("type") || !plugin["type"].is_string())
      throw std::invalid_argument(fmt::format("CNI network list: plugins[{}].type must be a string", i));
  }
}

void CheckPluginsInstalled(const json& conflist, const std::vector<fs::path>& plugin_dirs) {
  ValidateConflist(conflist);
  for (const auto& plugin : conflist["plugins"]) FindPlugin(plugin["type"].get<std::string>(), plugin_dirs);
}

json InvokeCniPlugin(const std::string& command, const json& config, const CniRuntime& runtime) {
  const std::string type = config.value("type", "");
  const fs::path binary = FindPlugin(type, runtime.plugin_dirs);
  const auto env = PluginEnvironment({"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + runtime.container_id,
                                      "CNI_NETNS=" + runtime.netns, "CNI_IFNAME=" + runtime.ifname,
                                      "CNI_PATH=" + JoinPaths(runtime.plugin_dirs)});
  const PluginRun run = RunPlugin(binary, env, config.dump(), runtime.timeout);
  const std::string what = fmt::format("CNI plugin {} {} (network \"{}\", container {})", type, command,
                                       config.value("name", ""), runtime.container_id);
  if (run.timed_out)
    throw std::runtime_error(fmt::format("{}: no answer within {} s (killed)", what, runtime.timeout.count()));
  json output = json::object();
  if (!Trimmed(run.out).empty()) {
    try {
      output = json::parse(run.out);
    } catch (const json::exception&) {
      if (run.exit_code == 0)
        throw std::runtime_error(fmt::format("{}: its output is not JSON: {}", what, Trimmed(run.out)));
    }
  }
  if (run.exit_code != 0) {
    // A failing plugin prints {"code": N, "msg": "...", "details": "..."}.
    std::string message = output.is_object() ? output.value("msg", "") : "";
    if (output.is_object() && output.contains("details") && output["details"].is_string() &&
        !output["details"].get<std::string>().empty())
      message += ": " + output["details"].get<std::string>();
    if (message.empty()) message = Trimmed(run.out.empty() ? run.err : run.out);
    if (run.exit_code < 0) message = "killed by a signal; " + message;
    throw std::runtime_error(fmt::format("{} failed: {}", what, message));
  }
  if (!Trimmed(run.err).empty()) spdlog::debug("{}: stderr: {}", what, Trimmed(run.err));
  return output;
}

json AddNetworkList(const json& conflist, const CniRuntime& runtime) {
  ValidateConflist(conflist);
  json result = nullptr;
  for (const auto& plugin : conflist["plugins"])
    result = InvokeCniPlugin("ADD", PluginConfig(conflist, plugin, runtime, result), runtime);
  return result;
}

void DelNetworkList(const json& conflist, const CniRuntime& runtime, const json& previous) {
  ValidateConflist(conflist);
  std::string failures;
  const json& plugins = conflist["plugins"];
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
    try {
      InvokeCniPlugin("DEL", PluginConfig(conflist, *it, runtime, previous), runtime);
    } catch (const PluginNotFound& e) {
      spdlog::warn("DEL skipped: {}", e.what());
    } catch (const std::exception& e) {
      failures += (failures.empty() ? "" : "; ") + std::string(e.what());
    }
  }
  if (!failures.empty()) throw std::runtime_error(failures);
}

std::string FirstAddress(const json& result) {
  if (!result.is_object() || !result.contains("ips") || !result["ips"].is_array()) return "";
  std::string any;
  for (const auto& ip : result["ips"]) {
    if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string()) continue;
    std::string address = ip["address"].get<std::string>();
    address = address.substr(0, address.find('/'));
    if (address.find(':') == std::string::npos) return address;
    if (any.empty()) any = address;
  }
  return any;
}

}  // namespace uvmshim::uvmctl
