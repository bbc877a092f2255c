// The OAuth states the host hands out: unguessable, single-use, expiring, and a spent or expired
// one is still told apart from a forged one.
#include "accounts/OAuthAttempts.hpp"

#include <gtest/gtest.h>

#include <set>

namespace connector::accounts {
namespace {

using Verdict = OAuthAttempts::Verdict;

TEST(OAuthAttemptsTest, AStateWorksOnceForItsAccount) {
  OAuthAttempts attempts;
  const std::string state = attempts.open("acc_1");
  auto first = attempts.take(state);
  EXPECT_EQ(first.verdict, Verdict::kFresh);
  EXPECT_EQ(first.account_id, "acc_1");
  auto again = attempts.take(state);
  EXPECT_EQ(again.verdict, Verdict::kUsed);
  EXPECT_EQ(again.account_id, "acc_1");
}

TEST(OAuthAttemptsTest, AnUnknownOrEmptyStateNamesNoAccount) {
  OAuthAttempts attempts;
  attempts.open("acc_1");
  EXPECT_EQ(attempts.take("forged").verdict, Verdict::kUnknown);
  EXPECT_EQ(attempts.take("").verdict, Verdict::kUnknown);
  EXPECT_TRUE(attempts.take("forged").account_id.empty());
}

TEST(OAuthAttemptsTest, AnExpiredStateIsRefusedAndSpent) {
  OAuthAttempts attempts(std::chrono::seconds(0));
  const std::string state = attempts.open("acc_2");
  auto late = attempts.take(state);
  EXPECT_EQ(late.verdict, Verdict::kExpired);
  EXPECT_EQ(late.account_id, "acc_2");
  EXPECT_EQ(attempts.take(state).verdict, Verdict::kUsed);
}

TEST(OAuthAttemptsTest, StatesAreLongAndDistinct) {
  OAuthAttempts attempts;
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string state = attempts.open("acc_1");
    EXPECT_GE(state.size(), 43u);  // 256 bits in base64url
    seen.insert(state);
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace connector::accounts
