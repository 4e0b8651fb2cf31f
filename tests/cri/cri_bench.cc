// cri-bench: pod figures through containerd's CRI plugin (tests/bench/figures/cri_*, pod_*), on a
// private containerd set up by CriEnv. Samples go to stderr; the last stdout line is
// "SUBJECT_MEDIAN ANCHOR_MEDIAN" for the figure script to emit (tests/bench/lib.sh).
//
//   cri-bench start --handler uvm-hyperv [--anchor runc] [--runs 7]
//       ms of RunPodSandbox + CreateContainer + StartContainer of one idle container (teardown
//       untimed), subject and anchor interleaved.
//   cri-bench overhead --handler uvm-hyperv [--anchor runc] [--runs 3]
//       MiB of host memory (PSS) of everything a pod with one idle container runs on the host:
//       shim(s), VMM, virtiofsd, pause and container processes.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <limits>
#include <set>
#include <thread>

#include "cri_env.h"
#include "cri_pod.h"

namespace uvmshim::cri {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Pod {
  std::string pod_id;
  std::string container_id;
};

Pod StartPod(CriEnv& env, const std::string& handler, const std::string& name) {
  env.client().set_timeout(CallTimeout(handler));
  PodOptions options;
  options.name = name;
  auto config = MakePodConfig(env, options);
  Pod pod;
  pod.pod_id = env.client().RunPodSandbox(config, handler);
  ContainerOptions container;
  container.name = "idle";
  container.command = {"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"};
  pod.container_id = env.client().CreateContainer(pod.pod_id, MakeContainerConfig(container, config), config);
  env.client().StartContainer(pod.container_id);
  return pod;
}

void RemovePod(CriEnv& env, const Pod& pod) {
  env.client().StopContainer(pod.container_id, 10);
  env.client().StopPodSandbox(pod.pod_id);
  env.client().RemoveContainer(pod.container_id);
  env.client().RemovePodSandbox(pod.pod_id);
}

long PssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == "Pss:") {
      in >> value;
      return value;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

// Every host process of the env's pods: processes referring to the env dir (shims, QEMU,
// virtiofsd, host agents) other than containerd, and processes in the pods' cgroups.
std::set<pid_t> PodProcesses(CriEnv& env) {
  std::set<pid_t> pids;
  auto containerd = env.containerd().ContainerdPid();
  for (pid_t p : e2e::PidsReferringTo(env.containerd().dir())) {
    if (!containerd || p != *containerd) pids.insert(p);
  }
  const fs::path cgroups = fs::path("/sys/fs/cgroup/memory") / env.containerd().ns();
  if (fs::is_directory(cgroups)) {
    for (const auto& entry : fs::recursive_directory_iterator(cgroups)) {
      if (entry.path().filename() != "cgroup.procs") continue;
      std::ifstream in(entry.path());
      pid_t p;
      while (in >> p) pids.insert(p);
    }
  }
  return pids;
}

double PodPssMiB(CriEnv& env) {
  long total = 0;
  for (pid_t p : PodProcesses(env)) total += PssKiB(p);
  return total / 1024.0;
}

int Run(const std::string& mode, const std::string& handler, const std::string& anchor, int runs) {
  for (const auto& h : {handler, anchor}) {
    if (auto why = MissingPrerequisite(h)) {
      std::cout << "skipped " << *why << "\n";
      return 0;
    }
  }
  CriEnv env;
  std::vector<double> subject_samples, anchor_samples;
  if (mode == "start") {
    // Warm-up: the first pod of each handler pays one-time costs (image unpack, page cache).
    RemovePod(env, StartPod(env, anchor, "warm-anchor"));
    RemovePod(env, StartPod(env, handler, "warm-subject"));
  }
  for (int i = 0; i < runs; ++i) {
    for (const auto& [h, samples] : {std::pair{anchor, &anchor_samples}, std::pair{handler, &subject_samples}}) {
      const std::string name = "p" + std::to_string(i) + (samples == &anchor_samples ? "-a" : "-s");
      auto t0 = Clock::now();
      Pod pod = StartPod(env, h, name);
      double value = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (mode == "overhead") {
        // Let the pod settle (boot-time page cache and allocations), then measure.
        std::this_thread::sleep_for(std::chrono::seconds(2));
        value = PodPssMiB(env);
      }
      samples->push_back(value);
      std::cerr << "run " << i << " " << h << ": " << value << (mode == "start" ? " ms" : " MiB") << "\n";
      RemovePod(env, pod);
    }
  }
  std::cout << Median(subject_samples) << " " << Median(anchor_samples) << "\n";
  return 0;
}

}  // namespace
}  // namespace uvmshim::cri

int main(int argc, char** argv) {
  CLI::App app{"pod figures through containerd's CRI plugin"};
  std::string mode, handler, anchor = uvmshim::cri::kRuncHandler;
  int runs = 7;
  app.add_option("mode", mode, "start | overhead")->required()->check(CLI::IsMember({"start", "overhead"}));
  app.add_option("--handler", handler, "CRI runtime handler measured")->required()
      ->check(CLI::IsMember({"runc", "uvm-process", "uvm-hyperv"}));
  app.add_option("--anchor", anchor, "CRI runtime handler of the anchor")
      ->check(CLI::IsMember({"runc", "uvm-process", "uvm-hyperv"}));
  app.add_option("--runs", runs, "samples per side")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    return uvmshim::cri::Run(mode, handler, anchor, runs);
  } catch (const std::exception& e) {
    std::cerr << "cri-bench: " << e.what() << "\n";
    return 1;
  }
}
