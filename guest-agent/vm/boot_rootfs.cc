#include "guest-agent/vm/boot_rootfs.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "guest-agent/logging.h"
#include "guest-agent/vm/pid1.h"
#include "guest-agent/vm/rootfs_mount.h"

namespace uvmshim::agent::vm {
namespace {

void LoadTransportModules(const char* list) {
  if (!std::filesystem::exists(list)) return;  // built in, or not in this kernel
  const auto result = LoadModules(list);
  for (const auto& failure : result.failed)
    spdlog::warn("event=module_load_failed module={}", LogQuote(failure));
  spdlog::info("event=rootfs_modules_loaded list={} count={}", list, result.loaded);
}

}  // namespace

void LoadRootfsTransportModules(RootfsSource::Kind kind) {
  if (kind == RootfsSource::Kind::kScsiDisk) LoadTransportModules(kScsiModuleLoadOrder);
  if (kind == RootfsSource::Kind::kPlan9Vsock) LoadTransportModules(kPlan9ModuleLoadOrder);
}

std::string MountBootRootfs(const VmSettings& settings) {
  if (settings.rootfs_tag.empty()) return "";
  const auto start = std::chrono::steady_clock::now();
  try {
    const RootfsSource source = ParseRootfsSource(settings.rootfs_tag);
    if (settings.load_modules) LoadRootfsTransportModules(source.kind);
    RootfsMountOptions options;
    options.read_only = settings.rootfs_read_only;
    MountRootfsSource(source, kGuestRootfsPath, options);
    spdlog::info("event=rootfs_mounted source={} path={} read_only={} ms={}", LogQuote(Describe(source)),
                 kGuestRootfsPath, settings.rootfs_read_only,
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                     .count());
    return "";
  } catch (const std::exception& error) {
    const std::string reason = "uvm.rootfs=" + settings.rootfs_tag + ": " + error.what();
    spdlog::critical("event=rootfs_mount_failed error={}", LogQuote(reason));
    return reason;
  }
}

}  // namespace uvmshim::agent::vm
