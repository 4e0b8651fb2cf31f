// `create`: validation, the fork of the monitor and the readiness handshake.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "common/ids.h"
#include "paths.h"
#include "runc/container_record.h"
#include "runc/container_monitor.h"
#include "runc/forked_monitor.h"
#include "runc/monitor.h"
#include "runc/runc_log.h"
#include "shim/create_request.h"

namespace uvmshim::runc {
namespace fs = std::filesystem;

namespace {

host::SandboxConfig ConfigFor(const GlobalOptions& global, const std::map<std::string, std::string>& annotations) {
  host::SandboxConfig config;
  const char* env = std::getenv("UVMSHIM_CONFIG");
  const fs::path file = env && *env ? fs::path(env) : fs::path("/etc/uvmshim/config.toml");
  if ((env && *env) || fs::exists(file)) config = host::LoadSandboxConfig(file);
  if (global.isolation) config.isolation = host::ParseIsolation(*global.isolation);
  host::ApplyAnnotations(config, annotations);  // io.uvmshim.isolation wins, as with the shim
  return config;
}

}  // namespace

ContainerLaunch PrepareLaunch(const CommandLine& cl) {
  ContainerLaunch launch;
  launch.global = cl.global;
  launch.id = cl.Id();
  if (auto why = IdError("container id", launch.id); !why.empty()) throw std::invalid_argument(why);
  launch.bundle = fs::absolute(cl.Get("bundle", cl.Get("b", ".")));
  launch.spec = shim::ReadBundleSpec(launch.bundle);
  launch.hooks = TakeHostHooks(launch.spec);
  if (!launch.spec.contains("root") || !launch.spec["root"].contains("path"))
    throw std::invalid_argument(fmt::format("{}/config.json: root.path is required", launch.bundle.string()));
  fs::path root = launch.spec["root"]["path"].get<std::string>();
  launch.rootfs = root.is_absolute() ? root : launch.bundle / root;
  if (!fs::is_directory(launch.rootfs))
    throw std::invalid_argument(fmt::format("root.path: {} is not a directory", launch.rootfs.string()));
  std::map<std::string, std::string> annotations;
  if (launch.spec.contains("annotations") && launch.spec["annotations"].is_object())
    for (auto& [k, v] : launch.spec["annotations"].items())
      if (v.is_string()) annotations[k] = v.get<std::string>();
  launch.config = ConfigFor(cl.global, annotations);
  launch.console_socket = cl.Get("console-socket");
  launch.pid_file = cl.Get("pid-file");
  if (!launch.pid_file.empty()) launch.pid_file = fs::absolute(launch.pid_file);
  return launch;
}

int CreateContainer(const ContainerLaunch& launch) {
  const fs::path dir = ContainerDir(launch.global.root, launch.id);
  if (!fs::exists(launch.global.root)) {
    fs::create_directories(launch.global.root);
    fs::permissions(launch.global.root, fs::perms::owner_all);  // 0700, as runc's root
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) throw std::runtime_error(fmt::format("container with id {} already exists", launch.id));
    throw std::runtime_error(fmt::format("mkdir {}: {}", dir.string(), std::strerror(errno)));
  }
  const ForkedMonitor monitor =
      ForkMonitor([&](UniqueFd ready) { return RunContainerMonitor(launch, std::move(ready)); });
  if (monitor.ready()) {
    if (!launch.pid_file.empty()) WritePidFile(launch.pid_file, monitor.pid);
    return 0;
  }
  int status = 0;
  ::waitpid(monitor.pid, &status, 0);  // it has cleaned up behind itself
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  throw std::runtime_error(monitor.answer.empty()
                               ? fmt::format("the monitor of {} ended before the container existed", launch.id)
                               : monitor.answer);
}

}  // namespace uvmshim::runc
