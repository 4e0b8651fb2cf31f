// Faults at each step of a task's life (issue #12 item 5): kill -9 of the sandbox's host (QEMU in
// hyperv, the host agent in process isolation), of virtiofsd (hyperv) and of the shim, while the
// shim has a create, start, exec or delete request in hand. Each case must end with the exit
// reported to containerd or a clear error to the caller, no call may hang, and after kubelet's
// teardown nothing may be left (processes, mounts, sockets, cgroups, state dirs).
//
// Stopping "at a step" needs no hook in the product and no timing: gdb puts a breakpoint on the
// shim's TaskService::Create/Start/Exec/Delete; when kubelet's call (CRI StartContainer, ExecSync,
// StopContainer, whose exit makes CRI delete the task) reaches it, gdb queues a SIGSTOP and
// detaches, so the shim stays stopped inside the step's handler. The test kills the victim and
// lets the shim go on: it meets the dead victim with the request in hand.
#include <signal.h>

#include <future>
#include <sstream>

#include "cri_pod_fixture.h"

namespace uvmshim::cri {
namespace {

using e2e::CommandOptions;

struct StepFault {
  std::string handler;  // uvm-process | uvm-hyperv
  std::string victim;   // host (QEMU or the host agent) | virtiofsd | shim
  std::string step;     // create | start | exec | delete
};

StepFault ParseFault(const std::string& param) {
  std::stringstream in(param);
  StepFault fault;
  std::getline(in, fault.handler, ':');
  std::getline(in, fault.victim, ':');
  std::getline(in, fault.step, ':');
  return fault;
}

char ProcessState(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// The TaskService method that serves a step's request.
std::string MethodOf(const std::string& step) {
  if (step == "create") return "Create";
  if (step == "start") return "Start";
  if (step == "exec") return "Exec";
  return "Delete";
}

class FaultAtStep : public CriPodTest {
 protected:
  void SetUp() override {
    fault_ = ParseFault(GetParam());
    if (auto why = MissingPrerequisite(fault_.handler)) GTEST_SKIP() << *why;
    env_ = std::make_unique<CriEnv>();
    cri().set_timeout(CallTimeout(fault_.handler));
  }
  void TearDown() override {
    if (stopped_ > 0) ::kill(stopped_, SIGCONT);  // a failed case must not leave a stopped shim
    env_.reset();
  }
  bool hyperv() const { return IsHypervHandler(fault_.handler); }
  // Bound for a step's call and for the exit to reach containerd (TCG boots, 2 loaded cores).
  std::chrono::milliseconds Bound() const { return hyperv() ? 240s : 90s; }

  // gdb on the shim with a breakpoint on the step's method; returns once the breakpoint is set.
  std::unique_ptr<e2e::BackgroundCommand> BreakAtStep(pid_t shim) {
    const std::string pid = std::to_string(shim);
    auto gdb = std::make_unique<e2e::BackgroundCommand>(
        std::vector<std::string>{"gdb", "-nx", "-batch", "-p", pid, "-ex", "set pagination off",
                                 "-ex", "handle all nostop noprint pass",
                                 "-ex", "break uvmshim::shim::TaskService::" + MethodOf(fault_.step),
                                 "-ex", "continue", "-ex", "shell kill -STOP " + pid, "-ex", "detach"},
        env().files_dir() / ("gdb-" + fault_.step + ".log"));
    // Once gdb printed the breakpoint, the shim cannot run without it: gdb holds it stopped
    // until `continue` inserts the breakpoint and resumes it (gdb's later output is buffered).
    bool armed = e2e::WaitFor([&] { return gdb->Output().find("Breakpoint 1 at") != std::string::npos || gdb->Exited(); },
                              120s);
    EXPECT_TRUE(armed && !gdb->Exited()) << "gdb did not set the breakpoint: " << gdb->Output();
    return gdb;
  }

  // Waits until the step's request stopped the shim in its handler, kills the victim, lets the
  // shim go on.
  void InjectAtBreakpoint(pid_t shim, e2e::BackgroundCommand& gdb) {
    auto exit = gdb.Wait(Bound());
    ASSERT_TRUE(exit.has_value()) << "the " << fault_.step << " request never reached shim " << shim << LogTail();
    ASSERT_NE(gdb.Output().find("Breakpoint 1, "), std::string::npos) << gdb.Output();
    stopped_ = shim;
    ASSERT_TRUE(e2e::WaitFor([&] { return ProcessState(shim) == 'T'; }, 10s)) << "shim not stopped: " << gdb.Output();
    auto victim = VictimPid(shim);
    ASSERT_TRUE(victim.has_value()) << "no " << fault_.victim << " below shim " << shim;
    ASSERT_EQ(::kill(*victim, SIGKILL), 0);
    if (*victim != shim) {
      ASSERT_EQ(::kill(shim, SIGCONT), 0);
    }
    stopped_ = -1;
  }

  // The victim below (or being) the shim.
  std::optional<pid_t> VictimPid(pid_t shim) {
    if (fault_.victim == "shim") return shim;
    for (pid_t pid : e2e::DescendantsOf(shim)) {
      auto exe = e2e::ProcessExeName(pid);
      if (!exe) continue;
      if (fault_.victim == "virtiofsd" && *exe == "virtiofsd") return pid;  // the first: its parent
      if (fault_.victim == "host" && (hyperv() ? exe->rfind("qemu-system", 0) == 0 : *exe == "uvm-agent")) return pid;
    }
    return std::nullopt;
  }

  // A step's call, run on another thread while the shim is stopped: its error text ("" = ok).
  template <typename Call>
  std::future<std::string> Async(Call call) {
    return std::async(std::launch::async, [call]() -> std::string {
      try {
        call();
        return "";
      } catch (const std::exception& e) {
        return std::string("error: ") + e.what();
      }
    });
  }

  std::string Finished(std::future<std::string>& call) {
    if (call.wait_for(Bound()) != std::future_status::ready) {
      ADD_FAILURE() << "the " << fault_.step << " call hung after the " << fault_.victim << " was killed" << LogTail();
      return "hung";
    }
    return call.get();
  }

  void PodCase();

  StepFault fault_;
  pid_t stopped_ = -1;
};

// One pod and its container through CRI, as kubelet drives them; the fault at the step.
void FaultAtStep::PodCase() {
  PodOptions pod_options;
  pod_options.name = "fault";
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = cri().RunPodSandbox(pod_config, fault_.handler);
  pods_.push_back(pod);
  auto shim = e2e::FindShimPid(env().containerd().address(), pod);
  ASSERT_TRUE(shim.has_value()) << "no shim for pod " << pod;
  // CRI's CreateContainer does not reach the shim: its StartContainer sends Create then Start.
  const std::string container = cri().CreateContainer(pod, MakeContainerConfig(IdleContainer("c1"), pod_config), pod_config);
  containers_.push_back(container);
  if (fault_.step == "exec" || fault_.step == "delete") cri().StartContainer(container);

  auto gdb = BreakAtStep(*shim);
  ASSERT_FALSE(HasFailure());
  std::future<std::string> call;
  if (fault_.step == "create" || fault_.step == "start") {
    call = Async([&] { cri().StartContainer(container); });
  } else if (fault_.step == "exec") {
    call = Async([&] {
      auto r = cri().ExecSync(container, {"echo", "hi"}, 60);
      if (r.exit_code() != 0) throw std::runtime_error("exec exit " + std::to_string(r.exit_code()));
    });
  } else {
    call = Async([&] { cri().StopContainer(container, 0); });  // the exit makes CRI delete the task
  }
  ASSERT_NO_FATAL_FAILURE(InjectAtBreakpoint(*shim, *gdb));
  std::string outcome = Finished(call);
  // The step either failed with a message or went through before the death was seen.
  if (!outcome.empty()) {
    EXPECT_GT(outcome.size(), std::string("error: ").size() + 10) << outcome;
  }
  // The sandbox's host died: containerd learns that the pod's sandbox exited...
  EXPECT_TRUE(e2e::WaitFor([&] { return cri().PodSandboxStatus(pod).status().state() == v1::SANDBOX_NOTREADY; },
                           Bound()))
      << "the pod's exit never reached containerd (" << fault_.step << ": " << outcome << ")" << LogTail();
  // ...and that its container is not running.
  EXPECT_TRUE(e2e::WaitFor([&] { return cri().ContainerStatus(container).status().state() != v1::CONTAINER_RUNNING; },
                           Bound()))
      << "container " << container << " still reported running" << LogTail();
  StopAndRemoveAll();
  ExpectNothingLeft({});
  if (HasFailure()) std::cerr << "containerd log (with the shim's lines):" << env().containerd().LogTail(80) << "\n";
}

TEST_P(FaultAtStep, ExitReportedOrClearErrorAndNothingLeft) { PodCase(); }

std::vector<std::string> AllFaults() {
  std::vector<std::string> out;
  for (const char* step : {"create", "start", "exec", "delete"}) {
    for (const char* victim : {"host", "shim"}) out.push_back(std::string(kUvmProcessHandler) + ":" + victim + ":" + step);
    for (const char* victim : {"host", "virtiofsd", "shim"})
      out.push_back(std::string(kUvmHypervHandler) + ":" + victim + ":" + step);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Steps, FaultAtStep, ::testing::ValuesIn(AllFaults()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           StepFault f = ParseFault(param_info.param);
                           std::string name = f.handler + "_" + f.victim + "_kill9_at_" + f.step;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace uvmshim::cri
