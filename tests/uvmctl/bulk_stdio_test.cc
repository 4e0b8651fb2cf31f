// stdout/stderr of execs in a running container at volume and at the edges.
// The rules hold on every path (gRPC by default; in hyperv isolation the bulk
// stdio port of guest-agent/bulk_output_port.h when the shim runs with
// UVMSHIM_STDIO_BULK=1): every byte written before the exit reaches the
// reader, in order, and a stalled reader stalls only its own stream.
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "uvmctl_fixture.h"

namespace uvmshim::uvmctl_test {
namespace {

class BulkStdioTest : public UvmctlTest {
 protected:
  void SetUp() override {
    UvmctlTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    name_ = Name("bulk");
    RunDetached(name_, {}, {"sleep", "100000"});
  }
  ProcessResult Exec(const std::string& script, std::chrono::milliseconds timeout = 300s) {
    return Uvmctl({"exec", name_, "--", "sh", "-c", script}, WithTimeout(timeout));
  }
  std::string name_;
};

TEST_P(BulkStdioTest, SixtyFourMiBArriveByteExact) {
  constexpr std::size_t kSize = 64 * 1024 * 1024;
  auto r = Exec("head -c " + std::to_string(kSize) + " /dev/urandom > /tmp/f && sha256sum /tmp/f >&2 && cat /tmp/f",
                900s);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_EQ(r.out.size(), kSize);
  const std::string inside = r.err.substr(0, r.err.find(' '));
  ASSERT_EQ(inside.size(), 64u) << "sha256sum's line on stderr: " << r.err;
  EXPECT_EQ(Sha256Hex(r.out), inside) << "stdout differs from what the container wrote";
}

// The bytes a process writes right before it exits are the ones a relay
// that publishes the exit first would lose.
TEST_P(BulkStdioTest, OutputWrittenRightBeforeExitIsDeliveredEveryTime) {
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE("exec " + std::to_string(i));
    auto r = Exec("printf 'last-words-" + std::to_string(i) + "'; printf 'err-" + std::to_string(i) + "' >&2; exit 3",
                  120s);
    ASSERT_EQ(r.exit_code, 3) << r.Describe();
    ASSERT_EQ(r.out, "last-words-" + std::to_string(i)) << r.Describe();
    ASSERT_EQ(r.err, "err-" + std::to_string(i)) << r.Describe();
  }
}

TEST_P(BulkStdioTest, StdoutAndStderrOfOneProcessInterleaveWhole) {
  // Line by line, alternating, then both in bulk at once.
  auto r = Exec(
      "i=0; while [ $i -lt 3000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; "
      "head -c 8388608 /dev/zero | tr '\\0' a & head -c 8388608 /dev/zero | tr '\\0' b >&2; wait");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string want_out, want_err;
  for (int i = 0; i < 3000; ++i) {
    want_out += "out" + std::to_string(i) + "\n";
    want_err += "err" + std::to_string(i) + "\n";
  }
  ASSERT_EQ(r.out.size(), want_out.size() + 8388608u);
  ASSERT_EQ(r.err.size(), want_err.size() + 8388608u);
  EXPECT_EQ(r.out.substr(0, want_out.size()), want_out);
  EXPECT_EQ(r.err.substr(0, want_err.size()), want_err);
  EXPECT_EQ(r.out.find_first_not_of('a', want_out.size()), std::string::npos);
  EXPECT_EQ(r.err.find_first_not_of('b', want_err.size()), std::string::npos);
}

// One exec's reader stops reading (a pipe nobody drains for a while): the
// process behind it blocks, another exec's stream still flows at once, and
// once the reader resumes every byte of the stalled stream arrives.
TEST_P(BulkStdioTest, AStalledReaderStallsOnlyItsOwnStream) {
  const std::string stalled_file = (dir() / "stalled.count").string();
  const std::string resume_file = (dir() / "stalled.resume").string();
  // 32 MiB through a pipe whose reader waits for the test's word first: far
  // more than every window and buffer on the way.
  const std::string stalled = ShellCommand({"exec", name_, "--", "sh", "-c", "head -c 33554432 /dev/zero"}) +
                              " | (while [ ! -e " + resume_file + " ]; do sleep 0.1; done; wc -c > " + stalled_file +
                              ")";
  auto background = std::make_unique<BackgroundProcess>(std::vector<std::string>{"/bin/sh", "-c", stalled},
                                                        std::vector<std::string>{}, dir() / "stalled");
  // Let the stalled stream fill everything it can.
  std::this_thread::sleep_for(8s);
  const auto start = std::chrono::steady_clock::now();
  auto r = Exec("head -c 4194304 /dev/zero; echo done >&2", 120s);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.size(), 4194304u);
  EXPECT_EQ(r.err, "done\n");
  EXPECT_LT(took, 30s) << "the other stream waited for the stalled one";
  EXPECT_FALSE(background->Wait(0ms).has_value()) << "the stalled exec ended while its reader read nothing";
  std::ofstream(resume_file).put('\n');
  auto code = background->Wait(300s);
  ASSERT_TRUE(code.has_value()) << "the stalled exec never finished";
  EXPECT_EQ(*code, 0) << background->Stderr();
  std::ifstream in(stalled_file);
  std::size_t count = 0;
  in >> count;
  EXPECT_EQ(count, 33554432u) << "bytes the stalled reader got in the end";
}

// A process killed while it floods its stdout: the exec ends (128+9), what it
// wrote arrives as whole bytes, and the container still serves execs. The
// flood is checked as it streams and never kept: `yes` writes hundreds of MB/s
// until the kill lands.
TEST_P(BulkStdioTest, AProcessKilledMidStreamEndsItsStreamCleanly) {
  struct FloodCheck {
    std::mutex mutex;
    std::uint64_t bytes = 0;
    std::string head;                        // the first bytes, for the report
    std::optional<std::uint64_t> garbage_at;  // offset of the first byte that is not `start\n` then y/\n
  };
  auto check = std::make_shared<FloodCheck>();
  auto sink = [check](std::string_view chunk) {
    static constexpr std::string_view kStart = "start\n";
    std::lock_guard lock(check->mutex);
    for (std::size_t i = 0; i < chunk.size() && !check->garbage_at; ++i) {
      const std::uint64_t at = check->bytes + i;
      const bool ok = at < kStart.size() ? chunk[i] == kStart[at] : (chunk[i] == 'y' || chunk[i] == '\n');
      if (!ok) check->garbage_at = at;
    }
    if (check->head.size() < 64) check->head.append(chunk.substr(0, 64 - check->head.size()));
    check->bytes += chunk.size();
  };
  auto bytes_seen = [check] {
    std::lock_guard lock(check->mutex);
    return check->bytes;
  };
  auto flood = UvmctlInBackground({"exec", name_, "--", "sh", "-c", "echo start; exec yes"}, "flood", sink);
  ASSERT_TRUE(WaitFor([&] { return bytes_seen() > 1024 * 1024; }, 120s)) << flood->Stderr();
  auto killer = Exec("kill -9 $(pidof yes)", 60s);
  ASSERT_EQ(killer.exit_code, 0) << killer.Describe();
  auto code = flood->Wait(120s);
  ASSERT_TRUE(code.has_value()) << "the killed exec's uvmctl did not end";
  EXPECT_EQ(*code, 128 + 9) << flood->Stderr();
  {
    std::lock_guard lock(check->mutex);
    EXPECT_FALSE(check->garbage_at.has_value())
        << "garbage in the killed stream at byte " << check->garbage_at.value_or(0) << " of " << check->bytes
        << "; it began: " << check->head;
  }
  auto after = Exec("echo still-here", 60s);
  EXPECT_EQ(after.out, "still-here\n") << after.Describe();
}

UVMCTL_INSTANTIATE(BulkStdioTest);

}  // namespace
}  // namespace uvmshim::uvmctl_test
