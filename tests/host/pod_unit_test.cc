// Pod handling in the shim that needs no containerd: CRI annotations, UVM
// sizing, namespace paths in hyperv, socket paths for long roots.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sched.h>
#include <thread>
#include <unistd.h>

#include "paths.h"
#include "sandbox_config.h"
#include "shim/pod_spec.h"
#include "tests/support/temp_dir.h"

using namespace uvmshim::host;
using namespace uvmshim::shim;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string ErrorOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

const HostLimits kLimits{4096, 4};

}  // namespace

TEST(PodRole, FromCriAnnotations) {
  EXPECT_EQ(PodRoleOf("c1", {}).kind, PodRole::Kind::kLone);
  auto sandbox = PodRoleOf("p1", {{kContainerTypeAnnotation, "sandbox"}, {kSandboxIdAnnotation, "p1"}});
  EXPECT_EQ(sandbox.kind, PodRole::Kind::kSandbox);
  EXPECT_EQ(sandbox.sandbox_id, "p1");
  auto app = PodRoleOf("c1", {{kContainerTypeAnnotation, "container"}, {kSandboxIdAnnotation, "p1"}});
  EXPECT_EQ(app.kind, PodRole::Kind::kContainer);
  EXPECT_EQ(app.sandbox_id, "p1");
  EXPECT_NE(ErrorOf([] { PodRoleOf("c1", {{kContainerTypeAnnotation, "container"}}); }).find(kSandboxIdAnnotation),
            std::string::npos);
  EXPECT_NE(ErrorOf([] { PodRoleOf("c1", {{kContainerTypeAnnotation, "pod"}}); }).find("expected sandbox or container"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] { PodRoleOf("p1", {{kContainerTypeAnnotation, "sandbox"}, {kSandboxIdAnnotation, "p2"}}); })
                .find("must be its own id"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] {
              PodRoleOf("c1", {{kContainerTypeAnnotation, "container"}, {kSandboxIdAnnotation, "../x"}});
            }).find(kSandboxIdAnnotation),
            std::string::npos);
}

TEST(PodRole, ShimStartFindsTheSandboxInTheBundle) {
  const uvmshim::testing::TempDir temp("pod-bundle");
  const fs::path& bundle = temp.path();
  EXPECT_EQ(PodSandboxOf(bundle, "c1"), std::nullopt);  // no config.json
  std::ofstream(bundle / "config.json")
      << json{{"process", json::object()},
              {"annotations", {{kContainerTypeAnnotation, "container"}, {kSandboxIdAnnotation, "pod9"}}}}.dump();
  EXPECT_EQ(PodSandboxOf(bundle, "c1"), "pod9");
  std::ofstream(bundle / "config.json") << json{{"annotations", {{kContainerTypeAnnotation, "sandbox"}}}}.dump();
  EXPECT_EQ(PodSandboxOf(bundle, "pod9"), std::nullopt);
  fs::remove_all(bundle);
}

TEST(PodSizing, FollowsThePodsSummedResources) {
  SandboxConfig config;  // 256 MiB, 1 cpu, 128 MiB overhead
  ApplyPodSizing(config, {{kPodMemoryAnnotation, std::to_string(512ll << 20)},
                          {kPodCpuQuotaAnnotation, "250000"}, {kPodCpuPeriodAnnotation, "100000"}}, kLimits);
  EXPECT_EQ(config.memory_mb, 512u + 128u);
  EXPECT_EQ(config.cpus, 3u);  // 2.5 rounded up
}

TEST(PodSizing, NeverBelowTheConfigAndClampedToTheHost) {
  SandboxConfig small;
  ApplyPodSizing(small, {{kPodMemoryAnnotation, "1048576"}, {kPodCpuQuotaAnnotation, "10000"},
                         {kPodCpuPeriodAnnotation, "100000"}}, kLimits);
  EXPECT_EQ(small.memory_mb, 256u);
  EXPECT_EQ(small.cpus, 1u);
  SandboxConfig big;
  ApplyPodSizing(big, {{kPodMemoryAnnotation, std::to_string(1ll << 40)}, {kPodCpuQuotaAnnotation, "6400000"},
                       {kPodCpuPeriodAnnotation, "100000"}}, kLimits);
  EXPECT_EQ(big.memory_mb, 4096u);
  EXPECT_EQ(big.cpus, 4u);
  SandboxConfig unlimited;  // CRI sends 0 / -1 for "no limit"
  ApplyPodSizing(unlimited, {{kPodMemoryAnnotation, "0"}, {kPodCpuQuotaAnnotation, "-1"},
                             {kPodCpuPeriodAnnotation, "100000"}}, kLimits);
  EXPECT_EQ(unlimited.memory_mb, 256u);
  EXPECT_EQ(unlimited.cpus, 1u);
}

TEST(PodSizing, OverrideAnnotationsWin) {
  SandboxConfig config;
  ApplyPodSizing(config, {{kPodMemoryAnnotation, std::to_string(1ll << 30)}, {kVmMemoryAnnotation, "300"},
                          {kVmCpusAnnotation, "2"}}, kLimits);
  EXPECT_EQ(config.memory_mb, 300u);
  EXPECT_EQ(config.cpus, 2u);
}

TEST(PodSizing, NonsenseIsAnErrorNamingTheAnnotation) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {kVmMemoryAnnotation, "lots"}, {kVmMemoryAnnotation, "1"}, {kVmMemoryAnnotation, "99999999"},
           {kVmMemoryAnnotation, ""}, {kVmCpusAnnotation, "0"}, {kVmCpusAnnotation, "5"},
           {kVmCpusAnnotation, "1.5"}, {kPodMemoryAnnotation, "-5"}, {kPodMemoryAnnotation, "1e9"},
           {kPodCpuPeriodAnnotation, "-1"}, {kPodCpuQuotaAnnotation, "x"}}) {
    SandboxConfig config;
    auto error = ErrorOf([&, k = key, v = value] { ApplyPodSizing(config, {{k, v}}, kLimits); });
    EXPECT_NE(error.find("annotation " + key), std::string::npos) << key << "=" << value << ": " << error;
  }
}

TEST(PodSizing, OverheadIsConfigurable) {
  auto config = ParseSandboxConfig("[uvm]\nmemory_overhead_mb = 32\n", "t.toml");
  EXPECT_EQ(config.memory_overhead_mb, 32u);
  ApplyPodSizing(config, {{kPodMemoryAnnotation, std::to_string(300ll << 20)}}, kLimits);
  EXPECT_EQ(config.memory_mb, 332u);
  EXPECT_NE(ErrorOf([] { ParseSandboxConfig("[uvm]\nmemory_overhead_mb = -1\n", "t.toml"); }).find("memory_overhead_mb"),
            std::string::npos);
}

TEST(NamespacePaths, HypervKeepsOnlyTasksOfThePod) {
  auto spec = [](const std::string& type, const std::string& path) {
    return json{{"linux", {{"namespaces", {{{"type", "mount"}}, {{"type", type}, {"path", path}}}}}}};
  };
  auto is_task = [](std::uint32_t pid) { return pid == 42; };
  json ok = spec("ipc", "/proc/42/ns/ipc");
  EXPECT_NO_THROW(ResolveNamespacePaths(ok, Isolation::kHyperv, is_task));
  EXPECT_EQ(ok["linux"]["namespaces"][1]["path"], "/proc/42/ns/ipc");
  json net = spec("network", "/proc/42/ns/net");
  EXPECT_NO_THROW(ResolveNamespacePaths(net, Isolation::kHyperv, is_task));
  for (const auto& [type, path] : std::vector<std::pair<std::string, std::string>>{
           {"pid", "/proc/43/ns/pid"}, {"pid", "/proc/1/ns/pid"}, {"ipc", "/proc/42/ns/uts"},
           {"uts", "/proc/self/ns/uts"}, {"pid", "/proc/42/../1/ns/pid"}, {"ipc", "/dev/shm/x"}}) {
    json bad = spec(type, path);
    auto error = ErrorOf([&] { ResolveNamespacePaths(bad, Isolation::kHyperv, is_task); });
    EXPECT_NE(error.find("linux.namespaces[1].path"), std::string::npos) << path << ": " << error;
  }
  // Process isolation: host paths, as runc takes them.
  json host = spec("pid", "/proc/43/ns/pid");
  EXPECT_NO_THROW(ResolveNamespacePaths(host, Isolation::kProcess, is_task));
  EXPECT_EQ(host["linux"]["namespaces"][1]["path"], "/proc/43/ns/pid");
}

TEST(NamespacePaths, HypervTurnsALoopbackOnlyHostNetnsIntoANewOne) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for unshare(CLONE_NEWNET)";
  // A fresh network namespace (loopback only), pinned by a thread's /proc entry.
  std::string netns;
  std::promise<void> done;
  auto finished = done.get_future();
  std::promise<std::string> path;
  std::thread holder([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      path.set_value("");
      return;
    }
    path.set_value("/proc/" + std::to_string(::getpid()) + "/task/" + std::to_string(::gettid()) + "/ns/net");
    finished.wait();
  });
  netns = path.get_future().get();
  ASSERT_FALSE(netns.empty());
  json spec{{"linux", {{"namespaces", {{{"type", "network"}, {"path", netns}}}}}}};
  EXPECT_TRUE(NetnsHasOnlyLoopback(netns));
  EXPECT_NO_THROW(ResolveNamespacePaths(spec, Isolation::kHyperv, [](std::uint32_t) { return false; }));
  EXPECT_FALSE(spec["linux"]["namespaces"][0].contains("path"));
  done.set_value();
  holder.join();
  // The host's own network namespace is never given to a VM, whatever it holds.
  json host{{"linux", {{"namespaces", {{{"type", "network"}, {"path", "/proc/self/ns/net"}}}}}}};
  const auto error =
      ErrorOf([&] { ResolveNamespacePaths(host, Isolation::kHyperv, [](std::uint32_t) { return false; }); });
  EXPECT_NE(error.find("linux.namespaces[0].path"), std::string::npos) << error;
  EXPECT_NE(error.find("the host's network namespace"), std::string::npos) << error;
  EXPECT_NE(ErrorOf([] { NetnsHasOnlyLoopback("/nonexistent/netns"); }).find("/nonexistent/netns"), std::string::npos);
}

TEST(SocketPaths, LongRootsGetShortSocketDirs) {
  const fs::path short_dir = "/run/uvmshim/default/abc";
  EXPECT_EQ(SocketDirFor(short_dir), short_dir);
  const fs::path long_dir = fs::path("/tmp") / std::string(150, 'x') / "default" / std::string(64, 'a');
  const fs::path dir = SocketDirFor(long_dir);
  EXPECT_EQ(dir.parent_path(), fs::path(kShortSocketRoot));
  EXPECT_LE((dir / "virtiofs.sock").native().size(), 107u);
  EXPECT_NE(SocketDirFor(long_dir / "b"), dir) << "distinct state dirs get distinct socket dirs";
  ::setenv("UVMSHIM_ROOT", (fs::path("/tmp") / std::string(150, 'r')).c_str(), 1);
  const auto shim = ShimSocketPath("default", std::string(64, 'a'));
  EXPECT_LE(shim.native().size(), 107u);
  EXPECT_NE(ShimSocketPath("default", std::string(64, 'b')), shim);
  ::unsetenv("UVMSHIM_ROOT");
}
