#include "guest-agent/vm/warm_up.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <optional>
#include <stdexcept>
#include <string>

#include "common/oci_defaults.h"
#include "guest-agent/agent_service.h"
#include "guest-agent/logging.h"
#include "guest-agent/step_timer.h"

namespace uvmshim::agent::vm {
namespace {

constexpr const char* kWarmUpDir = "/run/uvm-warmup";
constexpr const char* kWarmUpId = "uvm-warmup";
constexpr const char* kBusybox = "/bin/busybox";

[[noreturn]] void Fail(const std::string& what, int error = errno) {
  throw std::runtime_error(what + ": " + std::strerror(error));
}

void MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) Fail("mkdir " + path);
}

// A tmpfs at kWarmUpDir holding the rootfs; unmounted (with everything
// below it) when this goes.
class WarmUpRootfs {
 public:
  WarmUpRootfs() {
    MakeDir(kWarmUpDir);
    if (::mount("tmpfs", kWarmUpDir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=1m") != 0)
      Fail(std::string("mount tmpfs on ") + kWarmUpDir);
    mounted_ = true;
    for (const char* dir : {"", "/bin", "/proc", "/dev", "/sys", "/tmp"}) MakeDir(rootfs() + dir);
    const std::string target = rootfs() + "/bin/true";
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
    if (fd < 0) Fail("create " + target);
    ::close(fd);
    // busybox runs the applet its argv[0] names: /bin/true.
    if (::mount(kBusybox, target.c_str(), nullptr, MS_BIND, nullptr) != 0) Fail(std::string("bind ") + kBusybox);
    if (::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
      Fail("make " + target + " read-only");
  }
  ~WarmUpRootfs() {
    if (mounted_ && ::umount2(kWarmUpDir, MNT_DETACH) != 0)
      spdlog::warn("event=warmup_cleanup_failed error={}", LogQuote(std::strerror(errno)));
    ::rmdir(kWarmUpDir);
  }
  WarmUpRootfs(const WarmUpRootfs&) = delete;
  WarmUpRootfs& operator=(const WarmUpRootfs&) = delete;

  static std::string rootfs() { return std::string(kWarmUpDir) + "/rootfs"; }

 private:
  bool mounted_ = false;
};

// The shape of containerd's default spec (what `ctr run` sends): the same
// namespaces, mounts, masked and read-only paths, so the same code runs.
std::string WarmUpSpec() {
  using nlohmann::json;
  json caps = oci::DefaultCapabilities();
  json spec = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"/bin/true"}},
        {"env", {"PATH=/bin"}},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", true}}},
      {"root", {{"path", WarmUpRootfs::rootfs()}, {"readonly", false}}},
      {"mounts",
       [] {
         json mounts = oci::DefaultMounts();
         mounts.push_back({{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"}, {"source", "cgroup"},
                           {"options", {"ro", "nosuid", "noexec", "nodev"}}});
         mounts.push_back({{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                           {"options", {"nosuid", "nodev", "mode=1777", "size=1m"}}});
         return mounts;
       }()},
      {"linux",
       {{"namespaces",
         json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}, {{"type", "network"}}})},
        {"maskedPaths", oci::DefaultMaskedPaths()},
        {"readonlyPaths", oci::DefaultReadonlyPaths()}}},
  };
  return spec.dump();
}

void Check(const grpc::Status& status, const char* step) {
  if (!status.ok()) throw std::runtime_error(std::string(step) + ": " + status.error_message());
}

}  // namespace

bool WarmUpContainerPath(AgentService& service) {
  if (::access(kBusybox, X_OK) != 0) {
    spdlog::info("event=warmup_skipped reason={}", LogQuote(std::string(kBusybox) + " is not in the image"));
    return false;
  }
  StepTimer steps;
  std::optional<WarmUpRootfs> rootfs;  // goes after the container
  bool created = false;
  bool ok = false;
  try {
    rootfs.emplace();
    steps.Mark("rootfs");
    // Direct calls: no gRPC call is in flight, so no context (a default one is
    // never cancelled).
    grpc::ServerContext context;
    pb::CreateContainerRequest create;
    create.set_container_id(kWarmUpId);
    create.set_spec_json(WarmUpSpec());
    pb::CreateContainerResponse created_response;
    Check(service.CreateContainer(&context, &create, &created_response), "create");
    created = true;
    steps.Mark("create");
    pb::StartContainerRequest start;
    start.set_container_id(kWarmUpId);
    pb::StartContainerResponse started;
    Check(service.StartContainer(&context, &start, &started), "start");
    steps.Mark("start");
    pb::WaitProcessRequest wait;
    wait.set_container_id(kWarmUpId);
    pb::WaitProcessResponse exited;
    Check(service.WaitProcess(&context, &wait, &exited), "wait");
    if (exited.exit_status() != 0)
      throw std::runtime_error("/bin/true exited with " + std::to_string(exited.exit_status()));
    steps.Mark("exit");
    ok = true;
  } catch (const std::exception& e) {
    spdlog::warn("event=warmup_failed error={}", LogQuote(e.what()));
  }
  if (created) {
    grpc::ServerContext context;
    pb::DeleteContainerRequest remove;
    remove.set_container_id(kWarmUpId);
    remove.set_force(true);
    pb::DeleteContainerResponse removed;
    if (auto status = service.DeleteContainer(&context, &remove, &removed); !status.ok()) {
      spdlog::warn("event=warmup_failed error={}", LogQuote("delete: " + status.error_message()));
      ok = false;
    }
    steps.Mark("delete");
  }
  rootfs.reset();
  spdlog::info("event=warmup_done ok={} ms={} {}", ok, FormatMs(steps.TotalNs()), steps.text());
  return ok;
}

}  // namespace uvmshim::agent::vm
