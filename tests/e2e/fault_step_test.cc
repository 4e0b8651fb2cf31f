// Faults at each step of a task's life (issue #12 item 5): kill -9 of the sandbox's host (QEMU in
// hyperv, the host agent in process isolation), of virtiofsd (hyperv) and of the shim, while the
// shim has a create, start, exec or delete request in hand. Each case must end with the exit
// reported to containerd or a clear error to the caller, no call may hang, and after kubelet's
// teardown nothing may be left (processes, mounts, sockets, cgroups, state dirs).
//
// Stopping "at a step" uses no hook in the product and no timing: the shim is SIGSTOPped, the
// step's call is issued (CRI CreateContainer/StartContainer/ExecSync into a running pod; `ctr
// task delete` of an exited task), the test waits until the request's bytes sit unread in the
// shim's ttrpc connection (its receive queue, from ss(8)), kills the victim, and lets the shim
// run again: the shim meets the dead victim with the step's request in hand.
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

// Bytes waiting unread in an established connection accepted on `socket_path` (the shim's ttrpc
// socket): a request containerd sent that the (stopped) shim has not read.
bool RequestQueuedOn(const std::string& socket_path) {
  auto r = e2e::RunCommand({"ss", "-x", "-n"}, CommandOptions().WithTimeout(10s));
  std::stringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::stringstream fields(line);
    std::string netid, state, local;
    long recv_q = 0, send_q = 0;
    if (!(fields >> netid >> state >> recv_q >> send_q >> local)) continue;
    if (state == "ESTAB" && (local == socket_path || local == "@" + socket_path) && recv_q > 0) return true;
  }
  return false;
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

  void StopShim(pid_t shim) {
    ASSERT_EQ(::kill(shim, SIGSTOP), 0);
    stopped_ = shim;
    ASSERT_TRUE(e2e::WaitFor([&] { return ProcessState(shim) == 'T'; }, 10s)) << "shim " << shim << " not stopped";
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

  // Waits for the request at the stopped shim, kills the victim, lets the shim go on.
  void InjectWithRequestQueued(pid_t shim, const std::string& socket_path) {
    ASSERT_TRUE(e2e::WaitFor([&] { return RequestQueuedOn(socket_path); }, Bound()))
        << "the " << fault_.step << " request never reached shim " << shim << " on " << socket_path << LogTail();
    auto victim = VictimPid(shim);
    ASSERT_TRUE(victim.has_value()) << "no " << fault_.victim << " below shim " << shim;
    ASSERT_EQ(::kill(*victim, SIGKILL), 0);
    if (*victim != shim) ASSERT_EQ(::kill(shim, SIGCONT), 0);
    stopped_ = -1;
  }

  static std::string SocketOf(const fs::path& bundle) {
    std::string address = Trim(ReadFile(bundle / "address"));
    return address.rfind("unix://", 0) == 0 ? address.substr(7) : address;
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
  void DeleteCase();

  StepFault fault_;
  pid_t stopped_ = -1;
};

// create / start / exec: a pod and its container through CRI, as kubelet drives them.
void FaultAtStep::PodCase() {
  PodOptions pod_options;
  pod_options.name = "fault";
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = cri().RunPodSandbox(pod_config, fault_.handler);
  pods_.push_back(pod);
  auto shim = e2e::FindShimPid(env().containerd().address(), pod);
  ASSERT_TRUE(shim.has_value()) << "no shim for pod " << pod;
  const std::string socket = SocketOf(env().TaskBundleDir(pod));
  auto container_config = MakeContainerConfig(IdleContainer("c1"), pod_config);

  std::string container;
  if (fault_.step != "create") {
    container = cri().CreateContainer(pod, container_config, pod_config);
    containers_.push_back(container);
    if (fault_.step == "exec") cri().StartContainer(container);
  }
  ASSERT_NO_FATAL_FAILURE(StopShim(*shim));
  std::future<std::string> call;
  std::string created;
  if (fault_.step == "create") {
    call = Async([&] { created = cri().CreateContainer(pod, container_config, pod_config); });
  } else if (fault_.step == "start") {
    call = Async([&] { cri().StartContainer(container); });
  } else {
    call = Async([&] {
      auto r = cri().ExecSync(container, {"echo", "hi"}, 60);
      if (r.exit_code() != 0) throw std::runtime_error("exec exit " + std::to_string(r.exit_code()));
    });
  }
  ASSERT_NO_FATAL_FAILURE(InjectWithRequestQueued(*shim, socket));
  std::string outcome = Finished(call);
  if (!created.empty()) {
    container = created;
    containers_.push_back(created);
  }
  // The step either failed with a message or went through before the death was seen.
  if (!outcome.empty()) EXPECT_GT(outcome.size(), std::string("error: ").size() + 10) << outcome;
  // The sandbox's host died with it: containerd learns that the pod's sandbox exited...
  EXPECT_TRUE(e2e::WaitFor([&] { return cri().PodSandboxStatus(pod).status().state() == v1::SANDBOX_NOTREADY; },
                           Bound()))
      << "the pod's exit never reached containerd (" << fault_.step << ": " << outcome << ")" << LogTail();
  // ...and that its container (if it was created) is not running.
  if (!container.empty()) {
    EXPECT_TRUE(e2e::WaitFor([&] { return cri().ContainerStatus(container).status().state() != v1::CONTAINER_RUNNING; },
                             Bound()))
        << "container " << container << " still reported running" << LogTail();
  }
  StopAndRemoveAll();
  ExpectNothingLeft({});
}

// delete: an exited task of `ctr`, whose Delete the shim has in hand when the victim dies.
void FaultAtStep::DeleteCase() {
  auto& cd = env().containerd();
  const std::string id = "fault-delete";
  const fs::path config = env().files_dir() / (hyperv() ? "hyperv.toml" : "process.toml");
  auto run = cd.Ctr({"run", "-d", "--runtime", "io.containerd.uvm.v1", "--runtime-config-path", config.string(),
                     cd.image_ref(), id, "sleep", "100000"},
                    CommandOptions().WithTimeout(Bound()));
  ASSERT_TRUE(run.ok()) << run.Describe() << LogTail();
  auto shim = e2e::FindShimPid(cd.address(), id);
  ASSERT_TRUE(shim.has_value()) << "no shim for task " << id;
  const std::string socket = SocketOf(cd.BundleDir(id));
  auto kill = cd.Ctr({"task", "kill", "-s", "SIGKILL", id}, CommandOptions().WithTimeout(60s));
  ASSERT_TRUE(kill.ok()) << kill.Describe();
  auto stopped = [&] { return cd.Ctr({"task", "ls"}).out.find("STOPPED") != std::string::npos; };
  ASSERT_TRUE(e2e::WaitFor(stopped, Bound())) << "task never STOPPED" << LogTail();

  ASSERT_NO_FATAL_FAILURE(StopShim(*shim));
  auto call = Async([&] {
    auto r = cd.Ctr({"task", "delete", id}, CommandOptions().WithTimeout(Bound()));
    if (!r.ok()) throw std::runtime_error(r.Describe());
  });
  ASSERT_NO_FATAL_FAILURE(InjectWithRequestQueued(*shim, socket));
  std::string outcome = Finished(call);
  // Deleted, or refused with a message; a forced delete then always finishes.
  if (!outcome.empty()) {
    auto forced = cd.Ctr({"task", "delete", "-f", id}, CommandOptions().WithTimeout(Bound()));
    EXPECT_FALSE(forced.timed_out) << forced.Describe();
  }
  EXPECT_EQ(cd.Ctr({"task", "ls", "-q"}).out, "") << "task still listed after delete (" << outcome << ")";
  auto rm = cd.Ctr({"container", "rm", id}, CommandOptions().WithTimeout(60s));
  EXPECT_TRUE(rm.ok()) << rm.Describe();
  EXPECT_FALSE(fs::exists(cd.BundleDir(id))) << cd.BundleDir(id);
  ExpectNothingLeft({});
}

TEST_P(FaultAtStep, ExitReportedOrClearErrorAndNothingLeft) {
  if (fault_.step == "delete") {
    DeleteCase();
  } else {
    PodCase();
  }
}

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
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           StepFault f = ParseFault(info.param);
                           std::string name = f.handler + "_" + f.victim + "_kill9_at_" + f.step;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace uvmshim::cri
