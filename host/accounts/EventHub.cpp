#include "accounts/EventHub.hpp"

#include "store/Database.hpp"

#include <vector>

namespace connector::accounts {

uint64_t EventHub::subscribe(std::string attendant_id, bool admin, Sink sink) {
  std::lock_guard lock(mutex_);
  const uint64_t id = next_id_++;
  subscribers_.emplace(id, Subscriber{std::move(attendant_id), admin, std::move(sink)});
  return id;
}

void EventHub::unsubscribe(uint64_t id) {
  std::lock_guard lock(mutex_);
  subscribers_.erase(id);
}

void EventHub::publish(const std::string &owner_attendant_id, const std::string &type,
                       nlohmann::json fields) {
  fields["type"] = type;
  fields["at"] = store::now_ms();
  auto event = std::make_shared<const std::string>(fields.dump(-1, ' ', false,
                                                               nlohmann::json::error_handler_t::replace));
  std::lock_guard lock(mutex_);
  std::vector<uint64_t> dropped;
  for (auto &[id, subscriber] : subscribers_) {
    if (!subscriber.admin && subscriber.attendant_id != owner_attendant_id) continue;
    if (!subscriber.sink(event)) dropped.push_back(id);
  }
  for (uint64_t id : dropped) subscribers_.erase(id);
}

size_t EventHub::subscriber_count() const {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

}  // namespace connector::accounts
