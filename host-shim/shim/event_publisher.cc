#include "shim/event_publisher.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <string_view>
#include <utility>

#include <google/protobuf/empty.pb.h>

#include "containerd/services/events/ttrpc/v1/events.pb.h"
#include "ttrpc/client.h"
#include "ttrpc/typed.h"

namespace uvmshim::shim {
namespace {

// The event's full proto name for its topic (containerd's task events,
// proto/containerd/events/task.proto). Named here rather than read through
// GetDescriptor(): that reflection builds the descriptors of the proto file and
// its imports on the heap of every shim (~0.1 MiB each; issue #13, shim memory).
std::string EventTypeName(const std::string& topic, const google::protobuf::Message& event) {
  static constexpr std::pair<std::string_view, std::string_view> kTaskEvents[] = {
      {"/tasks/create", "containerd.events.TaskCreate"},
      {"/tasks/start", "containerd.events.TaskStart"},
      {"/tasks/delete", "containerd.events.TaskDelete"},
      {"/tasks/exit", "containerd.events.TaskExit"},
      {"/tasks/oom", "containerd.events.TaskOOM"},
      {"/tasks/exec-added", "containerd.events.TaskExecAdded"},
      {"/tasks/exec-started", "containerd.events.TaskExecStarted"},
      {"/tasks/paused", "containerd.events.TaskPaused"},
      {"/tasks/resumed", "containerd.events.TaskResumed"},
      {"/tasks/checkpointed", "containerd.events.TaskCheckpointed"},
  };
  for (const auto& [known_topic, type_name] : kTaskEvents)
    if (topic == known_topic) return std::string(type_name);
  return event.GetDescriptor()->full_name();
}

}  // namespace

EventPublisher::EventPublisher(std::string ttrpc_address, std::string ns)
    : address_(std::move(ttrpc_address)), ns_(std::move(ns)) {
  thread_ = std::thread([this] { Loop(); });
}

EventPublisher::~EventPublisher() {
  {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(5),
                      [&] { return queue_.empty() && in_flight_ == 0; });
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void EventPublisher::Publish(const std::string& topic, const google::protobuf::Message& event) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  Item item{topic, EventTypeName(topic, event), event.SerializeAsString(),
            nanos / 1'000'000'000, static_cast<std::int32_t>(nanos % 1'000'000'000)};
  // ShortDebugString() uses reflection too: only when the line is written.
  if (spdlog::should_log(spdlog::level::debug)) spdlog::debug("event {} {}", topic, event.ShortDebugString());
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(item));
  }
  changed_.notify_all();
}

void EventPublisher::Flush() {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, std::chrono::seconds(10),
                    [&] { return queue_.empty() && in_flight_ == 0; });
}

void EventPublisher::Loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    ++in_flight_;
    lock.unlock();
    if (!address_.empty()) {
      // containerd may be restarting: retry for a while, then drop (and say so).
      bool delivered = false;
      for (int attempt = 0; attempt < 50 && !delivered; ++attempt) {
        delivered = Deliver(item);
        if (!delivered) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (!delivered) spdlog::error("event {} dropped: containerd unreachable at {}", item.topic, address_);
    }
    lock.lock();
    --in_flight_;
    changed_.notify_all();
  }
}

bool EventPublisher::Deliver(const Item& item) {
  try {
    if (!client_ || client_->closed()) client_ = ttrpc::Client::Connect(address_);
    containerd::services::events::ttrpc::v1::ForwardRequest request;
    auto* envelope = request.mutable_envelope();
    envelope->mutable_timestamp()->set_seconds(item.seconds);
    envelope->mutable_timestamp()->set_nanos(item.nanos);
    envelope->set_namespace_(ns_);
    envelope->set_topic(item.topic);
    envelope->mutable_event()->set_type_url(item.type_url);
    envelope->mutable_event()->set_value(item.value);
    google::protobuf::Empty response;
    auto status = ttrpc::CallTyped(*client_, "containerd.services.events.ttrpc.v1.Events", "Forward",
                                   request, response,
                                   ttrpc::CallOptions::ForNamespace(ns_, std::chrono::seconds(5)));
    if (!status.ok()) {
      spdlog::warn("event {}: Forward failed: {}", item.topic, status.ToString());
      client_.reset();
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    spdlog::debug("event {}: {}", item.topic, e.what());
    client_.reset();
    return false;
  }
}

}  // namespace uvmshim::shim
