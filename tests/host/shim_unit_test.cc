#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sandbox_state.h"
#include "shim/rootfs_mount.h"
#include "shim/shim_args.h"
#include "shim/stdio_files.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace uvmshim;

TEST(ShimArgs, AcceptsGoFlagSyntax) {
  auto args = shim::ParseShimArgs({"-namespace", "k8s.io", "--address=/run/c.sock", "-publish-binary",
                                   "/usr/bin/containerd", "-id", "abc", "-debug", "start"});
  EXPECT_EQ(args.ns, "k8s.io");
  EXPECT_EQ(args.address, "/run/c.sock");
  EXPECT_EQ(args.publish_binary, "/usr/bin/containerd");
  EXPECT_EQ(args.id, "abc");
  EXPECT_TRUE(args.debug);
  EXPECT_EQ(args.action, "start");
  auto daemon = shim::DaemonArgs(args);
  auto reparsed = shim::ParseShimArgs(daemon);
  EXPECT_EQ(reparsed.ns, "k8s.io");
  EXPECT_EQ(reparsed.id, "abc");
  EXPECT_EQ(reparsed.action, "");
}

TEST(ShimArgs, RejectsWhatItDoesNotKnow) {
  EXPECT_THROW(shim::ParseShimArgs({"-bogus", "x"}), std::invalid_argument);
  EXPECT_THROW(shim::ParseShimArgs({"-id"}), std::invalid_argument);
  EXPECT_THROW(shim::ParseShimArgs({"-id", "x", "explode"}), std::invalid_argument);
  EXPECT_THROW(shim::ParseShimArgs({"start", "delete"}), std::invalid_argument);
}

TEST(RootfsMount, OptionsSplitIntoFlagsAndData) {
  auto overlay = shim::ToMountArgs({"overlay", "overlay", {"lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "ro"}});
  EXPECT_EQ(overlay.flags, static_cast<unsigned long>(MS_RDONLY));
  EXPECT_EQ(overlay.data, "lowerdir=/a:/b,upperdir=/u,workdir=/w");
  auto bind = shim::ToMountArgs({"bind", "/src", {"rbind", "rw", "nosuid"}});
  EXPECT_EQ(bind.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_NOSUID));
  EXPECT_EQ(bind.data, "");
}

class TempDirTest : public ::testing::Test {
 protected:
  uvmshim::testing::TempDir temp_{"uvmshim-host-test"};
  const fs::path dir_ = temp_.path();
};

using StdioFilesTest = TempDirTest;

TEST_F(StdioFilesTest, WritesReachFifoReadersAndFiles) {
  const auto out = dir_ / "out";
  ASSERT_EQ(::mkfifo(out.c_str(), 0600), 0);
  int reader = ::open(out.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  const auto err = dir_ / "err.log";
  char buffer[16] = {};
  {
    shim::StdioFiles files({"", out.string(), "file://" + err.string(), false}, "c1", "ns");
    ASSERT_GE(files.stdout_fd(), 0);
    ASSERT_EQ(::write(files.stdout_fd(), "hello", 5), 5);
    ASSERT_EQ(::write(files.stderr_fd(), "oops", 4), 4);
    // Read before the close: CloseOutputs waits for a FIFO's client to drain it (stdio_fifo_drain_test).
    EXPECT_EQ(::read(reader, buffer, sizeof buffer), 5);
    files.CloseOutputs();
  }
  EXPECT_EQ(std::string(buffer, 5), "hello");
  EXPECT_EQ(::read(reader, buffer, sizeof buffer), 0) << "EOF once the shim closed its end";
  ::close(reader);
  std::ifstream in(err);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "oops");
}

TEST_F(StdioFilesTest, MissingPathIsAClearError) {
  try {
    shim::StdioFiles files({(dir_ / "nope").string(), "", "", false}, "c1", "ns");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
}

using SandboxStateTest = TempDirTest;

TEST_F(SandboxStateTest, RoundTripsAndIsFoundById) {
  ::setenv("UVMSHIM_ROOT", dir_.c_str(), 1);
  host::SandboxState state;
  state.id = "web1";
  state.ns = "default";
  state.isolation = "hyperv";
  state.shim_pid = 42;
  state.created_unix = 1700000000;
  host::WriteState(host::StateDir("default", "web1"), state);
  auto read = host::ReadState(host::StateDir("default", "web1"));
  ASSERT_TRUE(read);
  EXPECT_EQ(read->isolation, "hyperv");
  EXPECT_EQ(read->shim_pid, 42);
  EXPECT_EQ(host::FindState("web1").ns, "default");
  EXPECT_THROW(host::FindState("web2"), std::runtime_error);
  state.ns = "other";
  host::WriteState(host::StateDir("other", "web1"), state);
  EXPECT_THROW(host::FindState("web1"), std::runtime_error) << "ambiguous across namespaces";
  EXPECT_EQ(host::FindState("web1", "other").id, "web1");
  ::unsetenv("UVMSHIM_ROOT");
}
