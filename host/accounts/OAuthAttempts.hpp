// The OAuth sign-ins in flight: which account each `state` value belongs to.
//
// The provider's redirect reaches the host without a bearer token; the state is what authorises
// it, so it is unguessable (256 random bits), single-use and short-lived. Spent and expired
// states are remembered for a while so that a replay or a late answer can be told apart from a
// forgery and reported on the right account.
//
// Kept in memory only: a host restart ends every sign-in in flight (the attendant starts again).
//
// Threading: thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace connector::accounts {

class OAuthAttempts {
 public:
  using Clock = std::chrono::steady_clock;

  explicit OAuthAttempts(std::chrono::seconds lifetime = std::chrono::minutes(10))
      : lifetime_(lifetime) {}

  // A new state for the account. An older attempt of the same account stays valid until it
  // expires (two open browser tabs both work; each state still works once).
  std::string open(const std::string &account_id);

  enum class Verdict { kFresh, kUsed, kExpired, kUnknown };
  struct Taken {
    Verdict verdict = Verdict::kUnknown;
    std::string account_id;  // empty for kUnknown
  };

  // Consumes a state: kFresh exactly once, then kUsed.
  Taken take(const std::string &state);

 private:
  struct Attempt {
    std::string account_id;
    Clock::time_point expires;
    bool used = false;
  };
  void forget_old(Clock::time_point now);

  std::chrono::seconds lifetime_;
  std::mutex mutex_;
  std::map<std::string, Attempt> attempts_;
};

}  // namespace connector::accounts
