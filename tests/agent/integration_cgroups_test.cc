// Cgroup handling on both layouts: v1 hierarchies (this host's
// /sys/fs/cgroup) and cgroup v2 (the unified mount at /sys/fs/cgroup/unified
// when present, as in a utility VM). Needs root.
#include "guest-agent/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/error.h"

namespace uvmshim::agent {
namespace {

std::string V2Root() {
  for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
    if (access((std::string(root) + "/cgroup.controllers").c_str(), F_OK) == 0) return root;
  return {};
}

// A child that joins `cgroup` (as the agent's children do) and sleeps.
pid_t StartMember(const Cgroup& cgroup) {
  auto files = cgroup.OpenProcsFiles();
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& fd : files) [[maybe_unused]] auto n = write(fd.get(), "0", 1);
    pause();
    _exit(0);
  }
  return pid;
}

void Exercise(const std::string& root, bool expect_v2) {
  std::string parent = "uvmshim-cgtest-" + std::to_string(getpid());
  std::string warning;
  OciResources resources;
  auto cgroup = Cgroup::Create(parent, "c1", resources, &warning, root);
  ASSERT_TRUE(cgroup) << warning;
  EXPECT_EQ(cgroup->is_v2(), expect_v2);
  pid_t pid = StartMember(*cgroup);
  std::vector<pid_t> pids;
  for (int i = 0; i < 200 && pids.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    pids = cgroup->Pids();
  }
  ASSERT_EQ(pids, std::vector<pid_t>{pid});
  EXPECT_FALSE(cgroup->Remove());  // still populated
  CgroupStats stats = cgroup->ReadStats();
  (void)stats;  // which controllers exist depends on the host; reading must not fail
  cgroup->KillAll(SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  bool removed = false;
  for (int i = 0; i < 100 && !removed; ++i) {
    removed = cgroup->Remove();
    if (!removed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(removed);
  for (const auto& dir : cgroup->directories()) {
    struct stat st {};
    EXPECT_NE(stat(dir.c_str(), &st), 0) << dir;
  }
  cgroup.reset();
  Cgroup::RemoveParent(parent, root);
  struct stat st {};
  EXPECT_NE(stat((root + "/" + parent).c_str(), &st), 0);
}

// The files OpenProcsFiles gives (v1 `tasks`: a thread moving itself) put
// the whole process in every hierarchy of the cgroup, and what it forks
// afterwards too: what the container's init and exec processes rely on.
void ExpectJoinMovesProcessAndDescendants(const std::string& root) {
  std::string parent = "uvmshim-cgjoin-" + std::to_string(getpid());
  std::string warning;
  auto cgroup = Cgroup::Create(parent, "c1", OciResources{}, &warning, root);
  ASSERT_TRUE(cgroup) << warning;
  auto files = cgroup->OpenProcsFiles();
  ASSERT_EQ(files.size(), cgroup->directories().size());
  int report[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& fd : files)
      if (write(fd.get(), "0", 1) != 1) _exit(3);
    pid_t grandchild = fork();
    if (grandchild == 0) {
      pause();
      _exit(0);
    }
    [[maybe_unused]] auto n = write(report[1], &grandchild, sizeof grandchild);
    pause();
    _exit(0);
  }
  close(report[1]);
  pid_t grandchild = 0;
  ASSERT_EQ(read(report[0], &grandchild, sizeof grandchild), static_cast<ssize_t>(sizeof grandchild));
  close(report[0]);
  for (const auto& dir : cgroup->directories()) {
    std::ifstream procs(dir + "/cgroup.procs");
    std::vector<pid_t> members;
    for (pid_t p; procs >> p;) members.push_back(p);
    std::sort(members.begin(), members.end());
    EXPECT_EQ(members, (std::vector<pid_t>{std::min(pid, grandchild), std::max(pid, grandchild)})) << dir;
  }
  cgroup->KillAll(SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  for (int i = 0; i < 200 && !cgroup->Pids().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  bool removed = false;
  for (int i = 0; i < 100 && !(removed = cgroup->Remove()); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(removed);
  cgroup.reset();
  Cgroup::RemoveParent(parent, root);
}

TEST(Cgroups, JoinMovesProcessAndDescendantsHostLayout) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ExpectJoinMovesProcessAndDescendants("/sys/fs/cgroup");
}

TEST(Cgroups, JoinMovesProcessAndDescendantsUnifiedV2) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string root = V2Root();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 mount";
  ExpectJoinMovesProcessAndDescendants(root);
}

TEST(Cgroups, HostLayout) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  Exercise("/sys/fs/cgroup", !V2Root().empty() && V2Root() == "/sys/fs/cgroup");
}

TEST(Cgroups, UnifiedV2) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string root = V2Root();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 mount";
  Exercise(root, true);
}

// A process that cannot join its cgroup must not start (runc fails the same
// way): the join reports the errno, and a cgroup that is gone cannot be opened.
TEST(Cgroups, AJoinThatFailsIsReportedNotIgnored) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string parent = "uvmshim-cgfail-" + std::to_string(getpid());
  std::string warning;
  auto cgroup = Cgroup::Create(parent, "c1", OciResources{}, &warning, "/sys/fs/cgroup");
  ASSERT_TRUE(cgroup) << warning;
  auto files = cgroup->OpenProcsFiles();
  ASSERT_FALSE(files.empty());
  ASSERT_TRUE(cgroup->Remove());  // empty: removed while its files are open
  pid_t pid = fork();
  if (pid == 0) _exit(JoinProcsFiles(files) != 0 ? 0 : 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "joining a removed cgroup reported success";
  try {
    cgroup->OpenProcsFiles();
    ADD_FAILURE() << "the files of a removed cgroup were opened";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("join the container's cgroup"), std::string::npos) << error.what();
  }
  cgroup.reset();
  Cgroup::RemoveParent(parent, "/sys/fs/cgroup");
}

}  // namespace
}  // namespace uvmshim::agent
