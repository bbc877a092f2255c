// The case routes through ControlApi::handle, without sockets: creating and updating cases,
// listing them with their messages, moving a message by hand, merges, and attendant scoping.
#include "CaseFixture.hpp"
#include "accounts/AccountService.hpp"
#include "api/ControlApi.hpp"
#include "auth/Attendants.hpp"
#include "store/AccountValues.hpp"
#include "store/AttachmentStore.hpp"
#include "store/SecretBox.hpp"

namespace connector::cases::test {
namespace {

class CasesApi : public CaseFixture {
 protected:
  void SetUp() override {
    CaseFixture::SetUp();
    auto secrets = store::SecretBox::load(dir_ / "secret.key");
    ASSERT_TRUE(secrets);
    secrets_ = std::make_unique<store::SecretBox>(*secrets);
    values_ = std::make_unique<store::AccountValues>(*db_, *secrets_);
    attachments_ = std::make_unique<store::AttachmentStore>(*db_, dir_ / "attachments");
    people_ = std::make_unique<auth::Attendants>(*db_);
    accounts_ = std::make_unique<accounts::AccountService>(*db_, *values_, *attachments_,
                                                           *conversations_, events_);
    api_ = std::make_unique<api::ControlApi>(api::ApiSettings{}, *accounts_, *people_,
                                             *conversations_, [] { return Json::array(); });
    api_->set_casework(work_.get());
    ana_token_ = people_->issue_token(kAna, "test")->secret;
    beto_token_ = people_->issue_token(kBeto, "test")->secret;
    auto admin = people_->create("root", auth::Role::kAdmin);
    ASSERT_TRUE(admin);
    admin_token_ = people_->issue_token(admin->id, "test")->secret;
  }

  api::Response call(const std::string &token, const std::string &method, const std::string &path,
                     const Json &body = nullptr, std::map<std::string, std::string> query = {}) {
    api::Request request;
    request.method = method;
    request.path = path;
    request.query = std::move(query);
    request.bearer_token = token;
    if (!body.is_null()) {
      request.content_type = "application/json";
      request.body = body.dump();
    }
    return api_->handle(request);
  }

  static Json json_of(const api::Response &response) { return Json::parse(response.body); }

  // "messages" events go to the case engine's ingest_all, as the host wires it.
  void file_batches_through_casework() {
    accounts_->set_batch_filer(
        [this](const accounts::Account &account, const std::vector<store::NewMessage> &messages)
            -> Expected<std::vector<store::Conversations::Stored>> {
          auto filed = work_->ingest_all(account.id, account.attendant_id, messages);
          if (!filed) return filed.failure();
          std::vector<store::Conversations::Stored> stored;
          for (const auto &one : *filed) stored.push_back(one.stored);
          return stored;
        });
  }

  std::unique_ptr<store::SecretBox> secrets_;
  std::unique_ptr<store::AccountValues> values_;
  std::unique_ptr<store::AttachmentStore> attachments_;
  std::unique_ptr<auth::Attendants> people_;
  std::unique_ptr<accounts::AccountService> accounts_;
  std::unique_ptr<api::ControlApi> api_;
  std::string ana_token_, beto_token_, admin_token_;
};

TEST_F(CasesApi, CreateWithThePlatformsIdAndContactThenUpdate) {
  auto created = call(ana_token_, "POST", "/api/v1/cases",
                      {{"id", 1234},
                       {"title", "Pedido 99"},
                       {"phones", {"(11) 98765-4321"}},
                       {"addresses", {"Cliente@Example.com"}}});
  ASSERT_EQ(created.status, 201) << created.body;
  Json c = json_of(created);
  EXPECT_EQ(c["id"], 1234);
  EXPECT_EQ(c["status"], "open");
  EXPECT_EQ(c["attendant_id"], kAna);
  EXPECT_EQ(c["contact"]["phones"], Json::array({"+5511987654321"}));
  EXPECT_EQ(c["contact"]["emails"], Json::array({"cliente@example.com"}));

  auto again = call(ana_token_, "POST", "/api/v1/cases", {{"id", 1234}});
  EXPECT_EQ(again.status, 409) << again.body;

  auto updated = call(ana_token_, "PATCH", "/api/v1/cases/1234",
                      {{"title", "Pedido 99 (pago)"},
                       {"status", "closed"},
                       {"addresses", {"financeiro@example.com"}}});
  ASSERT_EQ(updated.status, 200) << updated.body;
  Json u = json_of(updated);
  EXPECT_EQ(u["title"], "Pedido 99 (pago)");
  EXPECT_EQ(u["status"], "closed");
  EXPECT_TRUE(u["closed_at"].is_number_integer());
  EXPECT_EQ(u["contact"]["emails"], Json::array({"financeiro@example.com"}))
      << "a list given replaces the contact's addresses";
  EXPECT_EQ(u["contact"]["phones"], Json::array({"+5511987654321"})) << "phones were not given";
}

TEST_F(CasesApi, PatchReplacesPhonesAndAddressesAndAnEmptyListRemovesThemAll) {
  auto created = call(ana_token_, "POST", "/api/v1/cases",
                      {{"phones", {"+5511987654321", "+5511912345678"}},
                       {"addresses", {"velho@example.com"}}});
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string path = "/api/v1/cases/" + json_of(created)["id"].dump();

  auto patched = call(ana_token_, "PATCH", path, {{"phones", {"+5511912345678"}}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(json_of(patched)["contact"]["phones"], Json::array({"+5511912345678"}));
  EXPECT_EQ(json_of(patched)["contact"]["emails"], Json::array({"velho@example.com"}));

  auto emptied = call(ana_token_, "PATCH", path, {{"addresses", Json::array()}});
  ASSERT_EQ(emptied.status, 200) << emptied.body;
  EXPECT_EQ(json_of(emptied)["contact"]["emails"], Json::array());

  // The removed phone and address no longer find the case.
  const int64_t case_id = json_of(created)["id"];
  EXPECT_NE(receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"})).case_id, case_id);
  EXPECT_NE(receive(kAnaMail, mail("velho@example.com", "Oi")).case_id, case_id);
  EXPECT_EQ(receive(kAnaWhatsApp, whatsapp({"5511912345678@s.whatsapp.net"})).case_id, case_id);
}

TEST_F(CasesApi, CaseIdsOutsideWhatJavaScriptHoldsExactlyAreRefused) {
  for (const Json &id : {Json(9007199254740992LL), Json(uint64_t{18446744073709551615ULL}),
                         Json(0), Json(-5), Json(1.5), Json("12")}) {
    auto refused = call(ana_token_, "POST", "/api/v1/cases", {{"id", id}, {"phones", {"+5511987654321"}}});
    EXPECT_EQ(refused.status, 400) << id.dump();
    EXPECT_NE(refused.body.find("9007199254740991"), std::string::npos) << refused.body;
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 0) << "nothing written";
  EXPECT_EQ(count("SELECT COUNT(*) FROM contacts"), 0) << "nothing written";

  auto highest = call(ana_token_, "POST", "/api/v1/cases", {{"id", 9007199254740991LL}});
  ASSERT_EQ(highest.status, 201) << highest.body;
  EXPECT_EQ(json_of(highest)["id"], 9007199254740991LL);

  // A case the host opens itself afterwards still gets an id JavaScript holds exactly.
  Decision d = receive(kAnaMail, mail("novo@example.com", "Oi"));
  ASSERT_TRUE(d.case_id);
  EXPECT_GE(*d.case_id, 1);
  EXPECT_LT(*d.case_id, 9007199254740991LL);
}

TEST_F(CasesApi, NoAnswerShowsAnotherAttendantsContact) {
  auto anas = call(ana_token_, "POST", "/api/v1/cases",
                   {{"phones", {"+5511987654321"}}, {"addresses", {"cliente@example.com"}}});
  ASSERT_EQ(anas.status, 201);
  const Json anas_contact = json_of(anas)["contact"];

  auto betos = call(beto_token_, "POST", "/api/v1/cases", {{"phones", {"+5511987654321"}}});
  ASSERT_EQ(betos.status, 201) << betos.body;
  const Json betos_contact = json_of(betos)["contact"];
  EXPECT_NE(betos_contact["id"], anas_contact["id"]);
  EXPECT_EQ(betos_contact["emails"], Json::array()) << "Ana's address is not Beto's to see";

  const std::string betos_path = "/api/v1/cases/" + json_of(betos)["id"].dump();
  auto patched = call(beto_token_, "PATCH", betos_path, {{"addresses", {"outro@example.com"}}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  for (const auto &shown : {json_of(patched), json_of(call(beto_token_, "GET", betos_path)),
                            json_of(call(beto_token_, "GET", "/api/v1/cases"))["items"][0]}) {
    EXPECT_EQ(shown["contact"]["id"], betos_contact["id"]);
    EXPECT_EQ(shown["contact"]["emails"], Json::array({"outro@example.com"}));
  }
  auto anas_now = json_of(call(ana_token_, "GET", "/api/v1/cases/" + json_of(anas)["id"].dump()));
  EXPECT_EQ(anas_now["contact"], anas_contact) << "Beto's edits never reach Ana's contact";
}

TEST_F(CasesApi, OutboundMessageAPluginReportsIsFiledOnTheRecipientsCase) {
  accounts_->set_message_filer(
      [this](const accounts::Account &account, const store::NewMessage &m,
             std::optional<int64_t> case_id,
             const std::string &by) -> Expected<store::Conversations::Stored> {
        auto filed = work_->file_sent(account.id, account.attendant_id, m, case_id, by);
        if (!filed) return filed.failure();
        return filed->stored;
      });
  const int64_t case_id = new_case(kAna, {.phones = Strings{"+5511987654321"}});
  const Json event = {{"type", "message"},
                      {"direction", "outbound"},
                      {"external_id", "typed-on-the-phone"},
                      {"to", "+5511987654321"},
                      {"text", "Segue o boleto"},
                      {"link",
                       {{"phones", {"+5511987654321"}},
                        {"whatsapp_ids", {"5511987654321@s.whatsapp.net"}}}}};

  ASSERT_EQ(accounts_->emit("whatsapp", kAnaWhatsApp, event.dump()), CN_OK);

  const int64_t message =
      count("SELECT id FROM messages WHERE external_id = 'typed-on-the-phone'");
  EXPECT_EQ(case_of_message(message), case_id);
}

// message.new is built from what was written instead of read back: it must be exactly what
// GET /messages/{id} answers, for a linked message with everything a plugin can send, and for
// one left off cases.
TEST_F(CasesApi, TheLiveMessageIsTheMessageAsTheApiShowsIt) {
  accounts_->set_message_filer(
      [this](const accounts::Account &account, const store::NewMessage &m,
             std::optional<int64_t> case_id,
             const std::string &by) -> Expected<store::Conversations::Stored> {
        auto filed = work_->file_sent(account.id, account.attendant_id, m, case_id, by);
        if (!filed) return filed.failure();
        return filed->stored;
      });
  // Too large to be kept in the database: a file, synced before the message is stored.
  auto attachment = attachments_->put(
      "%PDF-1.4 boleto" + std::string(store::AttachmentStore::kDefaultInlineLimit, ' '));
  ASSERT_TRUE(attachment);
  const Json linked = {
      {"type", "message"},
      {"direction", "inbound"},
      {"external_id", "rich-1"},
      {"from", "Cliente <Cliente@Example.com>"},
      {"to", "loja@example.com"},
      {"subject", "RES: [#7] Boleto"},
      {"text", "Segue o boleto\nobrigado"},
      {"html", "<p>Segue o boleto</p>"},
      {"timestamp", 1700000000123},
      {"automatic", false},
      {"details", {{"message_id", "<abc@example.com>"}, {"size", 1234}, {"nested", {{"a", {1, 2}}}}}},
      {"attachments",
       {{{"id", *attachment}, {"name", "boleto.pdf"}, {"mime", "application/pdf"},
         {"content_id", "cid-1"}}}},
      {"link", {{"emails", {"Cliente@Example.com"}}, {"thread_refs", Json::array()}}}};
  const Json unlinked = {{"type", "message"},
                         {"external_id", "group-1"},
                         {"from", "120363000000000000@g.us"},
                         {"text", "no grupo"},
                         {"link", {{"whatsapp_ids", Json::array()}}}};

  EXPECT_EQ(attachments_->pending(), 1u);
  ASSERT_EQ(accounts_->emit("email-imap", kAnaMail, linked.dump()), CN_OK);
  EXPECT_EQ(attachments_->pending(), 0u) << "the message was stored before its attachment was synced";
  ASSERT_EQ(accounts_->emit("whatsapp", kAnaWhatsApp, unlinked.dump()), CN_OK);

  auto live = published("message.new");
  ASSERT_EQ(live.size(), 2u);
  for (const auto &event : live) {
    const Json &message = event["message"];
    auto shown = call(ana_token_, "GET", "/api/v1/messages/" + message["id"].dump());
    ASSERT_EQ(shown.status, 200) << shown.body;
    EXPECT_EQ(message, json_of(shown)) << message.dump() << "\n" << shown.body;
  }
  EXPECT_TRUE(live[0]["message"]["case"].is_object());
  EXPECT_EQ(live[0]["message"]["attachments"].size(), 1u);
  EXPECT_TRUE(live[1]["message"]["case"].is_null());
}

TEST_F(CasesApi, BadFieldsAreRefusedWithTheReason) {
  EXPECT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"phones", {"abc"}}}).status, 400);
  EXPECT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"status", "pending"}}).status, 400);
  auto unknown = call(ana_token_, "POST", "/api/v1/cases", {{"colour", "red"}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("valid fields"), std::string::npos);
  EXPECT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"attendant_id", kBeto}}).status, 403);
}

TEST_F(CasesApi, TheHostNumbersItsCasesApartFromThePlatformsIds) {
  ASSERT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"id", 5000}}).status, 201);
  Decision opened = receive(kAnaMail, mail("novo@example.com", "Oi"));
  ASSERT_TRUE(opened.case_id);
  EXPECT_EQ(*opened.case_id, 1) << "the platform's 5000 does not move the host's counter";
  auto next = call(ana_token_, "POST", "/api/v1/cases", {{"id", 5001}});
  EXPECT_EQ(next.status, 201) << "the platform's next number is still free: " << next.body;

  // The host's counter steps over ids the platform took.
  ASSERT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"id", 2}}).status, 201);
  ASSERT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"id", 3}}).status, 201);
  auto numbered = call(ana_token_, "POST", "/api/v1/cases", {{"title", "sem id"}});
  ASSERT_EQ(numbered.status, 201) << numbered.body;
  EXPECT_EQ(json_of(numbered)["id"], 4);
  EXPECT_EQ(*receive(kAnaMail, mail("outro@example.com", "Oi")).case_id, 5);
}

TEST_F(CasesApi, ATakenCaseIdIsRefusedAlikeWhoeverHoldsIt) {
  ASSERT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"id", 1}}).status, 201);
  auto own = call(ana_token_, "POST", "/api/v1/cases", {{"id", 1}});
  auto others = call(beto_token_, "POST", "/api/v1/cases", {{"id", 1}});
  EXPECT_EQ(others.status, 409);
  EXPECT_EQ(json_of(others)["error"]["code"], "case_id_unavailable") << others.body;
  EXPECT_EQ(others.status, own.status);
  EXPECT_EQ(others.body, own.body) << "Beto learns nothing Ana would not";
  EXPECT_EQ(others.body.find("exists"), std::string::npos) << others.body;
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM contacts WHERE attendant_id = ?", {std::string(kBeto)}), 0);
}

TEST_F(CasesApi, CasesAreListedNewestOpenedFirstAndPagedStably) {
  ASSERT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"id", 5000}}).status, 201);
  const int64_t host_case = *receive(kAnaMail, mail("novo@example.com", "Oi")).case_id;
  ASSERT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"id", 300}}).status, 201);
  // Opened in this order, a millisecond apart, whatever the clock did during the test.
  ASSERT_TRUE(db_->run("UPDATE cases SET created_at = 1000 WHERE id = 5000"));
  ASSERT_TRUE(db_->run("UPDATE cases SET created_at = 1001 WHERE id = ?", {host_case}));
  ASSERT_TRUE(db_->run("UPDATE cases SET created_at = 1002 WHERE id = 300"));

  std::vector<int64_t> seen;
  std::map<std::string, std::string> query = {{"limit", "1"}};
  for (int page = 0; page < 4; ++page) {
    auto listed = call(ana_token_, "GET", "/api/v1/cases", nullptr, query);
    ASSERT_EQ(listed.status, 200) << listed.body;
    Json body = json_of(listed);
    for (const auto &item : body["items"]) seen.push_back(item["id"]);
    if (body["next_before"].is_null()) break;
    query["before"] = body["next_before"].dump();
    // A case touched meanwhile keeps its place: the order is by when cases were opened.
    ASSERT_TRUE(db_->run("UPDATE cases SET updated_at = updated_at + 10"));
  }
  EXPECT_EQ(seen, (std::vector<int64_t>{300, host_case, 5000}));
}

TEST_F(CasesApi, PhonesAndWhatsAppIdsThatNameNoOneAreRefusedByName) {
  for (const std::string phone : {"+0000000", "+99999999999999"}) {
    auto refused = call(ana_token_, "POST", "/api/v1/cases", {{"phones", {phone}}});
    EXPECT_EQ(refused.status, 400) << phone;
    EXPECT_NE(refused.body.find(phone), std::string::npos) << refused.body;
  }
  for (const std::string &id :
       std::vector<std::string>{"x@evil.example", "abc@lid", std::string("55119\0@lid", 10)}) {
    auto refused = call(ana_token_, "POST", "/api/v1/cases", {{"whatsapp_ids", {id}}});
    EXPECT_EQ(refused.status, 400) << refused.body;
  }
  auto address = call(ana_token_, "POST", "/api/v1/cases",
                      {{"addresses", {std::string("ana\0@example.com", 16)}}});
  EXPECT_EQ(address.status, 400) << address.body;
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 0) << "nothing written";
  EXPECT_EQ(count("SELECT COUNT(*) FROM contact_identities"), 0) << "nothing written";
}

TEST_F(CasesApi, CaseMessagesFromEveryChannelNewestFirstWithPaging) {
  const int64_t id = new_case(kAna, {.phones = Strings{"+5511987654321"}, .addresses = Strings{"c@example.com"}});
  receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}, "primeira"));
  receive(kAnaMail, mail("c@example.com", "segunda"));
  receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}, "terceira"));

  const std::string path = "/api/v1/cases/" + std::to_string(id) + "/messages";
  auto first = call(ana_token_, "GET", path, nullptr, {{"limit", "2"}});
  ASSERT_EQ(first.status, 200) << first.body;
  Json page = json_of(first);
  ASSERT_EQ(page["items"].size(), 2u);
  EXPECT_EQ(page["items"][0]["text"], "terceira");
  EXPECT_EQ(page["items"][1]["channel"], "email-imap");
  Json rest = json_of(call(ana_token_, "GET", path, nullptr,
                           {{"limit", "2"}, {"before", page["next_before"].dump()}}));
  ASSERT_EQ(rest["items"].size(), 1u);
  EXPECT_EQ(rest["items"][0]["text"], "primeira");
  EXPECT_EQ(rest["items"][0]["case"]["method"], "phone");

  Json list = json_of(call(ana_token_, "GET", "/api/v1/cases"));
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["message_count"], 3);
  EXPECT_EQ(list["items"][0]["contact"]["phones"], Json::array({"+5511987654321"}));
}

TEST_F(CasesApi, MoveAMessageByHandRecordsManualAndWho) {
  receive(kAnaMail, mail("c@example.com", "Pedido"));
  const int64_t message = last_message_;
  const int64_t target = new_case(kAna, {.title = "Certo"});

  auto moved = call(ana_token_, "POST", "/api/v1/messages/" + std::to_string(message) + "/link",
                    {{"case_id", target}});
  ASSERT_EQ(moved.status, 200) << moved.body;
  Json m = json_of(moved);
  EXPECT_EQ(m["case"]["id"], target);
  EXPECT_EQ(m["case"]["method"], "manual");
  EXPECT_EQ(m["case"]["by"], kAna);

  auto unlinked = call(ana_token_, "POST", "/api/v1/messages/" + std::to_string(message) + "/link",
                       {{"case_id", nullptr}});
  ASSERT_EQ(unlinked.status, 200);
  EXPECT_TRUE(json_of(unlinked)["case"].is_null());
}

TEST_F(CasesApi, AttendantsSeeAndMoveOnlyTheirOwn) {
  receive(kAnaMail, mail("c@example.com", "Pedido"));
  const int64_t anas_message = last_message_;
  const int64_t anas_case =
      count("SELECT case_id FROM message_links WHERE message_id = ?", {anas_message});
  const int64_t betos_case = new_case(kBeto, {.title = "Beto"});
  const std::string anas_case_path = "/api/v1/cases/" + std::to_string(anas_case);
  const std::string link_path = "/api/v1/messages/" + std::to_string(anas_message) + "/link";

  EXPECT_EQ(call(beto_token_, "GET", anas_case_path).status, 404);
  EXPECT_EQ(call(beto_token_, "GET", anas_case_path + "/messages").status, 404);
  EXPECT_EQ(call(beto_token_, "PATCH", anas_case_path, {{"title", "x"}}).status, 404);
  EXPECT_EQ(call(beto_token_, "POST", link_path, {{"case_id", betos_case}}).status, 404);
  EXPECT_EQ(call(ana_token_, "POST", link_path, {{"case_id", betos_case}}).status, 404)
      << "Ana cannot move her message onto Beto's case";
  EXPECT_EQ(json_of(call(beto_token_, "GET", "/api/v1/cases"))["items"].size(), 1u);
  EXPECT_EQ(count("SELECT case_id FROM message_links WHERE message_id = ?", {anas_message}),
            anas_case);

  EXPECT_EQ(call(admin_token_, "GET", anas_case_path).status, 200);
  EXPECT_EQ(call(admin_token_, "POST", link_path, {{"case_id", betos_case}}).status, 200);

  // Filed by the admin on Beto's case: Ana still has her message, but not Beto's case id.
  const std::string message_path = "/api/v1/messages/" + std::to_string(anas_message);
  auto anas_view = call(ana_token_, "GET", message_path);
  ASSERT_EQ(anas_view.status, 200) << anas_view.body;
  EXPECT_TRUE(json_of(anas_view)["case"]["id"].is_null()) << anas_view.body;
  EXPECT_EQ(json_of(call(admin_token_, "GET", message_path))["case"]["id"], betos_case);
}

TEST_F(CasesApi, AdminsListAndUndoMerges) {
  receive(kAnaWhatsApp, whatsapp({"201234567890123@lid"}));
  new_case(kAna, {.phones = Strings{"+5511987654321"}});
  receive(kAnaWhatsApp, whatsapp({"201234567890123@lid", "5511987654321@s.whatsapp.net"}));

  EXPECT_EQ(call(ana_token_, "GET", "/api/v1/merges").status, 404);
  Json merges = json_of(call(admin_token_, "GET", "/api/v1/merges"));
  ASSERT_EQ(merges["items"].size(), 1u);
  const std::string undo = "/api/v1/merges/" + merges["items"][0]["id"].dump() + "/undo";

  const size_t updates_before = published("case.updated").size();
  auto undone = call(admin_token_, "POST", undo);
  ASSERT_EQ(undone.status, 200) << undone.body;
  // Both cases show their own contact again, and are pushed so.
  auto updates = published("case.updated");
  ASSERT_EQ(updates.size(), updates_before + 2);
  for (size_t i = updates_before; i < updates.size(); ++i) {
    const Json &shown = updates[i]["case"];
    EXPECT_EQ(shown["contact"]["id"], contact_of_case(shown["id"].get<int64_t>()).value_or(0));
  }
  EXPECT_NE(updates[updates_before]["case"]["contact"]["id"],
            updates[updates_before + 1]["case"]["contact"]["id"]);
  EXPECT_TRUE(json_of(undone)["undone_at"].is_number_integer());
  EXPECT_EQ(call(admin_token_, "POST", undo).status, 409);
  EXPECT_EQ(count("SELECT COUNT(DISTINCT contact_id) FROM contact_identities"), 2);
}


// A plugin hands several messages over in one "messages" event: those that can be read are
// stored and filed together and pushed each as message.new; one that breaks the rules is skipped
// and counted in the account's integration log; a malformed list is refused whole.
TEST_F(CasesApi, AMessagesEventStoresEveryReadableMessageAndSkipsTheRest) {
  file_batches_through_casework();
  auto message = [](const std::string &id, const std::string &from) {
    return Json{{"type", "message"},
                {"external_id", id},
                {"from", from},
                {"subject", "Pedido"},
                {"text", "texto de " + id},
                {"link", {{"emails", {from}}}}};
  };
  const Json event = {{"type", "messages"},
                      {"messages",
                       {message("lote-1", "um@example.com"),
                        {{"type", "message"}, {"external_id", ""}},  // no id: refused
                        message("lote-2", "um@example.com"),
                        "not an object",
                        message("lote-3", "dois@example.com")}}};

  ASSERT_EQ(accounts_->emit("email-imap", kAnaMail, event.dump()), CN_OK);

  EXPECT_EQ(count("SELECT COUNT(*) FROM messages"), 3);
  const auto live = published("message.new");
  ASSERT_EQ(live.size(), 3u);
  EXPECT_EQ(live[0]["message"]["external_id"], "lote-1");
  EXPECT_EQ(live[2]["message"]["external_id"], "lote-3");
  ASSERT_TRUE(live[0]["message"]["case"].is_object()) << live[0].dump();
  EXPECT_EQ(live[0]["message"]["case"]["id"], live[1]["message"]["case"]["id"]);
  EXPECT_NE(live[0]["message"]["case"]["id"], live[2]["message"]["case"]["id"]);
  EXPECT_EQ(count("SELECT COUNT(*) FROM integration_log WHERE account_id = 'acc-ana-mail' AND "
                  "kind = 'message_refused' AND text LIKE '2 of 5 %'"),
            1);

  // The same event again: a replay, nothing stored or pushed twice.
  ASSERT_EQ(accounts_->emit("email-imap", kAnaMail, event.dump()), CN_OK);
  EXPECT_EQ(count("SELECT COUNT(*) FROM messages"), 3);
  EXPECT_EQ(published("message.new").size(), 3u);

  for (const Json &bad : {Json{{"type", "messages"}}, Json{{"type", "messages"}, {"messages", 7}},
                          Json{{"type", "messages"}, {"messages", Json::array()}},
                          Json{{"type", "messages"},
                               {"messages", Json(std::vector<Json>(1001, message("x", "x@x.x")))}}}) {
    EXPECT_EQ(accounts_->emit("email-imap", kAnaMail, bad.dump()), CN_ERR_INVALID_ARGUMENT)
        << bad.dump().substr(0, 80);
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM messages"), 3);
}

// A batch the store cannot take is stored not at all, and the plugin is told to keep it.
TEST_F(CasesApi, AMessagesEventTheStoreCannotTakeLeavesNothing) {
  file_batches_through_casework();
  ASSERT_TRUE(db_->run(
      "CREATE TEMP TRIGGER injected_failure BEFORE INSERT ON main.messages "
      "WHEN NEW.external_id = 'ruim' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"));
  const Json event = {
      {"type", "messages"},
      {"messages",
       {{{"type", "message"}, {"external_id", "bom"}, {"from", "a@example.com"}},
        {{"type", "message"}, {"external_id", "ruim"}, {"from", "b@example.com"}}}}};

  EXPECT_EQ(accounts_->emit("email-imap", kAnaMail, event.dump()), CN_ERR_STORAGE);

  EXPECT_EQ(count("SELECT COUNT(*) FROM messages"), 0);
  EXPECT_TRUE(published("message.new").empty());
}

}  // namespace
}  // namespace connector::cases::test
