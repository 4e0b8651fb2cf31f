// A utility VM whose PID 1 could not mount the rootfs (issue #16) keeps its
// agent serving, and the agent refuses every container on that rootfs with
// the reason PID 1 recorded, so the host learns why.
#include <signal.h>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "guest-agent/agent_service.h"

namespace uvmshim::agent {
namespace {

class BlockedSigchld {
 public:
  BlockedSigchld() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~BlockedSigchld() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

 private:
  sigset_t previous_;
};

grpc::Status Create(AgentService& service, const std::string& id, const std::string& rootfs) {
  pb::CreateContainerRequest request;
  request.set_container_id(id);
  request.set_rootfs_path(rootfs);
  request.set_spec_json("{}");
  pb::CreateContainerResponse response;
  grpc::ServerContext context;
  return service.CreateContainer(&context, &request, &response);
}

TEST(GuestRootfsError, ContainersOnTheUnmountedRootfsAreRefusedWithTheReason) {
  BlockedSigchld blocked;  // the reaper's precondition (PrepareAgentProcess)
  AgentOptions options;
  options.cgroup_parent = "";  // nothing is created here
  options.guest_rootfs_error = "uvm.rootfs=scsi:0:2: no disk at SCSI controller 0 LUN 2 (SCSI host 0) after 30000 ms";
  AgentService service(options);

  for (const char* rootfs : {"/run/rootfs", "/run/rootfs/c1/rootfs"}) {
    const grpc::Status status = Create(service, "c1", rootfs);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << rootfs;
    EXPECT_EQ(status.error_message(),
              "create container c1: the utility VM could not mount its rootfs at boot: " +
                  options.guest_rootfs_error)
        << rootfs;
  }
  // Elsewhere (the sandbox share, a sibling path) that reason does not apply.
  for (const char* rootfs : {"/run/share/c2/rootfs", "/run/rootfs2"}) {
    const grpc::Status status = Create(service, "c2", rootfs);
    EXPECT_EQ(status.error_message().find("could not mount its rootfs"), std::string::npos)
        << rootfs << ": " << status.error_message();
  }
}

}  // namespace
}  // namespace uvmshim::agent
