#include "engine_env.h"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace uvmshim::e2e {
namespace fs = std::filesystem;

namespace {

std::string Tail(const std::string& text, int lines) {
  auto pos = text.size();
  for (int n = 0; n <= lines && pos != std::string::npos && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

// Everything still referring to `dir` (containerd, shims, monitors, VMs) is
// SIGKILLed by pid, then every mount below it is detached, deepest first.
void KillAndUnmountUnder(const fs::path& dir) {
  for (int round = 0; round < 3; ++round) {
    auto pids = PidsReferringTo(dir);
    if (pids.empty()) break;
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    WaitFor([&] { return std::none_of(pids.begin(), pids.end(), PidAlive); }, 10s);
  }
  auto mounts = MountsUnder(dir);
  std::sort(mounts.begin(), mounts.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
}

}  // namespace

std::optional<std::string> MissingEngine(const char* binary) {
  if (::geteuid() != 0) return std::string("engine tests need root");
  if (::access(binary, X_OK) != 0)
    return fmt::format("{} is not installed (apt-get install --no-install-recommends docker.io podman)", binary);
  if (!fs::exists(EngineImageArchive()))
    return fmt::format("the engine image archive is not built yet ({})", EngineImageArchive().string());
  return std::nullopt;
}

std::optional<fs::path> UvmRuncBinary() {
  auto path = BuildDir() / "bin" / "uvm-runc";
  if (::access(path.c_str(), X_OK) == 0) return path;
  return std::nullopt;
}

fs::path EngineImageArchive() { return BuildDir() / "tests" / "docker" / "busybox-docker.tar"; }

// ---- DockerEnv -------------------------------------------------------------------

DockerEnv::DockerEnv(const std::map<std::string, OciRuntime>& runtimes) {
  nlohmann::json config = {{"runtimes", nlohmann::json::object()}};
  for (const auto& [name, runtime] : runtimes)
    config["runtimes"][name] = {{"path", runtime.path.string()}, {"runtimeArgs", runtime.args}};
  std::ofstream(dir() / "daemon.json") << config.dump(2);
  fs::create_directories(data_root());
  fs::create_directories(exec_root());
  daemon_.emplace(std::vector<std::string>{
                      kDockerd, "--config-file", (dir() / "daemon.json").string(), "--data-root",
                      data_root().string(), "--exec-root", exec_root().string(), "-H", host(), "--pidfile",
                      (dir() / "docker.pid").string(), "--bridge=none", "--iptables=false", "--ip-masq=false",
                      "--ip6tables=false", "--cgroup-parent", "uvmshim-dk-" + dir().filename().string()},
                  dir() / "dockerd.log");
  const bool up = WaitFor([&] {
    if (daemon_->Exited()) return true;
    return fs::exists(dir() / "docker.sock") && Docker({"version"}, CommandOptions().WithTimeout(10s)).ok();
  }, 60s);
  if (!up || daemon_->Exited()) throw std::runtime_error("dockerd did not come up:\n" + LogTail());
  auto load = Docker({"load", "-i", EngineImageArchive().string()}, CommandOptions().WithTimeout(120s));
  if (!load.ok()) throw std::runtime_error("docker load: " + load.Describe());
}

DockerEnv::~DockerEnv() {
  if (daemon_ && !daemon_->Exited()) {
    auto ids = Docker({"ps", "-aq"}, CommandOptions().WithTimeout(30s));
    std::vector<std::string> rm{"rm", "-f"};
    std::istringstream lines(ids.out);
    for (std::string id; lines >> id;) rm.push_back(id);
    if (rm.size() > 2) Docker(rm, CommandOptions().WithTimeout(240s));
    daemon_->Kill(SIGTERM);  // dockerd stops its own containerd
    if (!daemon_->Wait(30s)) daemon_->Kill(SIGKILL);
    daemon_->Wait(10s);
  }
  daemon_.reset();
  KillAndUnmountUnder(dir());
}

std::optional<pid_t> DockerEnv::DaemonPid() const {
  if (!daemon_) return std::nullopt;
  return daemon_->pid();
}

std::vector<std::string> DockerEnv::DockerArgv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{kDockerCli, "-H", host()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

CommandResult DockerEnv::Docker(const std::vector<std::string>& args, const CommandOptions& options) const {
  CommandOptions with_config = options;
  with_config.env.push_back("DOCKER_CONFIG=" + (dir() / "client").string());  // no ~/.docker
  return RunCommand(DockerArgv(args), with_config);
}

std::string DockerEnv::LogTail(int lines) const {
  std::ifstream in(dir() / "dockerd.log");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return "--- dockerd log tail ---\n" + Tail(text, lines);
}

// ---- PodmanEnv -------------------------------------------------------------------

PodmanEnv::PodmanEnv() {
  fs::create_directories(dir() / "tmp");
  auto load = Podman({"load", "-q", "-i", EngineImageArchive().string()}, {}, CommandOptions().WithTimeout(120s));
  if (!load.ok()) throw std::runtime_error("podman load: " + load.Describe());
  // Podman names an OCI archive's image by its id only ("Loaded image: sha256:...").
  auto at = load.out.find("sha256:");
  if (at == std::string::npos) throw std::runtime_error("podman load printed no image id: " + load.out);
  const std::string image_id = load.out.substr(at + 7, 64);
  auto tag = Podman({"tag", image_id, kPodmanImage});
  if (!tag.ok()) throw std::runtime_error("podman tag: " + tag.Describe());
}

PodmanEnv::~PodmanEnv() {
  Podman({"rm", "-af", "-t", "0"}, {}, CommandOptions().WithTimeout(240s));
  KillAndUnmountUnder(dir());
}

std::vector<std::string> PodmanEnv::PodmanArgv(const std::vector<std::string>& args,
                                               const OciRuntime& runtime) const {
  std::vector<std::string> argv{kPodman,
                                "--root", (dir() / "storage").string(),
                                "--runroot", (dir() / "run").string(),
                                "--tmpdir", (dir() / "tmp").string(),
                                "--cgroup-manager", "cgroupfs",
                                "--events-backend", "file",
                                "--storage-driver", "overlay"};
  if (!runtime.path.empty()) {
    argv.push_back("--runtime");
    argv.push_back(runtime.path.string());
    for (const auto& flag : runtime.args) {
      argv.push_back("--runtime-flag");
      argv.push_back(flag.starts_with("--") ? flag.substr(2) : flag);
    }
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

CommandResult PodmanEnv::Podman(const std::vector<std::string>& args, const OciRuntime& runtime,
                                const CommandOptions& options) const {
  CommandOptions with_env = options;
  return RunCommand(PodmanArgv(args, runtime), with_env);
}

}  // namespace uvmshim::e2e
