// docker-bench MODE: `docker run --rm busybox true` with uvm-runc in MODE
// (process|hyperv, or runc for an A/A check) against the same command with
// runc, interleaved on one private dockerd. Prints the figure line of
// tests/bench ("docker_run_MODE VALUE ms ANCHOR RATIO", medians) on stdout,
// samples on stderr. BENCH_RUNS samples per side (default 7).
#include <algorithm>
#include <map>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "engine_env.h"

using namespace uvmshim::e2e;

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "process";
  const std::string name = "docker_run_" + mode;
  if (mode != "process" && mode != "hyperv" && mode != "runc") {
    std::cerr << "usage: docker-bench process|hyperv|runc\n";
    return 2;
  }
  if (auto why = MissingEngine(kDockerd)) {
    std::cout << name << " skipped " << *why << "\n";
    return 0;
  }
  if (mode != "runc" && !UvmRuncBinary()) {
    std::cout << name << " skipped uvm-runc is not built\n";
    return 0;
  }
  if (mode == "hyperv" && !UvmBootFilesDir()) {
    std::cout << name << " skipped UVM boot files are not built\n";
    return 0;
  }
  const char* runs_env = std::getenv("BENCH_RUNS");
  const int runs = runs_env ? std::max(1, std::atoi(runs_env)) : 7;
  try {
    std::map<std::string, OciRuntime> runtimes;
    if (mode != "runc") runtimes["uvm-" + mode] = {*UvmRuncBinary(), {"--isolation=" + mode}};
    DockerEnv docker(runtimes);
    const std::string subject = mode == "runc" ? "runc" : "uvm-" + mode;
    auto once = [&](const std::string& runtime) {
      auto r = docker.Docker({"run", "--rm", "--runtime", runtime, kEngineImage, "true"},
                             CommandOptions().WithTimeout(std::chrono::minutes(5)));
      if (!r.ok()) throw std::runtime_error(runtime + ": " + r.Describe());
      return static_cast<double>(r.elapsed.count());
    };
    once("runc");  // warm-up: image layers, page cache
    once(subject);
    std::vector<double> anchor, measured;
    for (int i = 0; i < runs; ++i) {
      anchor.push_back(once("runc"));
      measured.push_back(once(subject));
      std::cerr << "[" << name << "] run " << i << ": runc " << anchor.back() << " ms, " << subject << " "
                << measured.back() << " ms\n";
    }
    const double a = Median(anchor), s = Median(measured);
    std::printf("%s %.4g ms %.4g %.2f\n", name.c_str(), s, a, s / a);
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
