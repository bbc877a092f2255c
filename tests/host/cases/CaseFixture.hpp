// A temporary store with two attendants, one WhatsApp and one e-mail account each, and a
// Casework on top, driven directly as the ingest path drives it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "TempDir.hpp"
#include "accounts/EventHub.hpp"
#include "cases/Casework.hpp"
#include "store/Conversations.hpp"
#include "store/Database.hpp"

namespace connector::cases::test {

using Json = nlohmann::json;
using Strings = std::vector<std::string>;  // CaseFields' identity lists are optional vectors

class CaseFixture : public ::testing::Test {
 protected:
  static constexpr const char *kAna = "att-ana";    // attendant
  static constexpr const char *kBeto = "att-beto";  // another attendant
  static constexpr const char *kAnaWhatsApp = "acc-ana-wa";
  static constexpr const char *kAnaMail = "acc-ana-mail";
  static constexpr const char *kBetoMail = "acc-beto-mail";
  static constexpr const char *kBetoWhatsApp = "acc-beto-wa";

  void SetUp() override {
    auto db = store::Database::open(dir_ / "test.db");
    ASSERT_TRUE(db) << db.failure().message;
    db_ = std::move(*db);
    conversations_ = std::make_unique<store::Conversations>(*db_);
    for (const char *who : {kAna, kBeto}) {
      ASSERT_TRUE(
          db_->run("INSERT INTO attendants (id, name, role, created_at) VALUES (?, ?, "
                   "'attendant', 0)",
                   {std::string(who), std::string(who)}));
    }
    add_account(kAnaWhatsApp, kAna, "whatsapp");
    add_account(kAnaMail, kAna, "email-imap");
    add_account(kBetoMail, kBeto, "email-imap");
    add_account(kBetoWhatsApp, kBeto, "whatsapp");
    events_.subscribe("admin", true, [this](const std::shared_ptr<const std::string> &event) {
      std::lock_guard lock(events_mutex_);
      published_.push_back(Json::parse(*event));
      return true;
    });
    start();
  }

  // (Re)creates the engine with the current settings_.
  void start() {
    work_.reset();
    auto work = Casework::open(*db_, events_, settings_);
    ASSERT_TRUE(work) << work.failure().message;
    work_ = std::move(*work);
  }

  void add_account(const std::string &id, const std::string &attendant, const std::string &plugin) {
    ASSERT_TRUE(
        db_->run("INSERT INTO accounts (id, attendant_id, plugin_id, created_at, updated_at) "
                 "VALUES (?, ?, ?, 0, 0)",
                 {id, attendant, plugin}));
  }

  static store::NewMessage whatsapp(std::vector<std::string> ids, std::string text = "oi") {
    store::NewMessage m;
    m.channel = "whatsapp";
    m.direction = "inbound";
    m.sender = ids.empty() ? "" : ids.front();
    m.text = std::move(text);
    m.link_keys = {{"whatsapp_ids", ids}};
    return m;
  }

  static store::NewMessage mail(const std::string &from, const std::string &subject,
                                std::vector<std::string> thread_refs = {}) {
    store::NewMessage m;
    m.channel = "email-imap";
    m.direction = "inbound";
    m.sender = from;
    m.subject = subject;
    m.text = "body";
    m.link_keys = {{"emails", {from}}, {"thread_refs", thread_refs}};
    return m;
  }

  // Stores and files the message as AccountService does.
  Decision receive(const std::string &account, store::NewMessage m) {
    m.external_id = "ext-" + std::to_string(++next_external_);
    auto filed = work_->ingest(account, owner_of(account), m);
    EXPECT_TRUE(filed) << filed.failure().message;
    if (!filed) return Decision{};
    EXPECT_TRUE(filed->stored.inserted);
    last_message_ = filed->stored.id;
    return filed->decision;
  }

  // Stores an outbound mail with this Message-ID, filed on `case_id` as a sent reply is.
  int64_t sent_mail(const std::string &account, const std::string &message_id, int64_t case_id) {
    store::NewMessage m;
    m.account_id = account;
    m.channel = "email-imap";
    m.direction = "outbound";
    m.external_id = "sent-" + std::to_string(++next_external_);
    m.details = {{"message_id", message_id}};
    auto stored = conversations_->insert(m);
    EXPECT_TRUE(stored);
    EXPECT_TRUE(work_->move_message(stored->id, case_id, owner_of(account)));
    return stored->id;
  }

  int64_t new_case(const std::string &attendant, CaseFields fields) {
    auto id = work_->create_case(attendant, fields, attendant);
    EXPECT_TRUE(id) << id.failure().message;
    return id ? *id : 0;
  }

  std::string owner_of(const std::string &account) {
    return account == kBetoMail || account == kBetoWhatsApp ? kBeto : kAna;
  }

  // An outbound message the plugin reported itself (typed on the phone), to `to`.
  static store::NewMessage whatsapp_from_phone(const std::string &to_jid, const std::string &text) {
    store::NewMessage m;
    m.channel = "whatsapp";
    m.direction = "outbound";
    m.recipient = to_jid;
    m.text = text;
    m.link_keys = {{"whatsapp_ids", {to_jid}}};
    return m;
  }

  std::vector<std::string> identities_of(int64_t contact_id) {
    std::vector<std::string> out;
    (void)db_->run("SELECT value FROM contact_identities WHERE contact_id = ? ORDER BY value",
                   {contact_id}, [&](const store::Row &row) { out.push_back(row.text(0)); });
    return out;
  }

  std::optional<int64_t> case_of_message(int64_t message_id) {
    std::optional<int64_t> case_id;
    (void)db_->run("SELECT case_id FROM message_links WHERE message_id = ?", {message_id},
                   [&](const store::Row &row) { case_id = row.integer(0); });
    return case_id;
  }

  std::optional<int64_t> contact_of_case(int64_t case_id) {
    std::optional<int64_t> contact;
    (void)db_->run("SELECT contact_id FROM cases WHERE id = ?", {case_id},
                   [&](const store::Row &row) { contact = row.optional_integer(0); });
    return contact;
  }

  std::string json_title(int64_t case_id) {
    std::string title;
    (void)db_->run("SELECT title FROM cases WHERE id = ?", {case_id},
                   [&](const store::Row &row) { title = row.text(0); });
    return title;
  }

  std::string status_of(int64_t case_id) {
    std::string status;
    (void)db_->run("SELECT status FROM cases WHERE id = ?", {case_id},
                   [&](const store::Row &row) { status = row.text(0); });
    return status;
  }

  int64_t count(const std::string &sql, const std::vector<store::Value> &params = {}) {
    int64_t n = -1;
    (void)db_->run(sql, params, [&](const store::Row &row) { n = row.integer(0); });
    return n;
  }

  std::vector<Json> published(const std::string &type) {
    std::lock_guard lock(events_mutex_);
    std::vector<Json> out;
    for (const auto &e : published_) {
      if (e["type"] == type) out.push_back(e);
    }
    return out;
  }

  connector::test::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<store::Conversations> conversations_;
  accounts::EventHub events_;
  config::Matching settings_;
  std::unique_ptr<Casework> work_;
  int64_t last_message_ = 0;
  int next_external_ = 0;
  std::mutex events_mutex_;
  std::vector<Json> published_;
};

}  // namespace connector::cases::test
