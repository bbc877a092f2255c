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
  EXPECT_EQ(u["contact"]["emails"], Json::array({"cliente@example.com", "financeiro@example.com"}));
}

TEST_F(CasesApi, BadFieldsAreRefusedWithTheReason) {
  EXPECT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"phones", {"abc"}}}).status, 400);
  EXPECT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"status", "pending"}}).status, 400);
  auto unknown = call(ana_token_, "POST", "/api/v1/cases", {{"colour", "red"}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("valid fields"), std::string::npos);
  EXPECT_EQ(call(ana_token_, "POST", "/api/v1/cases", {{"attendant_id", kBeto}}).status, 403);
}

TEST_F(CasesApi, CaseMessagesFromEveryChannelNewestFirstWithPaging) {
  const int64_t id = new_case(kAna, {.phones = {"+5511987654321"}, .addresses = {"c@example.com"}});
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
}

TEST_F(CasesApi, AdminsListAndUndoMerges) {
  receive(kAnaWhatsApp, whatsapp({"201234567890123@lid"}));
  new_case(kAna, {.phones = {"+5511987654321"}});
  receive(kAnaWhatsApp, whatsapp({"201234567890123@lid", "5511987654321@s.whatsapp.net"}));

  EXPECT_EQ(call(ana_token_, "GET", "/api/v1/merges").status, 404);
  Json merges = json_of(call(admin_token_, "GET", "/api/v1/merges"));
  ASSERT_EQ(merges["items"].size(), 1u);
  const std::string undo = "/api/v1/merges/" + merges["items"][0]["id"].dump() + "/undo";

  auto undone = call(admin_token_, "POST", undo);
  ASSERT_EQ(undone.status, 200) << undone.body;
  EXPECT_TRUE(json_of(undone)["undone_at"].is_number_integer());
  EXPECT_EQ(call(admin_token_, "POST", undo).status, 409);
  EXPECT_EQ(count("SELECT COUNT(DISTINCT contact_id) FROM contact_identities"), 2);
}

}  // namespace
}  // namespace connector::cases::test
