#include "shim/create_request.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "containerd/cgroups/v1/metrics.pb.h"
#include "containerd/runtimeoptions/v1/options.pb.h"
#include "shim/pod_spec.h"

namespace uvmshim::shim {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(fmt::format("{}: cannot be read", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

host::SandboxConfig ResolveConfig(const ::containerd::task::v2::CreateTaskRequest& request) {
  if (request.has_options() && !request.options().type_url().empty()) {
    const auto& any = request.options();
    if (!any.type_url().ends_with("runtimeoptions.v1.Options"))
      throw std::invalid_argument(fmt::format(
          "runtime options of type \"{}\" are not supported (expected runtimeoptions.v1.Options "
          "with ConfigPath)", any.type_url()));
    runtimeoptions::v1::Options options;
    if (!options.ParseFromString(any.value()))
      throw std::invalid_argument("runtime options: cannot decode runtimeoptions.v1.Options");
    if (!options.config_path().empty()) return host::LoadSandboxConfig(options.config_path());
  }
  if (const char* path = std::getenv("UVMSHIM_CONFIG"); path && *path)
    return host::LoadSandboxConfig(path);
  if (fs::exists("/etc/uvmshim/config.toml")) return host::LoadSandboxConfig("/etc/uvmshim/config.toml");
  return {};
}

host::SandboxConfig SandboxConfigFor(const ::containerd::task::v2::CreateTaskRequest& request,
                                     const std::map<std::string, std::string>& annotations) {
  host::SandboxConfig config = ResolveConfig(request);
  host::ApplyAnnotations(config, annotations);
  const auto role = PodRoleOf(request.id(), annotations);
  if (role.kind == PodRole::Kind::kSandbox || annotations.contains(host::kVmMemoryAnnotation) ||
      annotations.contains(host::kVmCpusAnnotation))
    host::ApplyPodSizing(config, annotations, host::CurrentHostLimits());
  return config;
}

::containerd::events::TaskCreate CreateEventOf(const ::containerd::task::v2::CreateTaskRequest& request,
                                               std::uint32_t pid) {
  ::containerd::events::TaskCreate event;
  event.set_container_id(request.id());
  event.set_bundle(request.bundle());
  *event.mutable_rootfs() = request.rootfs();
  event.mutable_io()->set_stdin(request.stdin());
  event.mutable_io()->set_stdout(request.stdout());
  event.mutable_io()->set_stderr(request.stderr());
  event.mutable_io()->set_terminal(request.terminal());
  event.set_checkpoint(request.checkpoint());
  event.set_pid(pid);
  return event;
}

std::string ResourcesJsonOf(const ::containerd::task::v2::UpdateTaskRequest& request) {
  const auto& any = request.resources();
  if (!any.type_url().ends_with("LinuxResources"))
    throw std::invalid_argument(fmt::format("update {}: resources of type \"{}\" are not supported (expected "
                                            "runtime-spec LinuxResources as JSON)", request.id(), any.type_url()));
  try {
    if (!json::parse(any.value()).is_object())
      throw std::invalid_argument(fmt::format("update {}: resources must be a JSON object", request.id()));
  } catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("update {}: resources: {}", request.id(), e.what()));
  }
  return any.value();
}

json ReadBundleSpec(const fs::path& bundle) {
  // The bundle names every file of the task (config.json, rootfs, logs).
  if (!bundle.is_absolute() || bundle.native().find('\0') != std::string::npos)
    throw std::invalid_argument(fmt::format("bundle \"{}\": must be an absolute path", bundle.c_str()));
  json spec;
  try {
    spec = json::parse(ReadFile(bundle / "config.json"));
  } catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("{}/config.json: {}", bundle.string(), e.what()));
  }
  if (!spec.is_object() || !spec.contains("process"))
    throw std::invalid_argument(fmt::format("{}/config.json: not an OCI spec (no \"process\")", bundle.string()));
  return spec;
}

fs::path MountRootfs(const ::containerd::task::v2::CreateTaskRequest& request, const json& spec,
                     RootfsMount& mount) {
  const fs::path bundle = request.bundle();
  fs::path rootfs = bundle / "rootfs";
  if (request.rootfs_size() > 0) {
    std::vector<MountSpec> mounts;
    for (const auto& m : request.rootfs())
      mounts.push_back({m.type(), m.source(), {m.options().begin(), m.options().end()}});
    fs::create_directories(rootfs);
    mount = RootfsMount(mounts, rootfs);
  } else if (spec.contains("root") && spec["root"].contains("path") && spec["root"]["path"].is_string()) {
    fs::path root = spec["root"]["path"].get<std::string>();
    rootfs = root.is_absolute() ? root : bundle / root;
  }
  if (!fs::is_directory(rootfs))
    throw std::invalid_argument(fmt::format("rootfs {}: not a directory", rootfs.string()));
  return rootfs;
}

google::protobuf::Any MetricsOf(const host::agentpb::StatsResponse& stats) {
  io::containerd::cgroups::v1::Metrics metrics;
  metrics.mutable_pids()->set_current(stats.pids_current());
  metrics.mutable_pids()->set_limit(stats.pids_limit());
  auto* cpu = metrics.mutable_cpu()->mutable_usage();
  cpu->set_total(stats.cpu_usage_ns());
  cpu->set_user(stats.cpu_user_ns());
  cpu->set_kernel(stats.cpu_system_ns());
  auto* memory = metrics.mutable_memory()->mutable_usage();
  memory->set_usage(stats.memory_usage_bytes());
  memory->set_limit(stats.memory_limit_bytes());
  memory->set_max(stats.memory_max_usage_bytes());
  google::protobuf::Any any;
  any.set_type_url("io.containerd.cgroups.v1.Metrics");
  any.set_value(metrics.SerializeAsString());
  return any;
}

}  // namespace uvmshim::shim
