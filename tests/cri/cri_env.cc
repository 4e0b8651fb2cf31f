#include "cri_env.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <stdexcept>

namespace uvmshim::cri {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

void WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path);
  out << content;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

// Image archives built by CMake in this build tree (compiled in, so UVMSHIM_BUILD can point the
// shim and boot files at another build without losing them).
const fs::path kPauseArchive = UVMSHIM_CRI_PAUSE_ARCHIVE;
const fs::path kBusyboxArchive = UVMSHIM_CRI_BUSYBOX_ARCHIVE;

}  // namespace

bool IsUvmHandler(const std::string& handler) {
  return handler == kUvmProcessHandler || handler == kUvmHypervHandler;
}
bool IsHypervHandler(const std::string& handler) { return handler == kUvmHypervHandler; }

std::optional<std::string> MissingPrerequisite(const std::string& handler) {
  if (!IsUvmHandler(handler)) return std::nullopt;
  if (!e2e::UvmShimBinary()) {
    return "containerd-shim-uvm-v1 is not built (looked in " + (e2e::BuildDir() / "bin").string() + ")";
  }
  if (IsHypervHandler(handler) && !e2e::UvmBootFilesDir()) {
    return "UVM boot files are not built (need vmlinuz and initrd.img in " +
           (e2e::BuildDir() / "images").string() + " or $UVMSHIM_IMAGES)";
  }
  return std::nullopt;
}

std::chrono::milliseconds CallTimeout(const std::string& handler) {
  return IsHypervHandler(handler) ? 300s : 90s;
}

CriEnv::CriEnv() { Start(); }

CriEnv::CriEnv(const CriBridgeNetwork& bridge) : bridge_(bridge) { Start(); }

void CriEnv::Start() {
  WriteFiles();
  e2e::ContainerdEnv::Options options;
  if (bridge_) options.netns = bridge_->netns_path;
  if (auto shim = e2e::UvmShimBinary()) options.shim_dir = shim->parent_path();
  options.config_extra = files_.path() / "cri.toml";
  options.cri = true;
  containerd_ = std::make_unique<e2e::ContainerdEnv>(options);
  ImportImage(kPauseArchive, kPauseImage);
  ImportImage(kBusyboxArchive, kBusyboxImage);
  client_ = std::make_unique<CriClient>(containerd_->address(), 60s);
  // CRI learns about imported images from containerd's events: wait until it sees both.
  bool seen = e2e::WaitFor([&] {
    try {
      return client_->ImagePresent(kPauseImage) && client_->ImagePresent(kBusyboxImage);
    } catch (const CriError&) {
      return false;
    }
  }, 30s);
  if (!seen) {
    throw std::runtime_error("CRI does not list the imported images " + std::string(kPauseImage) +
                             " and " + kBusyboxImage + "; containerd log:\n" + containerd_->LogTail());
  }
}

CriEnv::~CriEnv() {
  if (client_) RemoveAllPods();
  client_.reset();
  containerd_.reset();  // containerd-env.sh stop: everything by pid, mounts, the env dir
}

void CriEnv::WriteFiles() {
  const fs::path dir = files_.path();
  for (const char* sub : {"cni-bin", "cni-conf", "runc", "work"}) fs::create_directories(dir / sub);

  // CNI: containerd 1.6 takes one bin_dir, so it gets Debian's loopback plugin (its built-in
  // lo network) plus ours.
  const fs::path loopback = "/usr/lib/cni/loopback";
  if (!fs::exists(loopback)) {
    throw std::runtime_error(loopback.string() + " missing: apt-get install containernetworking-plugins");
  }
  fs::create_symlink(loopback, dir / "cni-bin" / "loopback");
  fs::create_symlink(e2e::SourceDir() / "tests" / "cri" / "cni-loopback-only", dir / "cni-bin" / "cni-loopback-only");
  if (bridge_) {
    for (const char* plugin : {"bridge", "host-local", "portmap"})
      fs::create_symlink(fs::path("/usr/lib/cni") / plugin, dir / "cni-bin" / plugin);
    // host-local keeps its leases in our dir, not the system's /var/lib/cni.
    WriteFile(dir / "cni-conf" / "10-bridge.conflist",
              R"({"cniVersion": "1.0.0", "name": "uvmshim-bridge", "plugins": [)"
              R"({"type": "bridge", "bridge": "uvmbr0", "isGateway": true, "ipMasq": false, "hairpinMode": true,)"
              R"( "ipam": {"type": "host-local", "dataDir": ")" + (dir / "cni-ipam").string() + R"(",)"
              R"( "ranges": [[{"subnet": ")" + bridge_->subnet + R"("}]], "routes": [{"dst": "0.0.0.0/0"}]}},)"
              R"( {"type": "portmap", "capabilities": {"portMappings": true}}]})" "\n");
  } else {
    WriteFile(dir / "cni-conf" / "10-loopback-only.conflist",
              R"({"cniVersion": "1.0.0", "name": "uvmshim-loopback-only",)"
              R"( "plugins": [{"type": "cni-loopback-only"}]})" "\n");
  }

  // uvm shim runtime configs: one per handler, selected by options.ConfigPath.
  WriteFile(dir / "process.toml", "isolation = \"process\"\n");
  std::string hyperv = "isolation = \"hyperv\"\n";
  if (auto boot = e2e::UvmBootFilesDir()) {
    hyperv += "[uvm]\nkernel = \"" + (*boot / "vmlinuz").string() + "\"\ninitrd = \"" +
              (*boot / "initrd.img").string() + "\"\n";
  }
  WriteFile(dir / "hyperv.toml", hyperv);

  const std::string cri = R"([plugins."io.containerd.grpc.v1.cri")";
  const std::string runtimes = cri + R"(.containerd.runtimes)";
  std::string toml;
  toml += cri + "]\n";
  toml += "  sandbox_image = \"" + std::string(kPauseImage) + "\"\n";
  // This machine's root lacks CAP_SYS_RESOURCE: the pause container's oom_score_adj of -998
  // would be refused without it.
  toml += "  restrict_oom_score_adj = true\n";
  toml += "  disable_apparmor = true\n";
  toml += cri + ".cni]\n";
  toml += "  bin_dir = \"" + (dir / "cni-bin").string() + "\"\n";
  toml += "  conf_dir = \"" + (dir / "cni-conf").string() + "\"\n";
  toml += cri + ".containerd]\n";
  toml += "  default_runtime_name = \"runc\"\n";
  toml += runtimes + ".runc]\n  runtime_type = \"io.containerd.runc.v2\"\n";
  toml += runtimes + ".runc.options]\n  Root = \"" + (dir / "runc").string() + "\"\n";
  for (const auto& [handler, file] : {std::pair{kUvmHypervHandler, "hyperv.toml"},
                                      std::pair{kUvmProcessHandler, "process.toml"}}) {
    toml += runtimes + "." + handler + "]\n";
    toml += "  runtime_type = \"io.containerd.uvm.v1\"\n";
    toml += "  pod_annotations = [\"io.uvmshim.*\"]\n";
    toml += "  container_annotations = [\"io.uvmshim.*\"]\n";
    toml += runtimes + "." + handler + ".options]\n";
    toml += "  ConfigPath = \"" + (dir / file).string() + "\"\n";
  }
  WriteFile(dir / "cri.toml", toml);
}

void CriEnv::ImportImage(const fs::path& archive, const std::string& ref) {
  if (!fs::exists(archive)) throw std::runtime_error("image archive not built: " + archive.string());
  auto r = e2e::RunCommand({"ctr", "-a", containerd_->address(), "-n", "k8s.io", "images", "import",
                            "--index-name", ref, archive.string()},
                           e2e::CommandOptions().WithTimeout(120s));
  if (!r.ok()) throw std::runtime_error("importing " + ref + " into k8s.io failed: " + r.Describe());
}

std::string CriEnv::CgroupParent(const std::string& pod_name) const {
  return "/" + containerd_->ns() + "/" + pod_name;
}

fs::path CriEnv::CriStateDir() const { return containerd_->state_dir() / "io.containerd.grpc.v1.cri"; }
fs::path CriEnv::CriRootDir() const { return containerd_->dir() / "root" / "io.containerd.grpc.v1.cri"; }

fs::path CriEnv::TaskBundleDir(const std::string& id) const {
  return containerd_->state_dir() / "io.containerd.runtime.v2.task" / "k8s.io" / id;
}

void CriEnv::RemoveAllPods() {
  try {
    for (const auto& pod : client_->ListPodSandbox()) {
      for (const auto& c : client_->ListContainers(pod.id())) {
        try { client_->StopContainer(c.id(), 0); } catch (const std::exception& e) { spdlog::warn("{}", e.what()); }
        try { client_->RemoveContainer(c.id()); } catch (const std::exception& e) { spdlog::warn("{}", e.what()); }
      }
      try { client_->StopPodSandbox(pod.id()); } catch (const std::exception& e) { spdlog::warn("{}", e.what()); }
      try { client_->RemovePodSandbox(pod.id()); } catch (const std::exception& e) { spdlog::warn("{}", e.what()); }
    }
  } catch (const std::exception& e) {
    spdlog::warn("removing pods left in {}: {}", containerd_->dir().string(), e.what());
  }
}

}  // namespace uvmshim::cri
