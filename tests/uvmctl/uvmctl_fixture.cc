#include "uvmctl_fixture.h"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace uvmshim::uvmctl_test {
namespace {

std::string Join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// Kills what a cgroup directory tree still holds, then removes it (deepest first).
void RemoveCgroupTree(const fs::path& root) {
  std::error_code ec;
  for (int round = 0; round < 50; ++round) {
    bool any = false;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->path().filename() != "cgroup.procs") continue;
      std::ifstream procs(it->path());
      for (long pid; procs >> pid; any = true) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
    std::ifstream procs(root / "cgroup.procs");
    for (long pid; procs >> pid; any = true) ::kill(static_cast<pid_t>(pid), SIGKILL);
    if (!any) break;
    ::usleep(20000);
  }
  std::vector<fs::path> dirs;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_directory()) dirs.push_back(it->path());
  std::sort(dirs.rbegin(), dirs.rend());
  for (const auto& d : dirs) ::rmdir(d.c_str());
  ::rmdir(root.c_str());
}

}  // namespace

void UvmctlTest::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "uvmctl tests need root (namespaces, mounts, cgroups)";
  ASSERT_TRUE(fs::exists(UvmctlBinary())) << UvmctlBinary() << " is missing: make uvmctl";
  ASSERT_TRUE(fs::exists(BinDir() / "containerd-shim-uvm-v1")) << "make containerd-shim-uvm-v1";
  ASSERT_TRUE(fs::exists(BinDir() / "uvm-agent")) << "make uvm-agent";
  ASSERT_TRUE(fs::exists(BusyboxRootfs() / "bin" / "busybox"))
      << BusyboxRootfs() << " is missing: make uvmshim_busybox_rootfs";
  if (NeedsSandbox() && hyperv() && !BootFilesDir())
    GTEST_SKIP() << "hyperv isolation: no UVM boot image (vmlinuz + initrd.img) in " << BootFilesCandidateDir()
                 << " (build target uvm-image, or set $UVMSHIM_IMAGES)";
  tmp_ = std::make_unique<TempDir>("uvt");
  root_ = dir() / "root";
  rootfs_ = dir() / "rootfs";
  // A private copy: tests write into their rootfs, and virtiofsd shares it live.
  auto copy = RunProcess({"/bin/cp", "-a", BusyboxRootfs().string(), rootfs_.string()});
  ASSERT_EQ(copy.exit_code, 0) << copy.Describe();
}

std::string UvmctlTest::Name(const std::string& tag) {
  // mkdtemp's suffix is [A-Za-z0-9]: a valid id part, unique among concurrent tests
  // (sandbox cgroups are host-wide, named after namespace and id).
  const std::string suffix = dir().filename().string().substr(dir().filename().string().size() - 6);
  std::string name = tag + "-" + suffix + "-" + std::to_string(names_.size());
  names_.push_back(name);
  return name;
}

ProcessResult UvmctlTest::Uvmctl(const std::vector<std::string>& args, ProcessOptions options) {
  std::vector<std::string> argv = {UvmctlBinary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  options.env.push_back("UVMSHIM_ROOT=" + root_.string());
  if (options.timeout.count() == 0) options.timeout = StartTimeout();
  return RunProcess(argv, options);
}

ProcessResult UvmctlTest::UvmctlWithStdin(const std::vector<std::string>& args, std::string input) {
  ProcessOptions options;
  options.stdin_data = std::move(input);
  return Uvmctl(args, options);
}

std::unique_ptr<BackgroundProcess> UvmctlTest::UvmctlInBackground(const std::vector<std::string>& args,
                                                                 const std::string& tag, OutputSink stdout_sink) {
  std::vector<std::string> argv = {UvmctlBinary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<BackgroundProcess>(argv, std::vector<std::string>{"UVMSHIM_ROOT=" + root_.string()},
                                             dir() / tag, std::move(stdout_sink));
}

std::vector<std::string> UvmctlTest::RunArgs(const std::vector<std::string>& flags,
                                             const std::vector<std::string>& command) const {
  std::vector<std::string> args = {"run", "--isolation", isolation(), "--rootfs", rootfs_.string()};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

std::string UvmctlTest::ShellCommand(const std::vector<std::string>& args) const {
  std::string line = "env UVMSHIM_ROOT=" + ShellQuote(root_.string()) + " " + ShellQuote(UvmctlBinary());
  for (const auto& a : args) line += " " + ShellQuote(a);
  return line;
}

void UvmctlTest::RunDetached(const std::string& name, const std::vector<std::string>& flags,
                             const std::vector<std::string>& command) {
  std::vector<std::string> all = {"-d", "--name", name};
  all.insert(all.end(), flags.begin(), flags.end());
  auto r = Uvmctl(RunArgs(all, command));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_FALSE(r.output_held_open) << "run -d left its stdout/stderr open in a daemon: " << r.Describe();
  ASSERT_EQ(r.out, name + "\n") << r.Describe();
}

std::vector<std::string> TableRow(const std::string& table, const std::string& first_word) {
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> row;
    for (std::string w; words >> w;) row.push_back(w);
    if (!row.empty() && row[0] == first_word) return row;
  }
  return {};
}

std::vector<std::string> UvmctlTest::PsRow(const std::string& id) {
  auto r = Uvmctl({"ps"}, WithTimeout(30s));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  return TableRow(r.out, id);
}

std::vector<std::string> UvmctlTest::Leftovers() {
  std::vector<std::string> found;
  for (const auto& entry : EntriesBelow(root_)) found.push_back("under $UVMSHIM_ROOT: " + entry);
  for (pid_t pid : PidsReferringTo(dir()))
    found.push_back("process " + std::to_string(pid) + ": " + CommandLine(pid));
  for (const auto& m : MountsUnder(dir())) found.push_back("mount " + m);
  for (const auto& name : names_)
    for (const auto& cg : SandboxCgroups("uvmctl", name)) found.push_back("cgroup " + cg);
  return found;
}

void UvmctlTest::EndEverything() {
  for (pid_t pid : PidsReferringTo(dir())) ::kill(pid, SIGKILL);
  WaitFor([&] { return PidsReferringTo(dir()).empty(); }, 5s);
  for (const auto& name : names_)
    for (const auto& cg : SandboxCgroups("uvmctl", name)) RemoveCgroupTree(cg);
  auto mounts = MountsUnder(dir());
  std::sort(mounts.rbegin(), mounts.rend());
  for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
}

void UvmctlTest::TearDown() {
  if (!tmp_) return;
  for (const auto& name : names_) {
    if (!fs::exists(root_ / "uvmctl" / name) && !fs::exists(root_ / "bundles" / "uvmctl" / name)) continue;
    auto r = Uvmctl({"rm", "-f", name}, WithTimeout(StartTimeout()));
    EXPECT_EQ(r.exit_code, 0) << "cleanup of " << name << ": " << r.Describe();
  }
  // Processes may take a moment to be reaped after `rm -f` returned.
  std::vector<std::string> left;
  WaitFor([&] { return (left = Leftovers()).empty(); }, 5s, 200ms);
  EXPECT_TRUE(left.empty()) << "left behind by the test:\n  " << Join(left, "\n  ");
  EndEverything();
  tmp_.reset();
}

}  // namespace uvmshim::uvmctl_test
