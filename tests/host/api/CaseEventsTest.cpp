// Case changes pushed over the events WebSocket by a real host: cases created and changed through
// the API (title, close, reopen, identities), messages filed automatically and moved by hand, and
// the per-account count of automatically linked cases, each to the case's attendant (and
// admins) and never to another attendant.
//
// "Never to another attendant" is checked by order, not by waiting: each connection receives
// events in the order they were published, so when the next case event another attendant's
// stream shows is one of their own, published after ours, none of ours reached them.
#include "ApiClient.hpp"
#include "TestHost.hpp"

#include <gtest/gtest.h>

namespace connector::test {
namespace {

Json password_values() {
  return {{"values", {{"method", "password"}, {"account", "ana@example.com"},
                      {"password", "correct-horse"}}}};
}

bool is_case_event(const Json &e) {
  const std::string type = e.value("type", "");
  return type.rfind("case.", 0) == 0 || type.rfind("message.", 0) == 0 ||
         type == "account.auto_linked";
}

class CaseEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ana_ = host_.add_attendant("Ana");
    beto_ = host_.add_attendant("Beto");
    ana_api_ = std::make_unique<ApiClient>(host_.port(), ana_.token);
    beto_api_ = std::make_unique<ApiClient>(host_.port(), beto_.token);
  }

  HttpResult patch(const ApiClient &api, int64_t case_id, const Json &body) {
    return api.request("PATCH", "/api/v1/cases/" + std::to_string(case_id), body.dump());
  }

  // The next case.updated event on `events`, which must be about `case_id`.
  static Json next_update(EventStream &events, int64_t case_id) {
    auto e = events.wait_for_type("case.updated");
    EXPECT_TRUE(e);
    if (!e) return Json::object();
    EXPECT_EQ((*e)["case"]["id"], case_id);
    return (*e)["case"];
  }

  // Beto makes a case of his own; the first case event his stream shows must be that one.
  void expect_beto_saw_only_his_own() {
    auto made = beto_api_->post("/api/v1/cases", {{"title", "Do Beto"}});
    ASSERT_EQ(made.status, 201) << made.body;
    auto first = beto_events_->wait_for(is_case_event);
    ASSERT_TRUE(first);
    EXPECT_EQ((*first)["type"], "case.created") << first->dump();
    EXPECT_EQ((*first)["case"]["id"], made.json()["id"]) << first->dump();
    EXPECT_EQ((*first)["case"]["attendant_id"], beto_.id);
  }

  TestHost host_;
  TestHost::Person ana_, beto_;
  std::unique_ptr<ApiClient> ana_api_, beto_api_;
  std::unique_ptr<EventStream> beto_events_;
};

TEST_F(CaseEventsTest, CaseChangesThroughTheApiReachOnlyTheCasesAttendant) {
  EventStream ana_events(host_.port(), ana_.token);
  EventStream admin_events(host_.port(), host_.admin_token());
  beto_events_ = std::make_unique<EventStream>(host_.port(), beto_.token);

  auto created =
      ana_api_->post("/api/v1/cases", {{"title", "Pedido 7"}, {"phones", {"(11) 98765-4321"}}});
  ASSERT_EQ(created.status, 201) << created.body;
  const int64_t id = created.json()["id"];

  auto made = ana_events.wait_for_type("case.created");
  ASSERT_TRUE(made);
  EXPECT_EQ((*made)["case"]["id"], id);
  EXPECT_EQ((*made)["case"]["title"], "Pedido 7");
  EXPECT_EQ((*made)["case"]["attendant_id"], ana_.id);
  EXPECT_EQ((*made)["case"]["contact"]["phones"], Json::array({"+5511987654321"}));
  auto admin_made = admin_events.wait_for_type("case.created");
  ASSERT_TRUE(admin_made);
  EXPECT_EQ((*admin_made)["case"]["id"], id);

  ASSERT_EQ(patch(*ana_api_, id, {{"title", "Pedido 7 (pago)"}}).status, 200);
  EXPECT_EQ(next_update(ana_events, id)["title"], "Pedido 7 (pago)");

  ASSERT_EQ(patch(*ana_api_, id, {{"status", "closed"}}).status, 200);
  Json closed = next_update(ana_events, id);
  EXPECT_EQ(closed["status"], "closed");
  EXPECT_TRUE(closed["closed_at"].is_number_integer());

  ASSERT_EQ(patch(*ana_api_, id, {{"status", "open"}}).status, 200);
  Json reopened = next_update(ana_events, id);
  EXPECT_EQ(reopened["status"], "open");
  EXPECT_TRUE(reopened["closed_at"].is_null());

  ASSERT_EQ(patch(*ana_api_, id, {{"addresses", {"Cliente@Example.com"}}}).status, 200);
  EXPECT_EQ(next_update(ana_events, id)["contact"]["emails"], Json::array({"cliente@example.com"}));

  expect_beto_saw_only_his_own();

  // And Ana never hears of Beto's case: her next case event is her own change.
  ASSERT_EQ(patch(*ana_api_, id, {{"title", "Pedido 7 (enviado)"}}).status, 200);
  auto next = ana_events.wait_for(is_case_event);
  ASSERT_TRUE(next);
  EXPECT_EQ((*next)["type"], "case.updated") << next->dump();
  EXPECT_EQ((*next)["case"]["id"], id) << next->dump();
}

TEST_F(CaseEventsTest, AutomaticLinksAndManualMovesArePushedWithTheLiveCount) {
  EventStream ana_events(host_.port(), ana_.token);
  beto_events_ = std::make_unique<EventStream>(host_.port(), beto_.token);
  const std::string account = TestHost::create_account(*ana_api_, "loopback", "Ana's loopback");
  const std::string account_path = "/api/v1/accounts/" + account;
  ASSERT_EQ(ana_api_->post(account_path + "/connect", password_values()).status, 202);

  // The loopback channel answers from the number written to: a new customer, so a new case,
  // linked by phone, and the account's count goes to 1.
  auto sent =
      ana_api_->post(account_path + "/messages", {{"to", "+5511987654321"}, {"text", "Olá!"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  auto opened = ana_events.wait_for_type("case.created");
  ASSERT_TRUE(opened);
  const int64_t first_case = (*opened)["case"]["id"];
  EXPECT_EQ((*opened)["case"]["contact"]["phones"], Json::array({"+5511987654321"}));
  auto counted = ana_events.wait_for_type("account.auto_linked");
  ASSERT_TRUE(counted);
  EXPECT_EQ((*counted)["account_id"], account);
  EXPECT_EQ((*counted)["cases"], 1);
  auto echo = ana_events.wait_for([](const Json &e) {
    return e["type"] == "message.new" && e["message"]["direction"] == "inbound";
  });
  ASSERT_TRUE(echo);
  const int64_t message = (*echo)["message"]["id"];
  EXPECT_EQ((*echo)["message"]["case"]["id"], first_case);
  EXPECT_EQ((*echo)["message"]["case"]["method"], "new_case");
  EXPECT_EQ(ana_api_->get(account_path).json()["auto_linked_cases"], 1);

  // Filed by hand on another case: the move, both cases and the count (now 0: the only
  // automatic link became manual) are pushed.
  auto target = ana_api_->post("/api/v1/cases", {{"title", "Outro"}});
  ASSERT_EQ(target.status, 201);
  const int64_t second_case = target.json()["id"];
  auto moved = ana_api_->post("/api/v1/messages/" + std::to_string(message) + "/link",
                              {{"case_id", second_case}});
  ASSERT_EQ(moved.status, 200) << moved.body;
  auto linked = ana_events.wait_for_type("message.linked");
  ASSERT_TRUE(linked);
  EXPECT_EQ((*linked)["message"]["id"], message);
  EXPECT_EQ((*linked)["message"]["case"]["id"], second_case);
  EXPECT_EQ((*linked)["message"]["case"]["method"], "manual");
  EXPECT_EQ((*linked)["message"]["case"]["by"], ana_.id);
  EXPECT_EQ((*linked)["previous_case_id"], first_case);
  EXPECT_EQ(next_update(ana_events, first_case)["message_count"], 0);
  EXPECT_EQ(next_update(ana_events, second_case)["message_count"], 1);
  counted = ana_events.wait_for_type("account.auto_linked");
  ASSERT_TRUE(counted);
  EXPECT_EQ((*counted)["cases"], 0);
  EXPECT_EQ(ana_api_->get(account_path).json()["auto_linked_cases"], 0);

  // The customer writes again: linked automatically to their open case, and the count is back.
  ASSERT_EQ(ana_api_->post(account_path + "/messages", {{"to", "+5511987654321"}, {"text", "E aí?"}})
                .status,
            201);
  counted = ana_events.wait_for_type("account.auto_linked");
  ASSERT_TRUE(counted);
  EXPECT_EQ((*counted)["cases"], 1);
  echo = ana_events.wait_for([](const Json &e) {
    return e["type"] == "message.new" && e["message"]["direction"] == "inbound";
  });
  ASSERT_TRUE(echo);
  EXPECT_EQ((*echo)["message"]["case"]["id"], first_case);
  EXPECT_EQ((*echo)["message"]["case"]["method"], "phone");
  EXPECT_EQ(ana_api_->get(account_path).json()["auto_linked_cases"], 1);

  expect_beto_saw_only_his_own();
}

TEST_F(CaseEventsTest, AMessageSentThroughTheApiIsFiledAndItsCaseChangePushed) {
  EventStream ana_events(host_.port(), ana_.token);
  const std::string account = TestHost::create_account(*ana_api_, "loopback", "Ana's loopback");
  const std::string account_path = "/api/v1/accounts/" + account;
  ASSERT_EQ(ana_api_->post(account_path + "/connect", password_values()).status, 202);
  auto created = ana_api_->post("/api/v1/cases", {{"title", "Boleto"}, {"phones", {"+5511987654321"}}});
  ASSERT_EQ(created.status, 201) << created.body;
  const int64_t case_id = created.json()["id"];
  ASSERT_TRUE(ana_events.wait_for_type("case.created"));

  // Sent on the case: filed there by hand, and the case's change is pushed.
  auto on_case = ana_api_->post(account_path + "/messages", {{"to", "+5511987654321"},
                                                             {"text", "Segue o boleto"},
                                                             {"case_id", case_id}});
  ASSERT_EQ(on_case.status, 201) << on_case.body;
  EXPECT_EQ(on_case.json()["case"]["id"], case_id);
  EXPECT_EQ(on_case.json()["case"]["method"], "manual");
  EXPECT_EQ(on_case.json()["case"]["by"], ana_.id);
  Json updated = next_update(ana_events, case_id);
  EXPECT_GE(updated["message_count"], 1);
  EXPECT_GE(updated["updated_at"], created.json()["updated_at"]);

  // Sent without a case to the same customer: filed on their open case, as the same message
  // reported by the plugin would be.
  auto no_case = ana_api_->post(account_path + "/messages",
                                {{"to", "+5511987654321"}, {"text", "Recebeu?"}});
  ASSERT_EQ(no_case.status, 201) << no_case.body;
  EXPECT_EQ(no_case.json()["case"]["id"], case_id) << no_case.body;
  EXPECT_EQ(no_case.json()["case"]["method"], "phone");
}

}  // namespace
}  // namespace connector::test
