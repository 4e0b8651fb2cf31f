// libFuzzer target: what the shim reads for a containerd Create before any
// sandbox starts (host-shim/shim/create_request.h, pod_spec.h,
// container_mounts.h): the bundle's config.json, the runtime config TOML its
// options name, the CRI annotations, namespace paths and bind mounts.
//
// Input: byte 0 = flags (bit 0: the TOML part is used, bit 1: hyperv
// namespace resolution), then config.json text, optionally followed by
// "\n%%\n" and config.toml text. Both are written into a private bundle
// directory, as containerd would leave them. Errors must be
// std::invalid_argument (the shim's "bad request" class); anything accepted
// is checked for consistency.
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "container_mounts.h"
#include "common/ids.h"
#include "containerd/runtimeoptions/v1/options.pb.h"
#include "containerd/task/v2/shim.pb.h"
#include "sandbox_config.h"
#include "shim/create_request.h"
#include "shim/pod_spec.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace fs = std::filesystem;
using namespace uvmshim;
using uvmshim::fuzz::Check;
using uvmshim::fuzz::HasNoNul;

// One bundle directory per fuzzer process, removed at exit.
struct Bundle {
  fs::path dir;
  Bundle() {
    char pattern[] = "/tmp/uvmshim-fuzz-bundle-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (!made) std::abort();
    dir = made;
  }
  ~Bundle() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  void Write(const char* name, std::string_view text) const {
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
};

const Bundle& TheBundle() {
  static const Bundle bundle;
  return bundle;
}

// Joining a network namespace by an arbitrary path is I/O, not parsing (an
// open() of a FIFO would block): only /proc/<pid>/ns/<type> paths, which the
// shim answers without opening them, go through hyperv resolution here.
bool OnlyProcNamespacePaths(const nlohmann::json& spec) {
  if (!spec.contains("linux") || !spec["linux"].is_object() || !spec["linux"].contains("namespaces") ||
      !spec["linux"]["namespaces"].is_array())
    return true;
  for (const auto& ns : spec["linux"]["namespaces"]) {
    if (!ns.is_object() || !ns.contains("path") || !ns["path"].is_string()) continue;
    const auto& path = ns["path"].get_ref<const std::string&>();
    if (!path.empty() && !path.starts_with("/proc/")) return false;
  }
  return true;
}

void Run(std::uint8_t flags, std::string_view spec_text, std::string_view toml_text) {
  const Bundle& bundle = TheBundle();
  bundle.Write("config.json", spec_text);
  containerd::task::v2::CreateTaskRequest request;
  request.set_id("fuzz-task");
  request.set_bundle(bundle.dir.string());
  if (flags & 1) {
    bundle.Write("config.toml", toml_text);
    runtimeoptions::v1::Options options;
    options.set_config_path((bundle.dir / "config.toml").string());
    request.mutable_options()->set_type_url("type.googleapis.com/runtimeoptions.v1.Options");
    request.mutable_options()->set_value(options.SerializeAsString());
  }
  nlohmann::json spec;
  try {
    spec = shim::ReadBundleSpec(bundle.dir);
  } catch (const std::invalid_argument&) {
    return;
  }
  try {
    const auto annotations = shim::AnnotationsOf(spec);
    const auto role = shim::PodRoleOf(request.id(), annotations);
    if (role.kind != shim::PodRole::Kind::kLone) Check(::uvmshim::IsValidId(role.sandbox_id), "sandbox id");
    const auto config = shim::SandboxConfigFor(request, annotations);
    Check(config.memory_mb > 0 && config.cpus > 0, "a sandbox without memory or CPUs");
    const bool hyperv = (flags & 2) && OnlyProcNamespacePaths(spec);
    shim::ResolveNamespacePaths(spec, hyperv ? host::Isolation::kHyperv : host::Isolation::kProcess,
                                [](std::uint32_t pid) { return pid % 2 == 0; });
    for (const auto& bind : host::BindMountsOf(spec, hyperv)) {
      Check(!bind.source.empty() && bind.source.front() == '/' && HasNoNul(bind.source), "bind source");
      Check(!bind.destination.empty() && bind.destination.front() == '/' && HasNoNul(bind.destination),
            "bind destination");
    }
    Check(!spec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).empty(), "spec dump");
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool kQuiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)kQuiet;
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view toml;
  if (auto split = rest.find("\n%%\n"); split != std::string_view::npos) {
    toml = rest.substr(split + 4);
    rest = rest.substr(0, split);
  }
  Run(data[0], rest, toml);
  return 0;
}
