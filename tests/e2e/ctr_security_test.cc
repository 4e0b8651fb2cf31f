// Seccomp and the device allowlist side by side with runc on one containerd:
// each uvm case (process, hyperv) runs the same probes as runc on the same
// containerd and must print the same thing. The image has
// /bin/syscall-probe (tests/agent/syscall_probe.c): "<probe> <errno>".
//
// Profiles: containerd's default (`ctr run --seccomp`) and Docker 20.10's
// real default, captured from a bundle's config.json written by dockerd
// (tests/fixtures/seccomp/docker-20.10-default.json), written into the spec
// with --seccomp-profile.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <regex>

#include "ctr_fixture.h"

namespace uvmshim::e2e {
namespace {

const RuntimeCase kRunc{"runc", kRuncRuntime, Isolation::kNone, ModeSelector::kNone};

constexpr const char* kSeccompProbes =
    "grep -E '^Seccomp:' /proc/self/status; "
    "syscall-probe unshare-user keyctl mount kexec_load bpf perf_event_open getpid raw:435";  // 435 = clone3

class CtrSecurity : public CtrFixture, public ::testing::TestWithParam<RuntimeCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(GetParam())) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(StartContainerd());
  }
  void TearDown() override { StopContainerd(); }
  const RuntimeCase& rc() const { return GetParam(); }

  // Runs `script` with runc and with the case's runtime; what each printed.
  // The probes write into a bind-mounted file rather than stdout: under runc,
  // `ctr run --rm` can cut the stdout of a process that exits at once (seen
  // in CI: the anchor's output ended after three lines), and this test
  // compares syscall answers, not stdout delivery (the stdio suites do that).
  std::pair<CommandResult, CommandResult> SideBySide(const std::vector<std::string>& flags, const std::string& id,
                                                     const std::string& script) {
    auto reference = RunWithProbeFile(kRunc, flags, id + "-runc", script);
    auto ours = RunWithProbeFile(rc(), flags, id, script);
    std::cout << "[ runc     ] " << reference.out << "[ " << rc().name << " ] " << ours.out;
    return {reference, ours};
  }

  CommandResult RunWithProbeFile(const RuntimeCase& runtime, std::vector<std::string> flags, const std::string& id,
                                 const std::string& script) {
    TempDir out("uvmshim-probe");
    flags.push_back("--mount");
    flags.push_back(ProbeMount(out.path()));
    auto result = CtrRun(runtime, flags, id, {"sh", "-c", "(" + script + ") >/probe-out/result 2>&1"});
    result.out = ReadProbeFile(out.path());
    return result;
  }

  static std::string ProbeMount(const std::filesystem::path& dir) {
    return "type=bind,src=" + dir.string() + ",dst=/probe-out,options=rbind:rw";
  }
  static std::string ReadProbeFile(const std::filesystem::path& dir, const std::string& name = "result") {
    std::ifstream in(dir / name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

TEST_P(CtrSecurity, ContainerdDefaultProfileDeniesLikeRunc) {
  auto [reference, ours] = SideBySide({"--rm", "--seccomp"}, "sc1", kSeccompProbes);
  ASSERT_TRUE(reference.ok()) << reference.Describe();
  EXPECT_NE(reference.out.find("Seccomp:\t2\n"), std::string::npos) << reference.out;
  EXPECT_NE(reference.out.find("unshare-user 1\n"), std::string::npos) << "runc: " << reference.out;
  EXPECT_TRUE(ours.ok()) << ours.Describe() << env().LogTail();
  EXPECT_EQ(ours.out, reference.out);
  ExpectNothingLeftOf("sc1");
}

TEST_P(CtrSecurity, ExecsGetTheFilter) {
  TempDir ours_dir("uvmshim-probe"), runc_dir("uvmshim-probe");
  ASSERT_NO_FATAL_FAILURE(
      StartDetached(rc(), "scx", {"sleep", "1000"}, {"--seccomp", "--mount", ProbeMount(ours_dir.path())}));
  ASSERT_NO_FATAL_FAILURE(
      StartDetached(kRunc, "scx-runc", {"sleep", "1000"}, {"--seccomp", "--mount", ProbeMount(runc_dir.path())}));
  auto exec = [&](const std::string& id, const std::filesystem::path& dir) {
    auto r = env().Ctr({"task", "exec", "--exec-id", "p1", id, "sh", "-c",
                        std::string("(") + kSeccompProbes + ") >/probe-out/result 2>&1"},
                       CommandOptions().WithTimeout(rc().op_timeout()));
    r.out = ReadProbeFile(dir);
    return r;
  };
  auto reference = exec("scx-runc", runc_dir.path());
  auto ours = exec("scx", ours_dir.path());
  std::cout << "[ runc     ] " << reference.out << "[ " << rc().name << " ] " << ours.out;
  ASSERT_TRUE(reference.ok()) << reference.Describe();
  EXPECT_NE(reference.out.find("Seccomp:\t2\n"), std::string::npos) << reference.out;
  EXPECT_TRUE(ours.ok()) << ours.Describe() << env().LogTail();
  EXPECT_EQ(ours.out, reference.out);
  KillAndRemove(kRunc, "scx-runc");
  KillAndRemove(rc(), "scx");
  ExpectNothingLeftOf("scx");
}

TEST_P(CtrSecurity, DockerDefaultProfileDeniesLikeRunc) {
  // Docker 20.10's default profile exactly as dockerd writes it into a
  // bundle's config.json (tests/fixtures/seccomp/; the docker suite checks the
  // file still matches what the local dockerd writes).
  const auto file = SourceDir() / "tests/fixtures/seccomp/docker-20.10-default.json";
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  auto [reference, ours] =
      SideBySide({"--rm", "--seccomp", "--seccomp-profile", file.string()}, "sc2", kSeccompProbes);
  ASSERT_TRUE(reference.ok()) << reference.Describe();
  EXPECT_NE(reference.out.find("Seccomp:\t2\n"), std::string::npos) << reference.out;
  EXPECT_NE(reference.out.find("raw:435 38\n"), std::string::npos) << "runc: " << reference.out;
  EXPECT_TRUE(ours.ok()) << ours.Describe() << env().LogTail();
  EXPECT_EQ(ours.out, reference.out);
  ExpectNothingLeftOf("sc2");
}

// mknod + open of host (or, in hyperv, guest) devices: EPERM (1) as runc;
// /dev/null, /dev/zero, /dev/ptmx open; /dev/net/tun is not refused by the
// device cgroup (the driver may still say ENODEV).
constexpr const char* kDeviceProbes =
    "mknod /dev/kvm c 10 232; mknod /dev/mem c 1 1; mknod /dev/loop0 b 7 0; mkdir -p /dev/net; "
    "mknod /dev/net/tun c 10 200; "
    "syscall-probe open:/dev/kvm open:/dev/mem open:/dev/loop0 open:/dev/null open:/dev/zero open:/dev/ptmx; "
    "syscall-probe open:/dev/net/tun | grep -v ' 1$' | sed 's/ .*/ not-EPERM/'; "
    // The utility VM's own devices (virtio ports, its disk): present only there.
    "for d in virtio-portsdev virtblk; do m=$(awk -v n=$d '$2==n{print $1}' /proc/devices); "
    "  [ -n \"$m\" ] || continue; "
    "  if [ $d = virtblk ]; then mknod /dev/x-$d b $m 0; else mknod /dev/x-$d c $m 0; mknod /dev/x-$d-1 c $m 1; fi; "
    "done; for f in /dev/x-*; do [ -e $f ] && syscall-probe open:$f; done; true";

TEST_P(CtrSecurity, DeviceNodesTheContainerMakesCannotBeOpened) {
  auto [reference, ours] = SideBySide({"--rm"}, "dev1", kDeviceProbes);
  const std::string expected_common =
      "open:/dev/kvm 1\nopen:/dev/mem 1\nopen:/dev/loop0 1\nopen:/dev/null 0\nopen:/dev/zero 0\n"
      "open:/dev/ptmx 0\nopen:/dev/net/tun not-EPERM\n";
  ASSERT_TRUE(reference.ok()) << reference.Describe();
  EXPECT_EQ(reference.out.rfind(expected_common, 0), 0u) << "runc: " << reference.out;
  EXPECT_TRUE(ours.ok()) << ours.Describe() << env().LogTail();
  EXPECT_EQ(ours.out.rfind(expected_common, 0), 0u) << ours.out;
  // Whatever VM devices exist are refused too.
  std::string rest = ours.out.substr(std::min(ours.out.size(), expected_common.size()));
  std::regex refused("open:/dev/x-[a-z0-9-]+ 1\n");
  EXPECT_TRUE(std::regex_replace(rest, refused, "").empty()) << ours.out;
  if (rc().is_hyperv()) EXPECT_NE(rest.find("open:/dev/x-virtio-portsdev 1\n"), std::string::npos) << ours.out;
  ExpectNothingLeftOf("dev1");
}

std::string CaseName(const ::testing::TestParamInfo<RuntimeCase>& info) { return info.param.name; }

std::vector<RuntimeCase> SecurityCases() {
  return {{"uvm_process", kUvmRuntime, Isolation::kProcess, ModeSelector::kAnnotation},
          {"uvm_hyperv", kUvmRuntime, Isolation::kHyperv, ModeSelector::kAnnotation}};
}

INSTANTIATE_TEST_SUITE_P(Runtimes, CtrSecurity, ::testing::ValuesIn(SecurityCases()), CaseName);

}  // namespace
}  // namespace uvmshim::e2e
