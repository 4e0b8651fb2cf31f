// The sandbox share on the host, with real bind mounts (root): what a
// container's Prepare puts in the share, that read-only binds are read-only
// on the host side too, that bad input leaves nothing, and that Release and
// the destructor leave no mount and never delete through one.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "container_mounts.h"
#include "mounts_under.h"
#include "oci_spec.h"
#include "sandbox_share.h"
#include "state_dir.h"

namespace uvmshim::host {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

using test_support::MountsUnder;

class SandboxShareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "bind mounts need root";
    char pattern[] = "/tmp/share-test.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    fs::create_directories(dir_ / "rootfs/bin");
    fs::create_directories(dir_ / "vol");
    std::ofstream(dir_ / "vol/in.txt") << "host\n";
    std::ofstream(dir_ / "file.conf") << "conf\n";
  }
  void TearDown() override {
    if (dir_.empty()) return;
    EXPECT_TRUE(MountsUnder(dir_).empty());
    DetachMountsUnder(dir_);
    fs::remove_all(dir_);
  }
  std::string Spec(const json& mounts) const {
    return json{{"process", {{"args", {"true"}}}}, {"mounts", mounts}}.dump();
  }
  static json Bind(const fs::path& source, const std::string& destination, const std::string& mode = "rw") {
    return {{"destination", destination}, {"type", "bind"}, {"source", source.string()}, {"options", {"rbind", mode}}};
  }
  fs::path dir_;
};

TEST_F(SandboxShareTest, PrepareBindsRootfsAndSourcesUnderGuestPaths) {
  SandboxShare share(dir_ / "state/share");
  json mounts = json::array({{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                             Bind(dir_ / "vol", "/data"), Bind(dir_ / "file.conf", "/etc/app.conf", "ro"),
                             Bind(dir_ / "vol", "/dev/shm")});
  auto guest = share.Prepare("c1", dir_ / "rootfs", Spec(mounts));
  EXPECT_EQ(guest.rootfs, "/run/share/c1@1/rootfs");
  auto spec = json::parse(guest.spec_json);
  EXPECT_EQ(spec["mounts"][0]["source"], "proc");
  EXPECT_EQ(spec["mounts"][1]["source"], "/run/share/c1@1/m1");
  EXPECT_EQ(spec["mounts"][2]["source"], "/run/share/c1@1/m2");
  EXPECT_EQ(spec["mounts"][3]["source"], kGuestSandboxShmPath);
  EXPECT_TRUE(fs::exists(dir_ / "state/share/c1@1/rootfs/bin"));
  std::string text;
  std::getline(std::ifstream(dir_ / "state/share/c1@1/m1/in.txt") >> std::ws, text);
  EXPECT_EQ(text, "host");
  // Read-only on the host side as well.
  EXPECT_LT(::open((dir_ / "state/share/c1@1/m2").c_str(), O_WRONLY), 0);
  EXPECT_EQ(errno, EROFS);
  // Writable where asked: writes land in the source.
  std::ofstream(dir_ / "state/share/c1@1/m1/out.txt") << "x";
  EXPECT_TRUE(fs::exists(dir_ / "vol/out.txt"));

  share.Release("c1");
  share.Release("c1");  // idempotent
  EXPECT_FALSE(fs::exists(dir_ / "state/share/c1@1"));
  EXPECT_TRUE(fs::exists(dir_ / "vol/in.txt")) << "Release must never delete through a mount";
  EXPECT_TRUE(fs::exists(dir_ / "rootfs/bin"));
}

// A container re-created with a released one's id gets an entry the guest never saw: its virtiofs
// caches names for ~1 s, and a cached dentry of the removed entry, once revalidated, takes the
// agent's rootfs mount down with it (sandbox_share.h).
TEST_F(SandboxShareTest, EveryPrepareGetsAnEntryNeverUsedBefore) {
  SandboxShare share(dir_ / "state/share");
  std::set<std::string> rootfs_paths;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto guest = share.Prepare("app", dir_ / "rootfs", Spec(json::array({Bind(dir_ / "vol", "/data")})));
    EXPECT_TRUE(rootfs_paths.insert(guest.rootfs).second) << guest.rootfs << " was used before";
    EXPECT_EQ(ShareEntriesOf(share.dir(), "app").size(), 1u);
    share.Release("app");
    EXPECT_TRUE(ShareEntriesOf(share.dir(), "app").empty());
  }
  // An entry left by an earlier owner (an adopted share) is skipped, not reused; another
  // container's id never matches.
  fs::create_directory(share.dir() / "app@4");
  fs::create_directory(share.dir() / "app.4");
  auto guest = share.Prepare("app", dir_ / "rootfs", Spec(json::array()));
  EXPECT_EQ(guest.rootfs, "/run/share/app@5/rootfs");
  EXPECT_EQ(ShareEntriesOf(share.dir(), "app").size(), 2u);
  EXPECT_TRUE(ShareEntriesOf(share.dir(), "ap").empty());
  share.Release("app");
  EXPECT_FALSE(fs::exists(share.dir() / "app@5"));
  EXPECT_TRUE(fs::exists(share.dir() / "app@4")) << "an entry this share did not make is not its to remove";
  fs::remove(share.dir() / "app@4");
  fs::remove(share.dir() / "app.4");
}

TEST_F(SandboxShareTest, DestructorUnmountsEverythingAndKeepsHostFiles) {
  {
    SandboxShare share(dir_ / "state/share");
    share.Prepare("c1", dir_ / "rootfs", Spec(json::array({Bind(dir_ / "vol", "/data")})));
    share.Prepare("c2", dir_ / "rootfs", Spec(json::array({Bind(dir_ / "vol", "/data")})));
    EXPECT_FALSE(MountsUnder(dir_ / "state").empty());
  }
  EXPECT_TRUE(MountsUnder(dir_ / "state").empty());
  EXPECT_FALSE(fs::exists(dir_ / "state/share"));
  EXPECT_TRUE(fs::exists(dir_ / "vol/in.txt"));
}

TEST_F(SandboxShareTest, BadSourcesFailNamingTheMountAndLeaveNothing) {
  SandboxShare share(dir_ / "state/share");
  const fs::path socket_path = dir_ / "s.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  struct Case {
    json mounts;
    std::string message;
  };
  const std::vector<Case> cases = {
      {json::array({Bind(dir_ / "vol", "/ok"), Bind(dir_ / "missing", "/data")}),
       "mounts[1] (destination /data): bind source " + (dir_ / "missing").string() + ": No such file or directory"},
      {json::array({Bind(socket_path, "/s.sock")}), "is a socket: hyperv isolation shares only files and directories"},
      {json::array({Bind("/dev/null", "/null")}), "is a character device"},
      {json::array({Bind(dir_ / "vol", "relative")}), "mounts[0].destination \"relative\": must be an absolute path"},
      {json::array({Bind("vol", "/data")}), "must be an absolute host path"},
      {json::array({{{"destination", "/dev"}, {"type", "devtmpfs"}, {"source", "devtmpfs"}}}),
       "mounts[0] (destination /dev): type \"devtmpfs\" is not supported in hyperv isolation"},
      {json::array({{{"destination", "/x"}, {"type", "overlay"}, {"source", "overlay"},
                     {"options", {"lowerdir=/"}}}}),
       "type \"overlay\" is not supported"},
  };
  for (const auto& c : cases) {
    try {
      share.Prepare("c1", dir_ / "rootfs", Spec(c.mounts));
      ADD_FAILURE() << "no error for " << c.mounts.dump();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    }
    EXPECT_TRUE(ShareEntriesOf(dir_ / "state/share", "c1").empty());
    EXPECT_EQ(MountsUnder(dir_ / "state").size(), 2u) << "only the share and its staging stay mounted";
  }
  ::close(fd);
  EXPECT_THROW(share.Prepare("c1", dir_ / "no-rootfs", Spec(json::array())), std::invalid_argument);
  EXPECT_THROW(share.Prepare("../x", dir_ / "rootfs", Spec(json::array())), std::invalid_argument);
  EXPECT_THROW(share.Prepare("c1", dir_ / "rootfs", "{not json"), std::invalid_argument);
  EXPECT_EQ(MountsUnder(dir_ / "state").size(), 2u);
}

TEST_F(SandboxShareTest, ProcessIsolationAcceptsSocketsAndOtherTypesAsRunc) {
  EXPECT_EQ(BindMountsOf(json::parse(Spec(json::array({Bind("/dev/null", "/null")}))), false).size(), 1u);
  EXPECT_NO_THROW(BindMountsOf(
      json::parse(Spec(json::array({{{"destination", "/dev"}, {"type", "devtmpfs"}, {"source", "devtmpfs"}}}))), false));
  // The kernel's own file systems are fine in a utility VM.
  EXPECT_NO_THROW(BindMountsOf(json::parse(BuildSpecJson({})), true));
}

TEST_F(SandboxShareTest, RemoveStateDirDetachesBeforeRemoving) {
  auto share = std::make_unique<SandboxShare>(dir_ / "state/share");
  share->Prepare("c1", dir_ / "rootfs", Spec(json::array({Bind(dir_ / "vol", "/data")})));
  // As a killed shim: its mounts stay. Kept reachable from a static so the
  // leak checker does not report the deliberate non-destruction.
  static SandboxShare* killed_shims_share = nullptr;
  killed_shims_share = share.release();
  EXPECT_EQ(RemoveStateDir(dir_ / "state"), "");
  EXPECT_FALSE(fs::exists(dir_ / "state"));
  EXPECT_TRUE(fs::exists(dir_ / "vol/in.txt")) << "the host volume was deleted through the share";
}

TEST_F(SandboxShareTest, OwnedDirIsPrivateAndGoesWithItsParentOnceEmpty) {
  {
    OwnedDir first(dir_ / "ns" / "a");
    OwnedDir second(dir_ / "ns" / "b", EmptyParent::kRemove);
    EXPECT_EQ(fs::status(first.path()).permissions() & fs::perms::all, fs::perms::owner_all);
    std::ofstream(first.path() / "state.json") << "{}";
    first.Remove();
    EXPECT_FALSE(fs::exists(dir_ / "ns" / "a"));
    EXPECT_TRUE(fs::exists(dir_ / "ns")) << "removed while another sandbox's dir was in it";
  }
  EXPECT_FALSE(fs::exists(dir_ / "ns"));
  {
    OwnedDir sockets(dir_ / "sockets" / "x", EmptyParent::kKeep);
  }
  EXPECT_TRUE(fs::exists(dir_ / "sockets"));
  EXPECT_FALSE(fs::exists(dir_ / "sockets" / "x"));
}

TEST(ParseVolume, AcceptsHostDestAndMode) {
  auto v = ParseVolume("/a:/b:ro");
  EXPECT_EQ(v.source, "/a");
  EXPECT_EQ(v.destination, "/b");
  EXPECT_TRUE(v.readonly);
  EXPECT_FALSE(ParseVolume("/a:/b").readonly);
  EXPECT_FALSE(ParseVolume("/a:/b:rw").readonly);
  for (const char* bad : {"/a", "a:/b", "/a:b", "/a:/b:x", "/a:/b:ro:z", ":/b"})
    EXPECT_THROW(ParseVolume(bad), std::invalid_argument) << bad;
}

TEST(BuildSpecJson, VolumesBecomeRbindMounts) {
  SpecOptions options;
  options.volumes = {{"/h", "/c", true}};
  auto spec = json::parse(BuildSpecJson(options));
  auto last = spec["mounts"].back();
  EXPECT_EQ(last["source"], "/h");
  EXPECT_EQ(last["destination"], "/c");
  EXPECT_EQ(last["type"], "bind");
  EXPECT_EQ(last["options"], json({"rbind", "ro"}));
}

}  // namespace
}  // namespace uvmshim::host
