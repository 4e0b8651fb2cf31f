// Docker's real default seccomp profile: the fixture the ctr security suite
// uses (tests/fixtures/seccomp/docker-20.10-default.json) is checked against
// what the local dockerd writes into a bundle, and `docker run` with each uvm
// runtime denies the same probe syscalls with the same errno as runc.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "docker_fixture.h"

namespace uvmshim::e2e {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

json ReadJson(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

// The bundle containerd's shim was given for container `id` under dockerd's exec root.
std::optional<fs::path> BundleConfigOf(const DockerEnv& docker, const std::string& id) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(docker.exec_root(), ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (it->path().filename() == id && fs::exists(it->path() / "config.json")) return it->path() / "config.json";
  }
  return std::nullopt;
}

TEST(DockerSeccompFixture, IsWhatDockerdWritesIntoTheBundle) {
  if (auto why = MissingEngine(kDockerd)) GTEST_SKIP() << *why;
  DockerEnv docker({});
  auto run = docker.Docker({"run", "-d", kEngineImage, "sleep", "1000"});
  ASSERT_TRUE(run.ok()) << run.Describe() << docker.LogTail();
  const std::string id = run.out.substr(0, run.out.find('\n'));
  auto config = BundleConfigOf(docker, id);
  ASSERT_TRUE(config) << "no bundle for " << id << " under " << docker.exec_root();
  const json written = ReadJson(*config).at("linux").at("seccomp");
  const json fixture = ReadJson(SourceDir() / "tests/fixtures/seccomp/docker-20.10-default.json");
  EXPECT_EQ(written, fixture) << "dockerd's default profile changed; recapture the fixture from " << *config;
  EXPECT_TRUE(docker.Docker({"rm", "-f", id}).ok());
}

constexpr const char* kSeccompProbes =
    "grep -E '^Seccomp:' /proc/self/status; "
    "syscall-probe unshare-user keyctl mount kexec_load bpf perf_event_open getpid raw:435 raw:450";  // 435 = clone3 (ENOSYS in the profile); 450 = set_mempolicy_home_node: above every syscall
                                                           // the profile names, so ENOSYS from runc 1.1, not the default EPERM

class DockerSeccomp : public DockerCase {};

TEST_P(DockerSeccomp, DefaultProfileDeniesLikeRunc) {
  auto reference = Run(kRuncEngine, {"--rm"}, {"sh", "-c", kSeccompProbes});
  auto ours = Run({"--rm"}, {"sh", "-c", kSeccompProbes});
  std::cout << "[ runc ] " << reference.out << "[ " << rc().name << " ] " << ours.out;
  ASSERT_TRUE(reference.ok()) << reference.Describe();
  EXPECT_NE(reference.out.find("Seccomp:\t2\n"), std::string::npos) << reference.out;
  EXPECT_NE(reference.out.find("unshare-user 1\n"), std::string::npos) << reference.out;
  EXPECT_NE(reference.out.find("raw:435 38\n"), std::string::npos) << reference.out;
  EXPECT_NE(reference.out.find("raw:450 38\n"), std::string::npos) << reference.out;
  EXPECT_TRUE(ours.ok()) << ours.Describe() << docker().LogTail();
  EXPECT_EQ(ours.out, reference.out);
}

INSTANTIATE_TEST_SUITE_P(Runtimes, DockerSeccomp, ::testing::ValuesIn(UvmEngineCases()), EngineCaseName);

}  // namespace
}  // namespace uvmshim::e2e
