// hyperv-only CRI cases: the pod's UVM is sized from the pod (CRI annotations passed to the
// uvm handlers through `pod_annotations = ["io.uvmshim.*"]`), and a bad size is refused with an
// error naming the annotation, leaving nothing behind.
#include <algorithm>

#include "cri_pod_fixture.h"

namespace uvmshim::cri {
namespace {

class CriHypervPodTest : public CriPodTest {};

// The value after `flag` in QEMU's argv, or "".
std::string QemuArg(pid_t qemu, const std::string& flag) {
  auto args = e2e::ProcessArgs(qemu);
  auto it = std::find(args.begin(), args.end(), flag);
  return it == args.end() || it + 1 == args.end() ? "" : *(it + 1);
}

TEST_P(CriHypervPodTest, UvmSizedFromPodAnnotations) {
  PodOptions pod_options;
  pod_options.name = "pod-sized";
  pod_options.annotations = {{"io.uvmshim.vm.memory-mb", "384"}, {"io.uvmshim.vm.cpus", "2"}};
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = RunPod(pod_config);
  auto netns = PodNetnsPath(cri().PodSandboxStatus(pod, true));
  const std::string c1 = StartContainer(pod, pod_config, IdleContainer("c1"));

  auto qemus = QemuPidsUnder(env().containerd().dir());
  ASSERT_EQ(qemus.size(), 1u) << "one UVM per pod";
  EXPECT_EQ(QemuArg(qemus[0], "-m"), "384");
  EXPECT_EQ(QemuArg(qemus[0], "-smp"), "2");
  // What the container sees is the UVM's memory and CPUs.
  long mem_kib = std::stol("0" + ShOut(c1, "awk '/^MemTotal:/ {print $2}' /proc/meminfo"));
  EXPECT_GT(mem_kib, 256 * 1024) << "MemTotal of a 384 MiB UVM";
  EXPECT_LE(mem_kib, 384 * 1024);
  EXPECT_EQ(ShOut(c1, "grep -c ^processor /proc/cpuinfo"), "2");

  StopAndRemoveAll();
  std::vector<std::string> netns_paths;
  if (netns) netns_paths.push_back(*netns);
  ExpectNothingLeft(netns_paths);
}

TEST_P(CriHypervPodTest, BadSizeAnnotationIsRefused) {
  PodOptions pod_options;
  pod_options.name = "pod-bad-size";
  pod_options.annotations = {{"io.uvmshim.vm.memory-mb", "lots"}};
  auto pod_config = MakePodConfig(env(), pod_options);
  try {
    auto id = cri().RunPodSandbox(pod_config, handler());
    pods_.push_back(id);
    ADD_FAILURE() << "RunPodSandbox accepted io.uvmshim.vm.memory-mb=lots";
  } catch (const CriError& e) {
    EXPECT_NE(std::string(e.what()).find("io.uvmshim.vm.memory-mb"), std::string::npos) << e.what();
  }
  // containerd keeps a NOTREADY sandbox record after a failed start: kubelet removes it.
  for (const auto& p : cri().ListPodSandbox()) {
    EXPECT_NE(p.state(), v1::SANDBOX_READY);
    if (std::find(pods_.begin(), pods_.end(), p.id()) == pods_.end()) pods_.push_back(p.id());
  }
  StopAndRemoveAll();
  ExpectNothingLeft({});
}

INSTANTIATE_TEST_SUITE_P(Hyperv, CriHypervPodTest, ::testing::Values(std::string(kUvmHypervHandler)),
                         [](const ::testing::TestParamInfo<std::string>&) { return std::string("uvm_hyperv"); });

}  // namespace
}  // namespace uvmshim::cri
