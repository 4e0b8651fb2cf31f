// `uvmctl run -v HOST:DEST[:ro]` in both isolation modes: host directories
// and files reach the container (through the sandbox share in a utility VM),
// read-only is enforced, writes and host edits are seen at once, destinations
// resolve inside the container root (`..`, symlinks of the image), and bad
// sources fail clearly with nothing left (the fixture's TearDown checks for
// mounts, state and processes).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "uvmctl_fixture.h"

namespace uvmshim::uvmctl_test {
namespace {

using VolumeTest = UvmctlTest;
using VolumeValidationTest = UvmctlValidationTest;

void WriteFile(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Polls inside the container (10 s) until FILE holds TEXT, then prints it:
// an attribute cache of the share may hold an old size for up to a second.
std::string WaitForContent(const std::string& file, const std::string& text) {
  return "i=0; while [ $i -lt 100 ]; do [ \"$(cat " + file + " 2>/dev/null)\" = " + text +
         " ] && break; i=$((i+1)); sleep 0.1; done; cat " + file;
}

TEST_P(VolumeTest, DirectoryAndReadOnlyFileVolumes) {
  const fs::path vol = dir() / "vol";
  fs::create_directories(vol);
  WriteFile(vol / "in.txt", "from-host\n");
  WriteFile(dir() / "app.conf", "conf-v1\n");
  auto r = Uvmctl(RunArgs({"-v", vol.string() + ":/data", "-v", (dir() / "app.conf").string() + ":/etc/app.conf:ro"},
                          {"sh", "-c",
                           "cat /data/in.txt /etc/app.conf; echo written > /data/out.txt; "
                           "echo changed > /etc/app.conf; echo status=$?"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "from-host\nconf-v1\nstatus=1\n") << r.Describe();
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.Describe();
  EXPECT_EQ(ReadFile(vol / "out.txt"), "written\n");
  EXPECT_EQ(ReadFile(dir() / "app.conf"), "conf-v1\n");
  EXPECT_EQ(ReadFile(vol / "in.txt"), "from-host\n") << "the host's volume must survive the container";
}

TEST_P(VolumeTest, WritesAndHostEditsAreSeenAtOnceThroughTwoMountsOfOneSource) {
  const fs::path vol = dir() / "vol";
  fs::create_directories(vol);
  const std::string name = Name("live");
  ASSERT_NO_FATAL_FAILURE(
      RunDetached(name, {"-v", vol.string() + ":/data", "-v", vol.string() + ":/again:ro"}, {"sleep", "1000"}));
  auto w = Uvmctl({"exec", name, "--", "sh", "-c", "echo now > /data/w.txt"}, WithTimeout(60s));
  ASSERT_EQ(w.exit_code, 0) << w.Describe();
  EXPECT_EQ(ReadFile(vol / "w.txt"), "now\n") << "the write must be on the host when the call returned";

  WriteFile(vol / "h.txt", "edited\n");
  auto h = Uvmctl({"exec", name, "--", "sh", "-c", WaitForContent("/again/h.txt", "edited")}, WithTimeout(60s));
  EXPECT_EQ(h.exit_code, 0) << h.Describe();
  EXPECT_EQ(h.out, "edited\n") << h.Describe();
  auto again = Uvmctl({"exec", name, "--", "sh", "-c", "cat /again/w.txt; touch /again/x"}, WithTimeout(60s));
  EXPECT_EQ(again.out, "now\n") << again.Describe();
  EXPECT_NE(again.err.find("Read-only file system"), std::string::npos) << again.Describe();

  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
  EXPECT_EQ(ReadFile(vol / "w.txt"), "now\n") << "removing the container must leave the host's files";
  EXPECT_EQ(ReadFile(vol / "h.txt"), "edited\n");
}

TEST_P(VolumeTest, DestinationsResolveInsideTheRoot) {
  const fs::path vol = dir() / "vol";
  fs::create_directories(vol);
  WriteFile(vol / "in.txt", "inside\n");
  // Symlinks of the image that point out of it, absolutely and through "..":
  // as with runc, the mounts land under the rootfs, never on the host's path.
  const fs::path outside = dir() / "outside";
  fs::create_directories(outside);
  fs::create_symlink(outside, rootfs() / "abs-link");
  fs::create_symlink("../../../../../../../../../../.." + outside.string(), rootfs() / "rel-link");
  const std::string escape = "/../../../../" + dir().filename().string() + "-dotdot";
  auto r = Uvmctl(RunArgs({"-v", vol.string() + ":/abs-link/a", "-v", vol.string() + ":/rel-link/b", "-v",
                           vol.string() + ":" + escape},
                          {"sh", "-c",
                           "cat /abs-link/a/in.txt " + outside.string() + "/b/in.txt /" +
                               dir().filename().string() + "-dotdot/in.txt"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "inside\ninside\ninside\n") << r.Describe();
  EXPECT_FALSE(fs::exists(outside / "a")) << "a mount point was made outside the rootfs";
  EXPECT_FALSE(fs::exists(outside / "b")) << "a mount point was made outside the rootfs";
  EXPECT_FALSE(fs::exists("/" + dir().filename().string() + "-dotdot")) << "`..` left the rootfs";
  EXPECT_TRUE(fs::is_directory(rootfs() / outside.relative_path() / "a"));
}

TEST_P(VolumeTest, SocketSourceBindsOnTheHostAndIsRefusedForAUtilityVm) {
  const fs::path socket_path = dir() / "host.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  auto r = Uvmctl(RunArgs({"-v", socket_path.string() + ":/host.sock"}, {"sh", "-c", "test -S /host.sock && echo socket"}));
  ::close(fd);
  if (hyperv()) {
    EXPECT_EQ(r.exit_code, 125) << r.Describe();
    EXPECT_NE(r.err.find(socket_path.string() + " is a socket"), std::string::npos) << r.Describe();
    EXPECT_NE(r.err.find("only files and directories"), std::string::npos) << r.Describe();
  } else {
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(r.out, "socket\n") << r.Describe();
  }
}

TEST_P(VolumeTest, DevShmBindIsTheSandboxsMemoryInAUtilityVm) {
  const fs::path shm = dir() / "shm";
  fs::create_directories(shm);
  WriteFile(shm / "host-file", "x");
  auto r = Uvmctl(RunArgs({"-v", shm.string() + ":/dev/shm"},
                          {"sh", "-c", "grep ' /dev/shm ' /proc/mounts | tail -1 | cut -d' ' -f3; ls /dev/shm; "
                                       "echo y > /dev/shm/from-container"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  if (hyperv()) {
    // One guest tmpfs per sandbox (pods-design item 4) on top of the spec's own
    // /dev/shm tmpfs, not the host directory.
    EXPECT_EQ(r.out, "tmpfs\n") << r.Describe();
    EXPECT_FALSE(fs::exists(shm / "from-container"));
  } else {
    EXPECT_NE(r.out.find("host-file"), std::string::npos) << r.Describe();
    EXPECT_TRUE(fs::exists(shm / "from-container"));
  }
}

TEST_P(VolumeTest, TheContainerSeesItsDestinationsOnlyNeverTheShare) {
  const fs::path vol = dir() / "vol";
  fs::create_directories(vol);
  auto r = Uvmctl(RunArgs({"-v", vol.string() + ":/data"},
                          {"sh", "-c", "ls /run/share 2>&1; grep -c ' /data ' /proc/self/mountinfo; "
                                       "grep -c -e virtiofs -e ' /run' /proc/self/mountinfo; true"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  // hyperv: the rootfs and /data are the only mounts of the share (virtiofs) left in
  // the container's namespace; process: nothing of virtiofs or /run at all.
  EXPECT_EQ(r.out, std::string("ls: /run/share: No such file or directory\n1\n") + (hyperv() ? "2\n" : "0\n"))
      << r.Describe();
}

TEST_P(VolumeValidationTest, MissingSourceIsRefused) {
  auto r = Uvmctl(RunArgs({"-v", (dir() / "no-such-dir").string() + ":/data"}, {"true"}));
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  EXPECT_NE(r.err.find((dir() / "no-such-dir").string()), std::string::npos) << r.Describe();
  EXPECT_TRUE(EntriesBelow(root()).empty()) << "something was started under " << root();
}

TEST_P(VolumeValidationTest, MalformedVolumesAreRefused) {
  for (const std::string bad : {"relative:/data", "/tmp", "/tmp:data", "/tmp:/data:rx", "/tmp:/data:ro:x"}) {
    auto r = Uvmctl(RunArgs({"-v", bad}, {"true"}));
    EXPECT_EQ(r.exit_code, 125) << r.Describe();
    EXPECT_NE(r.err.find("-v \"" + bad + "\""), std::string::npos) << r.Describe();
  }
  EXPECT_TRUE(EntriesBelow(root()).empty()) << "something was started under " << root();
}

UVMCTL_INSTANTIATE(VolumeTest);
UVMCTL_INSTANTIATE(VolumeValidationTest);

}  // namespace
}  // namespace uvmshim::uvmctl_test
