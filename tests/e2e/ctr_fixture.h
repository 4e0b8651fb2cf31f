// GoogleTest fixture: one private containerd per test (so tests can run in
// parallel under ctest -j and a crash in one cannot poison another), plus the
// ctr idioms the cases share.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_support.h"
#include "runtime_case.h"

namespace uvmshim::e2e {

class CtrFixture {
 public:
  // Starts containerd with the uvm shim's build dir on its PATH (when it exists).
  void StartContainerd(std::vector<std::string> containerd_env = {}) {
    ContainerdEnv::Options options;
    if (auto shim = UvmShimBinary()) options.shim_dir = shim->parent_path();
    options.containerd_env = std::move(containerd_env);
    env_ = std::make_unique<ContainerdEnv>(options);
  }
  void StopContainerd() { env_.reset(); }

  ContainerdEnv& env() { return *env_; }

  // ctr run [flags...] <runtime flags> IMAGE ID CMD...
  std::vector<std::string> RunArgs(const RuntimeCase& rc, const std::vector<std::string>& flags,
                                   const std::string& id, const std::vector<std::string>& cmd) {
    std::vector<std::string> args{"run"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto rt = RuntimeFlags(rc, env_->dir());
    args.insert(args.end(), rt.begin(), rt.end());
    args.push_back(env_->image_ref());
    args.push_back(id);
    args.insert(args.end(), cmd.begin(), cmd.end());
    return args;
  }

  CommandResult CtrRun(const RuntimeCase& rc, const std::vector<std::string>& flags,
                       const std::string& id, const std::vector<std::string>& cmd,
                       CommandOptions options = {}) {
    if (options.timeout == CommandOptions{}.timeout) options.timeout = rc.op_timeout();
    return env_->Ctr(RunArgs(rc, flags, id, cmd), options);
  }

  // The runc anchor's answers. containerd 1.6's ctr opens its stdout FIFO in a goroutine that
  // DeleteProcess cancels, and runc's shim reports an exit before the FIFO is drained, so under
  // load runc's stdout of a process that exits at once can come up short (seen in CI; ours waits
  // for the drain, and the stdio suites count every byte). For runc, `cmd`'s stdout and stderr go
  // to files in a bind-mounted directory and come back as result.out / the start of result.err;
  // the uvm cases keep real stdout, which is what they test.
  CommandResult CtrRunAnswer(const RuntimeCase& rc, std::vector<std::string> flags, const std::string& id,
                             const std::vector<std::string>& cmd, CommandOptions options = {}) {
    if (rc.is_uvm()) return CtrRun(rc, flags, id, cmd, options);
    flags.push_back("--mount");
    flags.push_back(AnswerMount());
    auto r = CtrRun(rc, flags, id, AnswerCommand(id + ".run", cmd), options);
    ReadAnswer(id + ".run", r);
    return r;
  }
  // `ctr task exec` into a task StartDetached started, answered as CtrRunAnswer.
  CommandResult CtrExecAnswer(const RuntimeCase& rc, const std::string& id, const std::string& exec_id,
                              const std::vector<std::string>& cmd) {
    std::vector<std::string> args{"task", "exec", "--exec-id", exec_id, id};
    const std::string name = id + "." + exec_id;
    const auto command = rc.is_uvm() ? cmd : AnswerCommand(name, cmd);
    args.insert(args.end(), command.begin(), command.end());
    auto r = env_->Ctr(args, CommandOptions().WithTimeout(rc.op_timeout()));
    if (!rc.is_uvm()) ReadAnswer(name, r);
    return r;
  }

  // The same for a process that keeps running: a sign of life that does not go through ctr's
  // stdout. For runc, MarkCommand leaves `name` in the answer directory (mounted by
  // AnswerMountFlags for a run, by StartDetached for an exec) and Marked sees it; the uvm cases
  // keep their stdout as the sign, so `printed` is asked instead.
  std::vector<std::string> AnswerMountFlags(const RuntimeCase& rc) {
    if (rc.is_uvm()) return {};
    return {"--mount", AnswerMount()};
  }
  static std::string MarkCommand(const RuntimeCase& rc, const std::string& name) {
    return rc.is_uvm() ? "true" : "echo > " + std::string(kAnswerDir) + "/" + name + ".mark";
  }
  bool PrintedOrMarked(const RuntimeCase& rc, const std::string& name, bool printed) {
    if (rc.is_uvm()) return printed;
    std::error_code ec;
    return answers_ && std::filesystem::exists(answers_->path() / (name + ".mark"), ec);
  }

  // STATUS column of `ctr task ls` for id (RUNNING, STOPPED, ...), nullopt if absent.
  std::optional<std::string> TaskStatus(const std::string& id) { return TaskField(id, 2); }
  std::optional<long> TaskPid(const std::string& id) {
    auto pid = TaskField(id, 1);
    if (!pid) return std::nullopt;
    return std::stol(*pid);
  }

  bool WaitForStatus(const std::string& id, const std::string& status, std::chrono::milliseconds timeout) {
    return WaitFor([&] { return TaskStatus(id) == status; }, timeout);
  }

  // ctr run -d ... and wait until the task is RUNNING; fails the test otherwise.
  void StartDetached(const RuntimeCase& rc, const std::string& id, const std::vector<std::string>& cmd,
                     const std::vector<std::string>& extra_flags = {}) {
    std::vector<std::string> flags{"-d"};
    flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
    if (!rc.is_uvm()) flags.insert(flags.end(), {"--mount", AnswerMount()});  // for CtrExecAnswer
    auto r = CtrRun(rc, flags, id, cmd);
    ASSERT_TRUE(r.ok()) << r.Describe() << env_->LogTail();
    ASSERT_TRUE(WaitForStatus(id, "RUNNING", rc.op_timeout()))
        << "task " << id << " never RUNNING; ctr task ls:\n" << env_->Ctr({"task", "ls"}).out << env_->LogTail();
  }

  // SIGKILL, wait STOPPED, delete the task and the container; fails the test on error.
  void KillAndRemove(const RuntimeCase& rc, const std::string& id) {
    auto k = env_->Ctr({"task", "kill", "-s", "SIGKILL", id}, CommandOptions().WithTimeout(rc.op_timeout()));
    EXPECT_TRUE(k.ok()) << k.Describe() << env_->LogTail();
    EXPECT_TRUE(WaitForStatus(id, "STOPPED", rc.op_timeout()))
        << "task " << id << " not STOPPED after SIGKILL: " << env_->Ctr({"task", "ls"}).out;
    auto d = env_->Ctr({"task", "delete", id}, CommandOptions().WithTimeout(rc.op_timeout()));
    EXPECT_TRUE(d.ok()) << d.Describe() << env_->LogTail();
    auto c = env_->Ctr({"container", "delete", id}, CommandOptions().WithTimeout(rc.op_timeout()));
    EXPECT_TRUE(c.ok()) << c.Describe() << env_->LogTail();
  }

  // Nothing of container `id` is left: no task/container record, no bundle, no mount
  // under the env dir, no process naming the env dir except containerd itself, and the
  // uvm shim's state root is empty.
  void ExpectNothingLeftOf(const std::string& id) {
    auto tasks = env_->Ctr({"task", "ls", "-q"});
    EXPECT_EQ(tasks.out.find(id), std::string::npos) << "task still listed:\n" << tasks.out;
    auto containers = env_->Ctr({"container", "ls", "-q"});
    EXPECT_EQ(containers.out.find(id), std::string::npos) << "container still listed:\n" << containers.out;
    EXPECT_FALSE(std::filesystem::exists(env_->BundleDir(id))) << "bundle left: " << env_->BundleDir(id);
    auto mounts = MountsUnder(env_->dir());
    EXPECT_TRUE(mounts.empty()) << "mounts left under " << env_->dir() << ":\n" << Join(mounts);
    auto containerd = env_->ContainerdPid();
    std::ostringstream stray;
    // Shims that end on their own (Shutdown) may need a moment to exit.
    bool clean = WaitFor([&] {
      stray.str("");
      for (pid_t pid : PidsReferringTo(env_->dir())) {
        if (containerd && pid == *containerd) continue;
        auto args = ProcessArgs(pid);
        if (!args.empty() && args[0] == "ctr") continue;  // our own concurrent ctr calls
        stray << pid << ": " << Join(args, " ") << "\n";
      }
      return stray.str().empty();
    }, 10s);
    EXPECT_TRUE(clean) << "processes still referring to " << env_->dir() << ":\n" << stray.str();
    std::error_code ec;
    if (std::filesystem::exists(env_->uvmshim_root())) {
      std::vector<std::string> entries;
      for (const auto& e : std::filesystem::directory_iterator(env_->uvmshim_root(), ec))
        entries.push_back(e.path().string());
      EXPECT_TRUE(entries.empty()) << "uvm shim state left in " << env_->uvmshim_root() << ":\n" << Join(entries);
    }
  }

  static std::string Join(const std::vector<std::string>& v, const char* sep = "\n") {
    std::string s;
    for (const auto& x : v) { if (!s.empty()) s += sep; s += x; }
    return s;
  }

 private:
  static constexpr const char* kAnswerDir = "/.e2e-answer";
  std::string AnswerMount() {
    if (!answers_) answers_ = std::make_unique<TempDir>("uvmshim-answer");
    return "type=bind,src=" + answers_->path().string() + ",dst=" + kAnswerDir + ",options=rbind:rw";
  }
  // exec keeps `cmd` the container's process (PID 1 for a run), as without the files.
  static std::vector<std::string> AnswerCommand(const std::string& name, const std::vector<std::string>& cmd) {
    const std::string base = std::string(kAnswerDir) + "/" + name;
    std::vector<std::string> wrapped{"sh", "-c", "exec \"$@\" >" + base + ".out 2>" + base + ".err", "sh"};
    wrapped.insert(wrapped.end(), cmd.begin(), cmd.end());
    return wrapped;
  }
  void ReadAnswer(const std::string& name, CommandResult& r) {
    auto read = [&](const std::string& suffix) {
      std::ifstream in(answers_->path() / (name + suffix));
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    r.out = read(".out");
    r.err = read(".err") + r.err;
  }

  std::optional<std::string> TaskField(const std::string& id, size_t field) {
    auto r = env_->Ctr({"task", "ls"}, CommandOptions().WithTimeout(30s));
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::vector<std::string> f;
      for (std::string x; fields >> x;) f.push_back(x);
      if (f.size() >= 3 && f[0] == id) return f[field];
    }
    return std::nullopt;
  }

  std::unique_ptr<ContainerdEnv> env_;
  std::unique_ptr<TempDir> answers_;  // the runc anchor's answer files (made on first use)
};

}  // namespace uvmshim::e2e
