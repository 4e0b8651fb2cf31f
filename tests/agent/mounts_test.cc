#include "guest-agent/mounts.h"

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace uvmshim::agent {
namespace {

TEST(MountOptions, SplitsFlagsPropagationAndData) {
  auto o = ParseMountOptions({"nosuid", "noexec", "ro", "mode=755", "size=65536k", "rprivate", "rbind"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC | MS_RDONLY));
  EXPECT_EQ(o.data, "mode=755,size=65536k");
  ASSERT_EQ(o.propagation.size(), 1u);
  EXPECT_EQ(o.propagation[0], static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_TRUE(o.bind);
  EXPECT_TRUE(o.recursive_bind);
  auto rw = ParseMountOptions({"ro", "rw"});
  EXPECT_EQ(rw.flags, 0u);
}

class ResolveInRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/resolve-test.XXXXXX";
    root_ = mkdtemp(pattern);
    std::filesystem::create_directories(root_ + "/real/dir");
    std::filesystem::create_symlink("/real", root_ + "/abs");
    std::filesystem::create_symlink("real/dir", root_ + "/rel");
    std::filesystem::create_symlink("../../../../etc", root_ + "/escape");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(ResolveInRootTest, FollowsLinksInsideTheRoot) {
  EXPECT_EQ(ResolveInRoot(root_, "/abs/dir"), root_ + "/real/dir");
  EXPECT_EQ(ResolveInRoot(root_, "/rel/x"), root_ + "/real/dir/x");
  EXPECT_EQ(ResolveInRoot(root_, "/missing/y"), root_ + "/missing/y");
}

TEST_F(ResolveInRootTest, NeverLeavesTheRoot) {
  EXPECT_EQ(ResolveInRoot(root_, "/escape/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(ResolveInRoot(root_, "/../../x"), root_ + "/x");
  EXPECT_EQ(ResolveInRoot(root_, "../x"), root_ + "/x");
  EXPECT_EQ(ResolveInRoot(root_, "/real/../../../real/dir/.."), root_ + "/real");
}

TEST_F(ResolveInRootTest, AbsoluteLinksRestartAtTheRootNotTheHost) {
  std::filesystem::create_symlink("/tmp", root_ + "/hosttmp");  // the host's /tmp exists; the root's does not
  EXPECT_EQ(ResolveInRoot(root_, "/hosttmp/x"), root_ + "/tmp/x");
  std::filesystem::create_symlink("/abs/../..", root_ + "/chain");  // a link through a link, then above root
  EXPECT_EQ(ResolveInRoot(root_, "/chain/y"), root_ + "/y");
}

TEST_F(ResolveInRootTest, DotDotAfterALinkLeavesTheLinksTarget) {
  // As the kernel does: ".." after "rel" (-> real/dir) is "real", not the root.
  EXPECT_EQ(ResolveInRoot(root_, "/rel/../z"), root_ + "/real/z");
}

TEST_F(ResolveInRootTest, LinkLoopsFailWithEloop) {
  std::filesystem::create_symlink("loop-b", root_ + "/loop-a");
  std::filesystem::create_symlink("loop-a", root_ + "/loop-b");
  std::filesystem::create_symlink("self/x", root_ + "/self");
  for (const char* path : {"/loop-a", "/loop-b/x", "/self"}) {
    try {
      ResolveInRoot(root_, path);
      ADD_FAILURE() << path << ": no error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("Too many levels of symbolic links"), std::string::npos) << e.what();
    }
  }
}

TEST_F(ResolveInRootTest, MissingTailIsKeptLiterally) {
  // A link whose target does not exist yet still resolves inside the root
  // (the mount point is created there).
  std::filesystem::create_symlink("/nowhere/deep", root_ + "/dangling");
  EXPECT_EQ(ResolveInRoot(root_, "/dangling/f"), root_ + "/nowhere/deep/f");
}

}  // namespace
}  // namespace uvmshim::agent
