// What the host's VM tests (sandbox_vm_test.cc, pool_vm_test.cc) share: their
// prerequisites, a private directory with a busybox rootfs, and one container
// prepared, created and started in an agent host.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include "agent_client.h"
#include "agent_host.h"
#include "oci_spec.h"
#include "paths.h"

namespace uvmshim::test_support {

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Why a test that boots utility VMs cannot run here, if it cannot.
inline std::optional<std::string> MissingVmPrerequisite() {
  if (::geteuid() != 0) return "virtiofsd and bind mounts need root";
  const auto images = host::ImagesDir();
  if (!std::filesystem::exists(images / "vmlinuz") || !std::filesystem::exists(images / "initrd.img"))
    return "no boot image in " + images.string() + " (build target uvm-image or set $UVMSHIM_IMAGES)";
  return std::nullopt;
}

// A fresh /tmp/<prefix>.XXXXXX holding a copy of `busybox_rootfs` as rootfs/.
inline std::filesystem::path MakeDirWithRootfs(const std::string& prefix, const std::string& busybox_rootfs) {
  std::string pattern = "/tmp/" + prefix + ".XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern);
  const std::filesystem::path dir = pattern;
  if (std::system(("cp -a " + busybox_rootfs + " " + (dir / "rootfs").string()).c_str()) != 0)
    throw std::runtime_error("copy " + busybox_rootfs + " to " + (dir / "rootfs").string());
  return dir;
}

// Prepares (the host's side of its mounts), creates and starts container `id`
// on `rootfs`; returns its pid as the agent reports it.
inline std::uint32_t StartContainerIn(host::AgentHost& agent_host, host::AgentClient& agent, const std::string& id,
                                      const std::filesystem::path& rootfs, const host::SpecOptions& options) {
  const host::GuestContainer guest = agent_host.PrepareContainer(id, rootfs, host::BuildSpecJson(options));
  host::agentpb::CreateContainerRequest create;
  create.set_container_id(id);
  create.set_spec_json(guest.spec_json);
  create.set_rootfs_path(guest.rootfs);
  agent.CreateContainer(create);
  return agent.StartContainer(id);
}

}  // namespace uvmshim::test_support
