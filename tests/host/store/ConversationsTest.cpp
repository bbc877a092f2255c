#include "TempDir.hpp"

#include "store/Conversations.hpp"

#include <gtest/gtest.h>

namespace connector::store {
namespace {

using test::TempDir;

class ConversationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Database::open(dir_ / "a.db");
    ASSERT_TRUE(db);
    db_ = std::move(*db);
    ASSERT_TRUE(db_->run("INSERT INTO attendants VALUES ('att1', 'Ana', 'attendant', 1)"));
    ASSERT_TRUE(db_->run("INSERT INTO accounts (id, attendant_id, plugin_id, created_at, "
                         "updated_at) VALUES ('acc1', 'att1', 'loopback', 1, 1)"));
    conversations_ = std::make_unique<Conversations>(*db_);
  }

  NewMessage message(const std::string &external_id, const std::string &text) {
    NewMessage m;
    m.account_id = "acc1";
    m.channel = "loopback";
    m.direction = "inbound";
    m.external_id = external_id;
    m.sender = "+5511987654321";
    m.text = text;
    return m;
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Conversations> conversations_;
};

TEST_F(ConversationsTest, TheSameExternalIdIsStoredOnce) {
  auto first = conversations_->insert(message("wa-1", "oi"));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->inserted);
  auto replay = conversations_->insert(message("wa-1", "oi (replayed)"));
  ASSERT_TRUE(replay);
  EXPECT_FALSE(replay->inserted);
  EXPECT_EQ(replay->id, first->id);
  auto listed = conversations_->account_messages("acc1", Page{});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["text"], "oi");
}

TEST_F(ConversationsTest, PagesRunNewestFirstAndDoNotShiftWhenMessagesArrive) {
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(conversations_->insert(message("m" + std::to_string(i), std::to_string(i))));
  }
  auto page = conversations_->account_messages("acc1", Page{std::nullopt, 2});
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0]["text"], "5");
  EXPECT_EQ(page[1]["text"], "4");
  ASSERT_TRUE(conversations_->insert(message("m6", "6")));
  auto next = conversations_->account_messages("acc1", Page{page[1]["id"].get<int64_t>(), 2});
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0]["text"], "3");
  EXPECT_EQ(next[1]["text"], "2");
}

TEST_F(ConversationsTest, DeliveryUpdatesReachOnlyTheirOwnMessage) {
  auto sent = message("out-1", "hello");
  sent.direction = "outbound";
  sent.delivery_status = "sent";
  auto stored = conversations_->insert(sent);
  ASSERT_TRUE(stored);
  auto updated = conversations_->set_delivery("acc1", "out-1", "read");
  ASSERT_TRUE(updated);
  EXPECT_EQ(*updated, stored->id);
  EXPECT_EQ((*conversations_->message(stored->id))["delivery_status"], "read");
  EXPECT_FALSE(conversations_->set_delivery("acc1", "out-2", "read"));
  EXPECT_FALSE(conversations_->set_delivery("other", "out-1", "read"));
}

TEST_F(ConversationsTest, AutomaticLinksAreCountedPerAccountAndManualOnesAreNot) {
  ASSERT_TRUE(db_->run("INSERT INTO cases (id, attendant_id, title, created_at, updated_at) "
                       "VALUES (1, 'att1', 'a', 1, 1), (2, 'att1', 'b', 1, 1), "
                       "(3, 'att1', 'c', 1, 1)"));
  std::vector<int64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(conversations_->insert(message(std::to_string(i), ""))->id);
  ASSERT_TRUE(db_->run("INSERT INTO message_links VALUES (?, 1, 'phone', '', 1), "
                       "(?, 1, 'phone', '', 1), (?, 2, 'new_case', '', 1), (?, 3, 'manual', 'att1', 1)",
                       {ids[0], ids[1], ids[2], ids[3]}));
  EXPECT_EQ(conversations_->auto_linked_cases("acc1"), 2);
  EXPECT_EQ(conversations_->case_messages(1, Page{}).size(), 2u);
  EXPECT_EQ((*conversations_->message(ids[3]))["case"]["method"], "manual");
}

}  // namespace
}  // namespace connector::store
