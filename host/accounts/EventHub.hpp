// Fan-out of live events (status changes, QR codes, messages, log entries) to the WebSocket
// clients allowed to see them: the attendant who owns the account, and admins.
//
// A subscriber's sink must not block: it queues the event and returns false when the
// subscriber cannot keep up, which unsubscribes it. One slow client never delays the others.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace connector::accounts {

class EventHub {
 public:
  using Sink = std::function<bool(const std::shared_ptr<const std::string> &event)>;

  // `attendant_id` is whose events the subscriber sees; admins see everyone's.
  uint64_t subscribe(std::string attendant_id, bool admin, Sink sink);
  void unsubscribe(uint64_t id);

  // Sends {"type": type, ...fields} to the owner's subscribers and to admins.
  void publish(const std::string &owner_attendant_id, const std::string &type,
               nlohmann::json fields);

  size_t subscriber_count() const;

 private:
  struct Subscriber {
    std::string attendant_id;
    bool admin = false;
    Sink sink;
  };

  mutable std::mutex mutex_;
  std::map<uint64_t, Subscriber> subscribers_;
  uint64_t next_id_ = 1;
};

}  // namespace connector::accounts
