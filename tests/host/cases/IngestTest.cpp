// Casework::ingest stores a message and files it on its case in one transaction: a failure at
// any step leaves neither the message nor its link (nor the contact, case or reopening the
// decision would have made), and the same message sent again is then stored and linked.
//
// Failures are injected with real SQLite triggers on the host's own connection (TEMP triggers
// live only on the connection that made them), so the failing statement is the host's own.
#include "CaseFixture.hpp"

namespace connector::cases::test {
namespace {

class Ingest : public CaseFixture {
 protected:
  // Makes every INSERT into `table` fail until heal() is called.
  void break_inserts_into(const std::string &table) {
    ASSERT_TRUE(db_->run("CREATE TEMP TRIGGER injected_failure BEFORE INSERT ON main." + table +
                         " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"));
  }
  void heal() { ASSERT_TRUE(db_->run("DROP TRIGGER temp.injected_failure")); }

  static store::NewMessage numbered(store::NewMessage m, const std::string &external_id) {
    m.external_id = external_id;
    return m;
  }

  int64_t rows(const std::string &table) { return count("SELECT COUNT(*) FROM " + table); }
};

TEST_F(Ingest, AFailedLinkLeavesNeitherTheMessageNorTheContactNorTheCase) {
  const auto message = numbered(whatsapp({"5511987654321@s.whatsapp.net"}, "primeira"), "wa-1");
  break_inserts_into("message_links");

  auto failed = work_->ingest(kAnaWhatsApp, kAna, message);

  ASSERT_FALSE(failed);
  EXPECT_NE(failed.failure().message.find("injected failure"), std::string::npos)
      << failed.failure().message;
  EXPECT_EQ(rows("messages"), 0) << "a message is never stored without its link decision";
  EXPECT_EQ(rows("message_links"), 0);
  EXPECT_EQ(rows("contacts"), 0);
  EXPECT_EQ(rows("contact_identities"), 0);
  EXPECT_EQ(rows("cases"), 0);
  EXPECT_TRUE(published("case.created").empty());
  EXPECT_TRUE(published("account.auto_linked").empty());

  // The channel delivers it again: this time it is stored and filed, not taken for a replay.
  heal();
  auto filed = work_->ingest(kAnaWhatsApp, kAna, message);
  ASSERT_TRUE(filed) << filed.failure().message;
  EXPECT_TRUE(filed->stored.inserted);
  ASSERT_TRUE(filed->decision.case_id);
  EXPECT_EQ(case_of_message(filed->stored.id), filed->decision.case_id);
  EXPECT_EQ(rows("messages"), 1);
  EXPECT_EQ(rows("contacts"), 1);
  EXPECT_EQ(rows("cases"), 1);
  EXPECT_EQ(published("case.created").size(), 1u);
}

TEST_F(Ingest, AFailedLinkDoesNotReopenTheClosedCase) {
  settings_.closed_case = "reopen";
  start();
  const int64_t case_id =
      new_case(kAna, {.status = std::string("closed"), .phones = Strings{"+5511987654321"}});
  int64_t updated_at = count("SELECT updated_at FROM cases WHERE id = ?", {case_id});
  break_inserts_into("message_links");

  EXPECT_FALSE(work_->ingest(kAnaWhatsApp, kAna,
                             numbered(whatsapp({"5511987654321@s.whatsapp.net"}), "wa-2")));

  EXPECT_EQ(status_of(case_id), "closed");
  EXPECT_EQ(count("SELECT updated_at FROM cases WHERE id = ?", {case_id}), updated_at);
  EXPECT_EQ(rows("messages"), 0);

  heal();
  auto filed = work_->ingest(kAnaWhatsApp, kAna,
                             numbered(whatsapp({"5511987654321@s.whatsapp.net"}), "wa-2"));
  ASSERT_TRUE(filed);
  EXPECT_EQ(filed->decision.case_id, case_id);
  EXPECT_EQ(status_of(case_id), "open");
  EXPECT_EQ(case_of_message(filed->stored.id), case_id);
}

TEST_F(Ingest, AMessageThatCannotBeStoredIsNotLinkedNorMakesAContact) {
  break_inserts_into("messages");

  EXPECT_FALSE(work_->ingest(kAnaMail, kAna, numbered(mail("novo@example.com", "Oi"), "m-1")));

  EXPECT_EQ(rows("messages"), 0);
  EXPECT_EQ(rows("message_links"), 0);
  EXPECT_EQ(rows("contacts"), 0);
  EXPECT_EQ(rows("cases"), 0);
}

TEST_F(Ingest, AReplayIsNeitherStoredNorLinkedTwice) {
  const auto message = numbered(mail("novo@example.com", "Oi"), "m-2");
  auto first = work_->ingest(kAnaMail, kAna, message);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->stored.inserted);

  auto again = work_->ingest(kAnaMail, kAna, message);

  ASSERT_TRUE(again);
  EXPECT_FALSE(again->stored.inserted);
  EXPECT_EQ(again->stored.id, first->stored.id);
  EXPECT_EQ(rows("messages"), 1);
  EXPECT_EQ(rows("message_links"), 1);
  EXPECT_EQ(rows("cases"), 1);
}


// A batch is filed in its order, in one transaction: a later message sees what the ones before
// it made (one contact, one case for a sender's three mails), and the events follow the commit.
TEST_F(Ingest, ABatchIsFiledInOrderEachMessageSeeingTheOnesBeforeIt) {
  std::vector<store::NewMessage> batch = {
      numbered(mail("ana.cliente@example.com", "Pedido 1"), "b-1"),
      numbered(mail("outro@example.com", "Outro assunto"), "b-2"),
      numbered(mail("ana.cliente@example.com", "Pedido 1, mais"), "b-3"),
      numbered(mail("ana.cliente@example.com", "Pedido 1, ainda"), "b-4")};

  auto filed = work_->ingest_all(kAnaMail, kAna, batch);

  ASSERT_TRUE(filed) << filed.failure().message;
  ASSERT_EQ(filed->size(), 4u);
  for (const auto &one : *filed) EXPECT_TRUE(one.stored.inserted);
  EXPECT_LT((*filed)[0].stored.id, (*filed)[1].stored.id);
  EXPECT_LT((*filed)[2].stored.id, (*filed)[3].stored.id);
  ASSERT_TRUE((*filed)[0].decision.case_id);
  EXPECT_EQ((*filed)[2].decision.case_id, (*filed)[0].decision.case_id);
  EXPECT_EQ((*filed)[3].decision.case_id, (*filed)[0].decision.case_id);
  EXPECT_NE((*filed)[1].decision.case_id, (*filed)[0].decision.case_id);
  EXPECT_EQ(case_of_message((*filed)[3].stored.id), (*filed)[0].decision.case_id);
  EXPECT_EQ(rows("messages"), 4);
  EXPECT_EQ(rows("contacts"), 2);
  EXPECT_EQ(rows("cases"), 2);
  EXPECT_EQ(published("case.created").size(), 2u);
  // The account's count of linked cases is said once, right: two cases.
  const auto counts = published("account.auto_linked");
  ASSERT_FALSE(counts.empty());
  EXPECT_EQ(counts.back()["cases"], 2) << counts.back().dump();

  // The same batch again is a replay: nothing more.
  auto again = work_->ingest_all(kAnaMail, kAna, batch);
  ASSERT_TRUE(again);
  for (const auto &one : *again) EXPECT_FALSE(one.stored.inserted);
  EXPECT_EQ(rows("messages"), 4);
  EXPECT_EQ(rows("cases"), 2);
}

TEST_F(Ingest, AFailureAnywhereInABatchStoresNoneOfIt) {
  ASSERT_TRUE(db_->run(
      "CREATE TEMP TRIGGER injected_failure BEFORE INSERT ON main.messages "
      "WHEN NEW.external_id = 'c-3' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"));
  std::vector<store::NewMessage> batch = {
      numbered(mail("primeiro@example.com", "Um"), "c-1"),
      numbered(mail("segundo@example.com", "Dois"), "c-2"),
      numbered(mail("terceiro@example.com", "Tres"), "c-3")};

  auto failed = work_->ingest_all(kAnaMail, kAna, batch);

  ASSERT_FALSE(failed);
  EXPECT_NE(failed.failure().message.find("injected failure"), std::string::npos);
  EXPECT_EQ(rows("messages"), 0) << "the messages before the failure were kept";
  EXPECT_EQ(rows("message_links"), 0);
  EXPECT_EQ(rows("contacts"), 0);
  EXPECT_EQ(rows("cases"), 0);
  EXPECT_TRUE(published("case.created").empty());
  EXPECT_TRUE(published("account.auto_linked").empty());

  // Handed over again once the failure is gone: every one stored and filed.
  heal();
  auto filed = work_->ingest_all(kAnaMail, kAna, batch);
  ASSERT_TRUE(filed) << filed.failure().message;
  for (const auto &one : *filed) EXPECT_TRUE(one.stored.inserted);
  EXPECT_EQ(rows("messages"), 3);
  EXPECT_EQ(rows("cases"), 3);
}

}  // namespace
}  // namespace connector::cases::test
