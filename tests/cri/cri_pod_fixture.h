// GoogleTest fixture of the CRI suite: a private containerd with the three handlers per test
// (CriEnv), the pod/container helpers the cases share, kubelet's teardown order and the check
// that nothing of the pods is left.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cri_env.h"
#include "cri_pod.h"
#include "e2e_support.h"

namespace uvmshim::cri {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A container that prints one line to stdout and one to stderr, then idles until SIGTERM.
inline std::vector<std::string> IdleCommand(const std::string& name) {
  return {"sh", "-c",
          "trap 'exit 0' TERM; echo hello from " + name + "; echo oops from " + name +
              " >&2; while true; do sleep 1; done",
          "marker-" + name};
}

inline ContainerOptions IdleContainer(const std::string& name, std::vector<v1::Mount> mounts = {}) {
  ContainerOptions options;
  options.name = name;
  options.command = IdleCommand(name);
  options.mounts = std::move(mounts);
  return options;
}

class CriPodTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(handler())) GTEST_SKIP() << *why;
    env_ = std::make_unique<CriEnv>();
    cri().set_timeout(CallTimeout(handler()));
  }
  void TearDown() override { env_.reset(); }

  const std::string& handler() const { return GetParam(); }
  CriClient& cri() { return env_->client(); }
  CriEnv& env() { return *env_; }
  std::string LogTail() { return "\ncontainerd log:\n" + env_->containerd().LogTail(40); }

  std::string RunPod(const v1::PodSandboxConfig& config) {
    auto id = cri().RunPodSandbox(config, handler());
    pods_.push_back(id);
    return id;
  }

  std::string StartContainer(const std::string& pod, const v1::PodSandboxConfig& pod_config,
                             const ContainerOptions& options) {
    auto id = cri().CreateContainer(pod, MakeContainerConfig(options, pod_config), pod_config);
    containers_.push_back(id);
    cri().StartContainer(id);
    return id;
  }

  v1::ExecSyncResponse Sh(const std::string& id, const std::string& script) {
    return cri().ExecSync(id, {"sh", "-c", script}, 60);
  }
  // stdout of a script that must succeed (empty and a test failure otherwise).
  std::string ShOut(const std::string& id, const std::string& script) {
    auto r = Sh(id, script);
    EXPECT_EQ(r.exit_code(), 0) << "`" << script << "` in " << id << ": stderr " << r.stderr();
    return Trim(r.stdout());
  }

  bool WaitForExit(const std::string& id, std::chrono::milliseconds timeout) {
    return e2e::WaitFor([&] { return cri().ContainerStatus(id).status().state() == v1::CONTAINER_EXITED; },
                        timeout);
  }

  // Kubelet's order: stop every container, stop the sandbox, remove the containers, remove it.
  void StopAndRemoveAll() {
    for (const auto& c : containers_) EXPECT_NO_THROW(cri().StopContainer(c, 10)) << c;
    for (const auto& p : pods_) EXPECT_NO_THROW(cri().StopPodSandbox(p)) << p;
    for (const auto& c : containers_) EXPECT_NO_THROW(cri().RemoveContainer(c)) << c;
    for (const auto& p : pods_) EXPECT_NO_THROW(cri().RemovePodSandbox(p)) << p;
  }

  // Nothing of the pods is left: no task, shim, VM or container process, mount, socket, netns,
  // state dir or cgroup process.
  void ExpectNothingLeft(const std::vector<std::string>& netns_paths) {
    EXPECT_TRUE(cri().ListPodSandbox().empty());
    EXPECT_TRUE(cri().ListContainers().empty());
    const auto& cd = env().containerd();
    auto containerd_pid = cd.ContainerdPid();
    auto strays = [&] {
      std::vector<pid_t> out;
      for (pid_t p : e2e::PidsReferringTo(cd.dir())) {
        if (!containerd_pid || p != *containerd_pid) out.push_back(p);
      }
      return out;
    };
    // Shims exit after their last task is deleted: asynchronously to the RPC's answer.
    EXPECT_TRUE(e2e::WaitFor([&] { return strays().empty(); }, 60s))
        << "processes left: " << ::testing::PrintToString(strays());
    for (pid_t p : strays()) ADD_FAILURE() << "left: pid " << p << " " << ::testing::PrintToString(e2e::ProcessArgs(p));
    EXPECT_TRUE(QemuPidsUnder(cd.dir()).empty());
    EXPECT_EQ(e2e::MountsUnder(cd.dir()), std::vector<std::string>{});
    EXPECT_EQ(e2e::MountsUnder(env().files_dir()), std::vector<std::string>{});
    for (const auto& path : netns_paths) EXPECT_FALSE(fs::exists(path)) << "netns left: " << path;
    std::vector<std::string> ids = pods_;
    ids.insert(ids.end(), containers_.begin(), containers_.end());
    for (const auto& id : ids) {
      EXPECT_FALSE(fs::exists(env().TaskBundleDir(id))) << env().TaskBundleDir(id);
      for (const auto& base : {env().CriStateDir(), env().CriRootDir()}) {
        EXPECT_FALSE(fs::exists(base / "sandboxes" / id)) << base / "sandboxes" / id;
        EXPECT_FALSE(fs::exists(base / "containers" / id)) << base / "containers" / id;
      }
    }
    if (fs::exists(cd.uvmshim_root())) {
      EXPECT_TRUE(fs::is_empty(cd.uvmshim_root())) << "uvm shim state left in " << cd.uvmshim_root();
    }
    // Unix sockets bound under the env dir: only containerd's own two.
    std::ifstream unix_sockets("/proc/net/unix");
    std::string line;
    while (std::getline(unix_sockets, line)) {
      auto pos = line.find(cd.dir().string() + "/");
      if (pos == std::string::npos) continue;
      auto path = line.substr(pos);
      if (path == cd.address() || path == cd.address() + ".ttrpc") continue;
      ADD_FAILURE() << "socket left: " << path;
    }
    // Container processes: runc and process isolation put them under the pods' cgroup parent.
    for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup")) {
      fs::path ns_dir = hierarchy.path() / cd.ns();
      if (!fs::is_directory(ns_dir)) continue;
      for (const auto& entry : fs::recursive_directory_iterator(ns_dir)) {
        if (entry.path().filename() == "cgroup.procs") {
          EXPECT_EQ(Trim(ReadFile(entry.path())), "") << "processes left in " << entry.path();
        }
      }
    }
  }

  std::unique_ptr<CriEnv> env_;
  std::vector<std::string> pods_;
  std::vector<std::string> containers_;
};

}  // namespace uvmshim::cri
