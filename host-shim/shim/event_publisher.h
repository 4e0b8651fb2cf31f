// Forwards task events to containerd (Events.Forward on TTRPC_ADDRESS) in the
// order they were published, from one thread, reconnecting when containerd
// restarts. Without an address (uvmctl's private shims) events are dropped.
#pragma once

#include <google/protobuf/message.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace uvmshim::ttrpc {
class Client;
}

namespace uvmshim::shim {

class EventPublisher {
 public:
  EventPublisher(std::string ttrpc_address, std::string ns);
  ~EventPublisher();  // delivers what is queued (bounded wait), then stops
  EventPublisher(const EventPublisher&) = delete;
  EventPublisher& operator=(const EventPublisher&) = delete;

  // topic e.g. "/tasks/exit"; the event's type_url is its full proto name.
  void Publish(const std::string& topic, const google::protobuf::Message& event);
  // Blocks until everything published so far was delivered or dropped.
  void Flush();

 private:
  struct Item {
    std::string topic;
    std::string type_url;
    std::string value;
    std::int64_t seconds;
    std::int32_t nanos;
  };
  void Loop();
  bool Deliver(const Item& item);

  const std::string address_;
  const std::string ns_;
  std::unique_ptr<ttrpc::Client> client_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Item> queue_;
  std::size_t in_flight_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace uvmshim::shim
