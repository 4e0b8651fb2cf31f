// `ctr run --mount type=bind,...` against runc (the reference) and the uvm
// shim in both isolation modes: host directories and files reach the
// container, "ro" is enforced, writes are on the host when the call returns,
// host edits and a second container's writes are seen, bad sources fail with
// nothing left, and removing a container never touches the host's files.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "ctr_fixture.h"

namespace uvmshim::e2e {
namespace {
namespace fs = std::filesystem;

class CtrVolume : public CtrFixture, public ::testing::TestWithParam<RuntimeCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(GetParam())) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(StartContainerd());
    host_ = std::make_unique<TempDir>("uvmshim-vol");
    fs::create_directories(vol());
    Write(vol() / "in.txt", "from-host\n");
    Write(host_->path() / "app.conf", "conf-v1\n");
  }
  void TearDown() override { StopContainerd(); }
  const RuntimeCase& rc() const { return GetParam(); }
  fs::path vol() const { return host_->path() / "vol"; }
  static std::string Mount(const fs::path& source, const std::string& destination, const std::string& mode) {
    return "type=bind,src=" + source.string() + ",dst=" + destination + ",options=rbind:" + mode;
  }
  static void Write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }
  static std::string Read(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  CommandResult Exec(const std::string& id, const std::string& exec_id, const std::string& script) {
    return env().Ctr({"task", "exec", "--exec-id", exec_id, id, "sh", "-c", script},
                     CommandOptions().WithTimeout(rc().op_timeout()));
  }

  std::unique_ptr<TempDir> host_;
};

// Polls in the container (10 s) until FILE holds TEXT: the share's attribute
// cache may show an old size for up to a second after a host edit.
std::string WaitForContent(const std::string& file, const std::string& text) {
  return "i=0; while [ $i -lt 100 ]; do [ \"$(cat " + file + " 2>/dev/null)\" = " + text +
         " ] && break; i=$((i+1)); sleep 0.1; done; cat " + file;
}

TEST_P(CtrVolume, DirectoryAndReadOnlyFileMounts) {
  auto r = CtrRunAnswer(rc(),
                  {"--rm", "--mount", Mount(vol(), "/data", "rw"), "--mount",
                   Mount(host_->path() / "app.conf", "/etc/app.conf", "ro")},
                  "vol1",
                  {"sh", "-c",
                   "cat /data/in.txt /etc/app.conf; echo written > /data/out.txt; echo changed > /etc/app.conf; "
                   "echo status=$?"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe() << env().LogTail();
  EXPECT_EQ(r.out, "from-host\nconf-v1\nstatus=1\n") << r.Describe();
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.Describe();
  EXPECT_EQ(Read(vol() / "out.txt"), "written\n");
  EXPECT_EQ(Read(host_->path() / "app.conf"), "conf-v1\n");
  ExpectNothingLeftOf("vol1");
  EXPECT_EQ(Read(vol() / "in.txt"), "from-host\n") << "the host's volume must survive the container";
}

TEST_P(CtrVolume, LiveWritesHostEditsAndASecondContainer) {
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "live1", {"sleep", "1000"},
                                        {"--mount", Mount(vol(), "/data", "rw"), "--mount", Mount(vol(), "/again", "ro")}));
  auto w = Exec("live1", "w", "echo now > /data/w.txt");
  ASSERT_TRUE(w.ok()) << w.Describe() << env().LogTail();
  EXPECT_EQ(Read(vol() / "w.txt"), "now\n") << "the write must be on the host when the call returned";

  // What the container saw comes back through the volume, not stdout: under
  // load ctr can lose a short exec's output with any runtime (its FIFO reader
  // opens in a goroutine that DeleteProcess may cancel first; runc's shim
  // included), and this test is about volumes.
  Write(vol() / "h.txt", "edited\n");
  auto h = Exec("live1", "h", WaitForContent("/again/h.txt", "edited") + " > /data/seen-h");
  EXPECT_TRUE(h.ok()) << h.Describe();
  EXPECT_EQ(Read(vol() / "seen-h"), "edited\n") << h.Describe();

  // A second container (its own sandbox until pods land) with the same source.
  auto second = CtrRun(rc(), {"--rm", "--mount", Mount(vol(), "/other", "rw")}, "live2",
                       {"sh", "-c", "echo second > /other/from-2"});
  EXPECT_TRUE(second.ok()) << second.Describe() << env().LogTail();
  auto seen = Exec("live1", "s", WaitForContent("/data/from-2", "second") + " > /data/seen-s");
  EXPECT_TRUE(seen.ok()) << seen.Describe();
  EXPECT_EQ(Read(vol() / "seen-s"), "second\n") << seen.Describe();

  KillAndRemove(rc(), "live1");
  ExpectNothingLeftOf("live1");
  ExpectNothingLeftOf("live2");
  EXPECT_EQ(Read(vol() / "w.txt"), "now\n") << "removing the container must leave the host's files";
  EXPECT_EQ(Read(vol() / "from-2"), "second\n");
}

TEST_P(CtrVolume, MissingSourceFailsAndLeavesNothing) {
  const fs::path missing = host_->path() / "no-such-dir";
  auto r = CtrRun(rc(), {"--rm", "--mount", Mount(missing, "/data", "rw")}, "miss1", {"true"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  if (rc().is_uvm()) {
    EXPECT_NE(r.err.find("destination /data): bind source " + missing.string()), std::string::npos)
        << r.Describe();
  }
  env().Ctr({"container", "delete", "miss1"});  // ctr keeps the container record when the task failed
  ExpectNothingLeftOf("miss1");
  EXPECT_FALSE(fs::exists(missing));
}

TEST_P(CtrVolume, AMountFailingInTheContainerLeavesNothing) {
  // A directory over the image's /bin/busybox file: refused while the container
  // is set up (in hyperv after the UVM booted and the share was filled).
  auto r = CtrRun(rc(), {"--rm", "--mount", Mount(vol(), "/bin/busybox", "rw")}, "fail1", {"true"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  if (rc().is_uvm()) EXPECT_NE(r.err.find("/bin/busybox"), std::string::npos) << r.Describe();
  env().Ctr({"container", "delete", "fail1"});
  ExpectNothingLeftOf("fail1");
  EXPECT_EQ(Read(vol() / "in.txt"), "from-host\n");
}

TEST_P(CtrVolume, DotDotDestinationLandsInsideTheRoot) {
  // As runc (securejoin): the destination is resolved inside the rootfs.
  const std::string name = host_->path().filename().string() + "-dotdot";
  auto r = CtrRunAnswer(rc(), {"--rm", "--mount", Mount(vol(), "/../../../" + name, "ro")}, "dotdot1",
                  {"cat", "/" + name + "/in.txt"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe() << env().LogTail();
  EXPECT_EQ(r.out, "from-host\n") << r.Describe();
  EXPECT_FALSE(fs::exists("/" + name)) << "`..` left the rootfs";
  ExpectNothingLeftOf("dotdot1");
}

TEST_P(CtrVolume, SocketSourceBindsAsRuncOrIsRefusedForAUtilityVm) {
  const fs::path socket_path = host_->path() / "host.sock";
  // The socket file stays after the descriptor is closed: enough for a bind source.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);
  auto r = CtrRunAnswer(rc(), {"--rm", "--mount", Mount(socket_path, "/host.sock", "rw")}, "sock1",
                  {"sh", "-c", "test -S /host.sock && echo socket"});
  if (rc().is_hyperv()) {
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.err.find(socket_path.string() + " is a socket: hyperv isolation shares only files and directories"),
              std::string::npos) << r.Describe();
    env().Ctr({"container", "delete", "sock1"});
  } else {
    EXPECT_EQ(r.exit_code, 0) << r.Describe() << env().LogTail();
    EXPECT_EQ(r.out, "socket\n") << r.Describe();
  }
  ExpectNothingLeftOf("sock1");
}

std::string CaseName(const ::testing::TestParamInfo<RuntimeCase>& param_info) { return param_info.param.name; }

std::vector<RuntimeCase> VolumeCases() {
  return {{"runc", kRuncRuntime, Isolation::kNone, ModeSelector::kNone},
          {"uvm_process_annotation", kUvmRuntime, Isolation::kProcess, ModeSelector::kAnnotation},
          {"uvm_hyperv_annotation", kUvmRuntime, Isolation::kHyperv, ModeSelector::kAnnotation}};
}

INSTANTIATE_TEST_SUITE_P(Runtimes, CtrVolume, ::testing::ValuesIn(VolumeCases()), CaseName);

}  // namespace
}  // namespace uvmshim::e2e
