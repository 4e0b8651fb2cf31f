// `uvmctl run` in the foreground: stdio, exit status, process options, large
// output, background children, and input validation. Every case runs in both
// isolation modes.
#include <signal.h>
#include <sys/utsname.h>

#include <fstream>

#include <random>

#include "uvmctl_fixture.h"

namespace uvmshim::uvmctl_test {
namespace {

using RunTest = UvmctlTest;
using RunValidationTest = UvmctlValidationTest;

TEST_P(RunTest, StdoutAndStderrArriveSeparately) {
  auto r = Uvmctl(RunArgs({}, {"sh", "-c", "echo to-out; echo to-err >&2; echo more-out"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "to-out\nmore-out\n") << r.Describe();
  EXPECT_EQ(r.err, "to-err\n") << r.Describe();
}

TEST_P(RunTest, ExitStatusPropagates) {
  auto r = Uvmctl(RunArgs({}, {"sh", "-c", "exit 7"}));
  EXPECT_EQ(r.exit_code, 7) << r.Describe();
  EXPECT_FALSE(r.timed_out);
}

TEST_P(RunTest, MissingCommandExits127NamingIt) {
  auto r = Uvmctl(RunArgs({}, {"no-such-command-xyz", "arg"}));
  EXPECT_EQ(r.exit_code, 127) << r.Describe();
  EXPECT_NE(r.err.find("no-such-command-xyz"), std::string::npos) << r.Describe();
  EXPECT_EQ(r.out, "") << r.Describe();
}

// A 122-byte static x86-64 ELF whose entry point is `ud2`: the kernel forces
// SIGILL on it, which kills even the pid 1 of a PID namespace.
void WriteUd2Binary(const fs::path& path) {
  static const unsigned char kElf[] = {
      0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x02, 0x00, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x7a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x0b};
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(kElf), sizeof kElf);
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
}

TEST_P(RunTest, KilledBySignalExits128PlusN) {
  WriteUd2Binary(rootfs() / "bin" / "ud2");
  auto r = Uvmctl(RunArgs({}, {"/bin/ud2"}));
  EXPECT_EQ(r.exit_code, 128 + SIGILL) << r.Describe();
}

// `sh -c 'kill -9 $$'` cannot end the container's init: the kernel drops
// signals a PID namespace's pid 1 has no handler for when they come from inside
// the namespace (runc containers behave the same). A child shell dies of it.
TEST_P(RunTest, Pid1IgnoresItsOwnSigkillButAChildDies) {
  auto r = Uvmctl(RunArgs({}, {"sh", "-c", "kill -9 $$; sh -c 'kill -9 $$'; echo child=$?"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "child=137\n") << r.Describe();
}

TEST_P(RunTest, StdinIsRelayedUntilEof) {
  auto r = UvmctlWithStdin(RunArgs({"-i"}, {"cat"}), "abc\n");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "abc\n") << r.Describe();
}

TEST_P(RunTest, LargeStdinArrivesWhole) {
  std::string input(3 * 1024 * 1024 + 17, '\0');
  std::mt19937 random(42);
  for (auto& c : input) c = static_cast<char>(random());
  auto r = UvmctlWithStdin(RunArgs({"-i"}, {"sha256sum"}), input);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, Sha256Hex(input) + "  -\n") << r.Describe();
}

TEST_P(RunTest, EnvironmentIsSet) {
  auto r = Uvmctl(RunArgs({"--env", "FOO=bar", "-e", "X=a b"}, {"sh", "-c", "echo \"$FOO|$X\""}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "bar|a b\n") << r.Describe();
}

TEST_P(RunTest, WorkingDirectoryIsSet) {
  auto r = Uvmctl(RunArgs({"--cwd", "/home/user"}, {"pwd"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "/home/user\n") << r.Describe();
}

TEST_P(RunTest, UserAndGroupAreSet) {
  auto r = Uvmctl(RunArgs({"--user", "1000:1000"}, {"sh", "-c", "id -u; id -g"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "1000\n1000\n") << r.Describe();
}

TEST_P(RunTest, HostnameIsSet) {
  auto r = Uvmctl(RunArgs({"--hostname", "uvmctl-host"}, {"hostname"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "uvmctl-host\n") << r.Describe();
}

TEST_P(RunTest, ProcessIsPid1) {
  auto r = Uvmctl(RunArgs({}, {"sh", "-c", "echo $$"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "1\n") << r.Describe();
}

TEST_P(RunTest, KernelIsTheHostsOrTheUvms) {
  auto r = Uvmctl(RunArgs({}, {"uname", "-r"}));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  if (hyperv()) {
    // The UVM boots its own 6.1 kernel (images/), not the host's.
    EXPECT_TRUE(r.out.starts_with("6.1.")) << r.Describe();
  } else {
    utsname host{};
    ::uname(&host);
    EXPECT_EQ(r.out, std::string(host.release) + "\n") << r.Describe();
  }
}

TEST_P(RunTest, SixteenMiBOfOutputArriveIntact) {
  constexpr std::size_t kSize = 16 * 1024 * 1024;
  const std::string script =
      "head -c " + std::to_string(kSize) + " /dev/urandom > /tmp/f && sha256sum /tmp/f >&2 && cat /tmp/f";
  ProcessOptions options;
  options.timeout = hyperv() ? 600s : 120s;
  auto r = Uvmctl(RunArgs({}, {"sh", "-c", script}), options);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.size(), kSize);
  const std::string inside = r.err.substr(0, r.err.find(' '));
  ASSERT_EQ(inside.size(), 64u) << "sha256sum's line on stderr: " << r.err;
  EXPECT_EQ(Sha256Hex(r.out), inside) << "stdout differs from what the container wrote";
  EXPECT_EQ(r.err, inside + "  /tmp/f\n") << "stderr carries exactly sha256sum's line";
}

TEST_P(RunTest, BackgroundChildDoesNotHoldTheExit) {
  auto r = Uvmctl(RunArgs({}, {"sh", "-c", "sleep 1000 & echo done"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "done\n") << r.Describe();
  EXPECT_FALSE(r.output_held_open) << r.Describe();
  // Measured from the output, so a UVM's boot time does not count.
  ASSERT_TRUE(r.first_stdout) << r.Describe();
  EXPECT_LT((r.elapsed - *r.first_stdout).count(), 5000)
      << "uvmctl exited " << (r.elapsed - *r.first_stdout).count() << " ms after the output came";
}

TEST_P(RunTest, DefaultHostnameIsTheName) {
  const std::string name = Name("host");
  auto r = Uvmctl(RunArgs({"--name", name}, {"hostname"}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, name + "\n") << r.Describe();
}

// ---- bad input: exit 125 with a message, before anything starts -------------

void ExpectRejected(const ProcessResult& r, const std::string& message_part, const fs::path& root) {
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  EXPECT_NE(r.err.find(message_part), std::string::npos)
      << "stderr should name \"" << message_part << "\": " << r.Describe();
  EXPECT_LT(r.elapsed.count(), 10000) << r.Describe();
  EXPECT_EQ(r.out, "") << r.Describe();
  EXPECT_TRUE(EntriesBelow(root).empty()) << "something was started under " << root << ": "
                                          << EntriesBelow(root).size() << " entries";
}

TEST_P(RunValidationTest, NonexistentRootfs) {
  auto r = Uvmctl({"run", "--isolation", isolation(), "--rootfs", "/nonexistent-rootfs-xyz", "--", "true"});
  ExpectRejected(r, "/nonexistent-rootfs-xyz", root());
}

TEST_P(RunValidationTest, NameWithPathComponents) {
  auto r = Uvmctl(RunArgs({"--name", "../x"}, {"true"}));
  ExpectRejected(r, "../x", root());
}

TEST_P(RunValidationTest, ZeroCpus) {
  auto r = Uvmctl(RunArgs({"--cpus", "0"}, {"true"}));
  ExpectRejected(r, "--cpus", root());
}

TEST_P(RunValidationTest, TooLittleMemory) {
  auto r = Uvmctl(RunArgs({"--memory", "1"}, {"true"}));
  ExpectRejected(r, "--memory", root());
}

UVMCTL_INSTANTIATE(RunTest);
UVMCTL_INSTANTIATE(RunValidationTest);

}  // namespace
}  // namespace uvmshim::uvmctl_test
