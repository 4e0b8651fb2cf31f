// The runtimes the Docker and Podman cases run against, one private engine
// per test: runc (the control) and uvm-runc in process and hyperv isolation,
// declared the way the README tells users to (daemon.json runtimeArgs,
// podman --runtime --runtime-flag).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine_env.h"

namespace uvmshim::e2e {

struct EngineCase {
  std::string name;     // test-name suffix
  std::string runtime;  // daemon.json runtime name
  std::string isolation;  // "" (runc), process, hyperv

  bool is_uvm() const { return !isolation.empty(); }
  bool is_hyperv() const { return isolation == "hyperv"; }
  // Generous for TCG boots here (no KVM), tight enough to catch hangs.
  std::chrono::milliseconds op_timeout() const { return is_hyperv() ? 240s : 60s; }
};
inline std::ostream& operator<<(std::ostream& os, const EngineCase& c) { return os << c.name; }

inline const EngineCase kRuncEngine{"runc", "runc", ""};

inline std::vector<EngineCase> AllEngineCases() {
  return {kRuncEngine, {"uvm_process", "uvm-process", "process"}, {"uvm_hyperv", "uvm-hyperv", "hyperv"}};
}
inline std::vector<EngineCase> UvmEngineCases() {
  return {{"uvm_process", "uvm-process", "process"}, {"uvm_hyperv", "uvm-hyperv", "hyperv"}};
}
inline std::string EngineCaseName(const ::testing::TestParamInfo<EngineCase>& info) { return info.param.name; }

// uvm-runc as daemon.json names it for one isolation mode.
inline OciRuntime UvmRuncRuntime(const std::string& isolation) {
  return {UvmRuncBinary().value_or("/nonexistent/uvm-runc"), {"--isolation=" + isolation}};
}

inline std::optional<std::string> MissingFor(const EngineCase& c, const char* engine_binary) {
  if (auto why = MissingEngine(engine_binary)) return why;
  if (!c.is_uvm()) return std::nullopt;
  if (!UvmRuncBinary()) return "uvm-runc is not built yet (" + (BuildDir() / "bin/uvm-runc").string() + ")";
  if (c.is_hyperv() && !UvmBootFilesDir()) return std::string("UVM boot files are not built yet");
  return std::nullopt;
}

// A private dockerd with both uvm runtimes declared.
inline std::unique_ptr<DockerEnv> StartDockerWithUvmRuntimes() {
  std::map<std::string, OciRuntime> runtimes;
  if (UvmRuncBinary()) {
    runtimes["uvm-process"] = UvmRuncRuntime("process");
    runtimes["uvm-hyperv"] = UvmRuncRuntime("hyperv");
  }
  return std::make_unique<DockerEnv>(runtimes);
}

// Engine output without its trailing newline (and spaces).
inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class DockerCase : public ::testing::TestWithParam<EngineCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingFor(GetParam(), kDockerd)) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(docker_ = StartDockerWithUvmRuntimes());
  }
  void TearDown() override { docker_.reset(); }
  const EngineCase& rc() const { return GetParam(); }
  DockerEnv& docker() { return *docker_; }

  // docker run --runtime R [flags] IMAGE cmd...
  CommandResult Run(const EngineCase& c, const std::vector<std::string>& flags, const std::vector<std::string>& cmd,
                    CommandOptions options = {}) {
    std::vector<std::string> args{"run", "--runtime", c.runtime};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(kEngineImage);
    args.insert(args.end(), cmd.begin(), cmd.end());
    if (options.timeout == CommandOptions{}.timeout) options.timeout = c.op_timeout();
    return docker_->Docker(args, options);
  }
  CommandResult Run(const std::vector<std::string>& flags, const std::vector<std::string>& cmd,
                    CommandOptions options = {}) {
    return Run(rc(), flags, cmd, std::move(options));
  }

 private:
  std::unique_ptr<DockerEnv> docker_;
};

}  // namespace uvmshim::e2e
