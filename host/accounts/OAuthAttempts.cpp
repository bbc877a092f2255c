#include "accounts/OAuthAttempts.hpp"

#include "common/RandomId.hpp"

namespace connector::accounts {
namespace {

// How long a spent or expired state is remembered, to name a replay as one.
constexpr auto kMemory = std::chrono::hours(24);
constexpr size_t kMaxRemembered = 10000;

}  // namespace

std::string OAuthAttempts::open(const std::string &account_id) {
  const auto now = Clock::now();
  std::string state = random_text(32);
  std::lock_guard lock(mutex_);
  forget_old(now);
  attempts_[state] = Attempt{account_id, now + lifetime_, false};
  return state;
}

OAuthAttempts::Taken OAuthAttempts::take(const std::string &state) {
  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  auto it = attempts_.find(state);
  if (state.empty() || it == attempts_.end()) return {Verdict::kUnknown, {}};
  Attempt &attempt = it->second;
  if (attempt.used) return {Verdict::kUsed, attempt.account_id};
  attempt.used = true;  // an expired state is spent too
  if (now >= attempt.expires) return {Verdict::kExpired, attempt.account_id};
  return {Verdict::kFresh, attempt.account_id};
}

void OAuthAttempts::forget_old(Clock::time_point now) {
  for (auto it = attempts_.begin(); it != attempts_.end();) {
    it = now >= it->second.expires + kMemory ? attempts_.erase(it) : std::next(it);
  }
  // A flood of starts must not grow memory without bound: drop the oldest first.
  while (attempts_.size() >= kMaxRemembered) {
    auto oldest = attempts_.begin();
    for (auto it = attempts_.begin(); it != attempts_.end(); ++it) {
      if (it->second.expires < oldest->second.expires) oldest = it;
    }
    attempts_.erase(oldest);
  }
}

}  // namespace connector::accounts
