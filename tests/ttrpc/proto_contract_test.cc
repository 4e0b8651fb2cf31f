// The containerd messages' wire names and field numbers, checked against
// bytes built by hand from the reference (docs: containerd-shim-v2.md).
#include <gtest/gtest.h>

#include <google/protobuf/any.pb.h>

#include <string>

#include "containerd/cgroups/v1/metrics.pb.h"
#include "containerd/events/task.pb.h"
#include "containerd/runtimeoptions/v1/options.pb.h"
#include "containerd/services/events/ttrpc/v1/events.pb.h"
#include "containerd/task/v2/shim.pb.h"
#include "containerd/types/mount.pb.h"

namespace {

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

TEST(ContainerdProto, FullNamesUsedAsAnyTypeUrls) {
  EXPECT_EQ(containerd::events::TaskExit().GetTypeName(), "containerd.events.TaskExit");
  EXPECT_EQ(containerd::events::TaskCreate().GetTypeName(), "containerd.events.TaskCreate");
  EXPECT_EQ(io::containerd::cgroups::v1::Metrics().GetTypeName(), "io.containerd.cgroups.v1.Metrics");
  EXPECT_EQ(runtimeoptions::v1::Options().GetTypeName(), "runtimeoptions.v1.Options");
  EXPECT_EQ(containerd::types::Mount().GetTypeName(), "containerd.types.Mount");
}

TEST(ContainerdProto, CreateTaskRequestFieldNumbers) {
  // id=1 bundle=2 rootfs=3{type=1 source=2 options=4} terminal=4 stdout=6 options=10{type_url=1 value=2}
  std::string wire = Bytes({0x0a, 1}) + "c" + Bytes({0x12, 2}) + "/b" +
                     Bytes({0x1a, 14, 0x0a, 4}) + "bind" + Bytes({0x12, 2}) + "/s" + Bytes({0x22, 2}) + "ro" +
                     Bytes({0x20, 1}) + Bytes({0x32, 2}) + "/o" + Bytes({0x52, 5, 0x0a, 1}) + "t" +
                     Bytes({0x12, 0});
  containerd::task::v2::CreateTaskRequest req;
  ASSERT_TRUE(req.ParseFromString(wire));
  EXPECT_EQ(req.id(), "c");
  EXPECT_EQ(req.bundle(), "/b");
  ASSERT_EQ(req.rootfs_size(), 1);
  EXPECT_EQ(req.rootfs(0).type(), "bind");
  EXPECT_EQ(req.rootfs(0).source(), "/s");
  ASSERT_EQ(req.rootfs(0).options_size(), 1);
  EXPECT_EQ(req.rootfs(0).options(0), "ro");
  EXPECT_TRUE(req.terminal());
  EXPECT_EQ(req.stdout(), "/o");
  EXPECT_EQ(req.options().type_url(), "t");
}

TEST(ContainerdProto, StateResponseFieldNumbers) {
  containerd::task::v2::StateResponse resp;
  resp.set_pid(5);                                  // 3 -> 0x18
  resp.set_status(containerd::v1::types::STOPPED);  // 4 -> 0x20, 3
  resp.set_exit_status(2);                          // 9 -> 0x48
  resp.set_exec_id("e");                            // 11 -> 0x5a
  EXPECT_EQ(resp.SerializeAsString(), Bytes({0x18, 5, 0x20, 3, 0x48, 2, 0x5a, 1}) + "e");
}

TEST(ContainerdProto, ForwardRequestEnvelopeFieldNumbers) {
  containerd::services::events::ttrpc::v1::ForwardRequest fwd;
  auto* env = fwd.mutable_envelope();
  env->mutable_timestamp()->set_seconds(1);
  env->set_namespace_("ns");
  env->set_topic("/t");
  containerd::events::TaskStart start;
  start.set_container_id("c");
  start.set_pid(7);
  env->mutable_event()->set_type_url(start.GetTypeName());
  env->mutable_event()->set_value(start.SerializeAsString());
  // TaskStart{container_id=1 "c", pid=2 7}; Any{type_url=1, value=2};
  // Envelope{timestamp=1{seconds=1}, namespace=2, topic=3, event=4}; ForwardRequest{envelope=1}.
  const std::string start_bytes = Bytes({0x0a, 1}) + "c" + Bytes({0x10, 7});
  const std::string any = Bytes({0x0a, 27}) + "containerd.events.TaskStart" +
                          Bytes({0x12, static_cast<int>(start_bytes.size())}) + start_bytes;
  const std::string envelope = Bytes({0x0a, 2, 0x08, 1}) + Bytes({0x12, 2}) + "ns" + Bytes({0x1a, 2}) + "/t" +
                               Bytes({0x22, static_cast<int>(any.size())}) + any;
  EXPECT_EQ(fwd.SerializeAsString(), Bytes({0x0a, static_cast<int>(envelope.size())}) + envelope);
}

TEST(ContainerdProto, MetricsFieldNumbers) {
  io::containerd::cgroups::v1::Metrics m;
  m.mutable_pids()->set_current(3);                 // 2{1}
  m.mutable_cpu()->mutable_usage()->set_total(9);   // 3{1{1}}
  m.mutable_memory()->mutable_usage()->set_usage(4);  // 4{33{2}}
  EXPECT_EQ(m.SerializeAsString(), Bytes({0x12, 2, 0x08, 3, 0x1a, 4, 0x0a, 2, 0x08, 9, 0x22, 5, 0x8a, 0x02, 2,
                                          0x10, 4}));
}

TEST(ContainerdProto, RuntimeOptionsFieldNumbers) {
  runtimeoptions::v1::Options o;
  ASSERT_TRUE(o.ParseFromString(Bytes({0x0a, 1}) + "t" + Bytes({0x12, 2}) + "/c"));
  EXPECT_EQ(o.type_url(), "t");
  EXPECT_EQ(o.config_path(), "/c");
}

}  // namespace
