// Who may call the control API: no token gets nothing, an attendant reaches only their own
// accounts and events, admins manage people and tokens, login links work once.
#include "ApiClient.hpp"
#include "StoredAttachments.hpp"
#include "TestHost.hpp"

#include "auth/Attendants.hpp"
#include "store/Database.hpp"

#include <gtest/gtest.h>

namespace connector::test {
namespace {

class AuthTest : public ::testing::Test {
 protected:
  TestHost host_;
};

// Every route the API serves, with a method, for the "no token, no data" sweep.
const std::vector<std::pair<std::string, std::string>> kProtectedRoutes = {
    {"GET", "/api/v1/me"},
    {"GET", "/api/v1/plugins"},
    {"GET", "/api/v1/accounts"},
    {"POST", "/api/v1/accounts"},
    {"GET", "/api/v1/accounts/ACCOUNT"},
    {"DELETE", "/api/v1/accounts/ACCOUNT"},
    {"POST", "/api/v1/accounts/ACCOUNT/connect"},
    {"POST", "/api/v1/accounts/ACCOUNT/disconnect"},
    {"POST", "/api/v1/accounts/ACCOUNT/qr/refresh"},
    {"GET", "/api/v1/accounts/ACCOUNT/qr"},
    {"GET", "/api/v1/accounts/ACCOUNT/qr.png"},
    {"GET", "/api/v1/accounts/ACCOUNT/qr.svg"},
    {"GET", "/api/v1/accounts/ACCOUNT/log"},
    {"GET", "/api/v1/accounts/ACCOUNT/messages"},
    {"POST", "/api/v1/accounts/ACCOUNT/messages"},
    {"GET", "/api/v1/cases"},
    {"GET", "/api/v1/cases/1"},
    {"GET", "/api/v1/cases/1/messages"},
    {"GET", "/api/v1/messages/1"},
    {"GET", "/api/v1/attendants"},
    {"POST", "/api/v1/attendants"},
    {"GET", "/api/v1/attendants/ATTENDANT"},
    {"GET", "/api/v1/attendants/ATTENDANT/tokens"},
    {"POST", "/api/v1/attendants/ATTENDANT/tokens"},
    {"POST", "/api/v1/attendants/ATTENDANT/login-link"},
    {"DELETE", "/api/v1/tokens/TOKEN"},
};

std::string fill(std::string route, const std::string &account, const std::string &attendant) {
  for (auto [key, value] : {std::pair<std::string, std::string>{"ACCOUNT", account},
                            {"ATTENDANT", attendant},
                            {"TOKEN", "tok_x"}}) {
    if (auto at = route.find(key); at != std::string::npos) route.replace(at, key.size(), value);
  }
  return route;
}

TEST_F(AuthTest, EveryRouteRefusesRequestsWithoutAValidToken) {
  auto maria = host_.add_attendant("Maria");
  ApiClient owner(host_.port(), maria.token);
  const std::string account = TestHost::create_account(owner, "loopback");

  for (const std::string token : {"", "cht_not-a-real-token", "garbage"}) {
    ApiClient stranger(host_.port(), token);
    for (const auto &[method, route] : kProtectedRoutes) {
      auto result = stranger.request(method, fill(route, account, maria.id), "{}");
      EXPECT_EQ(result.status, 401) << method << " " << route << " with token '" << token << "'";
      EXPECT_EQ(result.error_code(), "unauthorized") << route;
      EXPECT_EQ(result.body.find(account), std::string::npos) << route;
    }
  }
  EXPECT_EQ(websocket_upgrade_status(host_.port(), ""), 401);
  EXPECT_EQ(websocket_upgrade_status(host_.port(), "cht_wrong"), 401);
  EXPECT_EQ(websocket_upgrade_status(host_.port(), maria.token), 101);
}

TEST_F(AuthTest, AnAttendantReachesNothingOfAnotherAttendant) {
  auto maria = host_.add_attendant("Maria");
  auto joao = host_.add_attendant("João");
  ApiClient as_maria(host_.port(), maria.token);
  ApiClient as_joao(host_.port(), joao.token);
  const std::string account = TestHost::create_account(as_maria, "loopback", "Maria's");
  ASSERT_EQ(as_maria.post("/api/v1/accounts/" + account + "/connect",
                          {{"values", {{"account", "maria"}, {"password", "pw-maria-1"}}}})
                .status,
            202);
  ASSERT_EQ(as_maria.post("/api/v1/accounts/" + account + "/messages",
                          {{"to", "+5511987654321"}, {"text", "oi"}})
                .status,
            201);

  // João's listings do not show Maria's account, and addressing it directly finds nothing.
  EXPECT_EQ(as_joao.get("/api/v1/accounts").json()["items"].size(), 0u);
  for (const auto &[method, route] : kProtectedRoutes) {
    if (route.find("ACCOUNT") == std::string::npos) continue;
    auto result = as_joao.request(method, fill(route, account, joao.id), "{}");
    EXPECT_EQ(result.status, 404) << method << " " << route;
  }
  auto message_id = as_maria.get("/api/v1/accounts/" + account + "/messages")
                        .json()["items"][0]["id"].get<int64_t>();
  EXPECT_EQ(as_joao.get("/api/v1/messages/" + std::to_string(message_id)).status, 404);
  EXPECT_EQ(as_maria.get("/api/v1/messages/" + std::to_string(message_id)).status, 200);

  // Maria's account is still connected: João's disconnect did not reach it.
  EXPECT_EQ(as_maria.get("/api/v1/accounts/" + account).json()["state"], "connected");

  // Attendants do not manage people; admins see everyone's accounts.
  EXPECT_EQ(as_joao.get("/api/v1/attendants").status, 403);
  EXPECT_EQ(as_joao.post("/api/v1/attendants", {{"name", "Eve"}}).status, 403);
  EXPECT_EQ(as_joao.post("/api/v1/accounts", {{"plugin", "loopback"},
                                              {"attendant_id", maria.id}})
                .status,
            403);
  EXPECT_EQ(host_.admin().get("/api/v1/accounts/" + account).status, 200);
}

// An attachment Maria's messages hold is not João's to send: he gets the answer an unknown id
// gets, which does not even tell him the content is stored.
TEST_F(AuthTest, AnAttendantCannotSendAnotherAttendantsAttachment) {
  auto maria = host_.add_attendant("Maria");
  auto joao = host_.add_attendant("João");
  host_.stop();
  const std::string id = store_attachment(host_.data_dir(), "%PDF-1.4 contrato da Maria");
  host_.start();
  ApiClient as_maria(host_.port(), maria.token);
  ApiClient as_joao(host_.port(), joao.token);
  auto connected = [&](const ApiClient &client, const std::string &name) {
    const std::string account = TestHost::create_account(client, "loopback", name);
    EXPECT_EQ(client.post("/api/v1/accounts/" + account + "/connect",
                          {{"values", {{"account", name}, {"password", "pw-" + name}}}})
                  .status,
              202);
    return account;
  };
  const std::string marias = connected(as_maria, "maria");
  const std::string joaos = connected(as_joao, "joao");
  auto send = [&](const ApiClient &client, const std::string &account, const std::string &with) {
    return client.post("/api/v1/accounts/" + account + "/messages",
                       {{"to", "+5511987654321"},
                        {"text", "segue"},
                        {"attachments", {{{"id", with}, {"name", "c.pdf"}, {"mime", "application/pdf"}}}}});
  };
  ASSERT_EQ(send(as_maria, marias, id).status, 201);  // now her sent message holds it

  auto refused = send(as_joao, joaos, id);
  auto unknown = send(as_joao, joaos, std::string(64, 'a'));
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.body, unknown.body) << "the answer tells the content is stored";
  EXPECT_EQ(send(as_maria, marias, id).status, 201) << "Maria can still send her own";
}

TEST_F(AuthTest, EventsReachOnlyTheirOwnerAndAdmins) {
  auto maria = host_.add_attendant("Maria");
  auto joao = host_.add_attendant("João");
  ApiClient as_maria(host_.port(), maria.token);
  EventStream maria_events(host_.port(), maria.token);
  EventStream joao_events(host_.port(), joao.token, EventStream::TokenVia::kSubprotocol);
  EventStream admin_events(host_.port(), host_.admin_token());
  ASSERT_TRUE(maria_events.wait_for_type("hello"));
  ASSERT_TRUE(joao_events.wait_for_type("hello"));
  ASSERT_TRUE(admin_events.wait_for_type("hello"));

  const std::string account = TestHost::create_account(as_maria, "loopback");
  as_maria.post("/api/v1/accounts/" + account + "/connect",
                {{"values", {{"account", "maria"}, {"password", "pw-maria-2"}}}});

  auto connected = [&](const Json &e) {
    return e.value("type", "") == "account.status" && e.value("state", "") == "connected";
  };
  EXPECT_TRUE(maria_events.wait_for(connected));
  EXPECT_TRUE(admin_events.wait_for(connected));
  EXPECT_FALSE(joao_events.wait_for(connected, std::chrono::milliseconds(500)));
}

TEST_F(AuthTest, ALoginLinkWorksOnceAndARevokedTokenStopsWorking) {
  auto maria = host_.add_attendant("Maria");
  auto link = host_.admin().post("/api/v1/attendants/" + maria.id + "/login-link");
  ASSERT_EQ(link.status, 201);
  const std::string url = link.json()["url"];
  const std::string code = url.substr(url.find("#login=") + 7);

  auto first = host_.anonymous().post("/api/v1/auth/login-link", {{"code", code}});
  ASSERT_EQ(first.status, 201);
  EXPECT_EQ(first.json()["attendant"]["id"], maria.id);
  auto replay = host_.anonymous().post("/api/v1/auth/login-link", {{"code", code}});
  EXPECT_EQ(replay.status, 401);
  EXPECT_EQ(replay.error_code(), "invalid_login_link");

  const std::string token = first.json()["token"];
  const std::string token_id = first.json()["token_id"];
  ApiClient as_maria(host_.port(), token);
  EXPECT_EQ(as_maria.get("/api/v1/me").json()["attendant_id"], maria.id);
  EXPECT_EQ(as_maria.del("/api/v1/tokens/" + token_id).status, 200);
  EXPECT_EQ(as_maria.get("/api/v1/me").status, 401);
}

TEST_F(AuthTest, RevokingATokenClosesItsOpenEventStream) {
  auto maria = host_.add_attendant("Maria");
  EventStream events(host_.port(), maria.token);
  ASSERT_TRUE(events.wait_for_type("hello"));
  auto tokens = host_.admin().get("/api/v1/attendants/" + maria.id + "/tokens").json()["items"];
  ASSERT_EQ(tokens.size(), 1u);
  ASSERT_EQ(host_.admin().del("/api/v1/tokens/" + tokens[0]["id"].get<std::string>()).status, 200);

  // The stream ends with a close frame that says why; nothing Maria's accounts do afterwards
  // reaches it.
  EXPECT_TRUE(events.closed_within(std::chrono::seconds(20)));
  EXPECT_EQ(events.close_code(), 4401);
}

// With the periodic token check an hour apart, only the revocation itself can close the streams.
class RevocationTest : public ::testing::Test {
 protected:
  TestHost host_{{}, "api:\n  websocket_token_check_seconds: 3600\n"};
};

TEST_F(RevocationTest, RevokingThroughTheApiClosesTheTokensStreamsAtOnce) {
  auto maria = host_.add_attendant("Maria");
  EventStream events(host_.port(), maria.token);
  EventStream browser(host_.port(), maria.token, EventStream::TokenVia::kSubprotocol);
  EventStream admin(host_.port(), host_.admin_token());
  ASSERT_TRUE(events.wait_for_type("hello"));
  ASSERT_TRUE(browser.wait_for_type("hello"));
  ASSERT_TRUE(admin.wait_for_type("hello"));
  auto tokens = host_.admin().get("/api/v1/attendants/" + maria.id + "/tokens").json()["items"];
  ASSERT_EQ(host_.admin().del("/api/v1/tokens/" + tokens[0]["id"].get<std::string>()).status, 200);

  EXPECT_TRUE(events.closed_within(std::chrono::seconds(20)));
  EXPECT_TRUE(browser.closed_within(std::chrono::seconds(20)));
  EXPECT_EQ(events.close_code(), 4401);
  EXPECT_EQ(browser.close_code(), 4401);
  // Another token's stream stays open.
  EXPECT_FALSE(admin.closed_within(std::chrono::milliseconds(300)));
}

TEST_F(RevocationTest, SigningOutRevokesTheCallersOwnTokenEverywhere) {
  auto maria = host_.add_attendant("Maria");
  auto other = host_.admin().post("/api/v1/attendants/" + maria.id + "/tokens", {{"label", "b"}});
  ASSERT_EQ(other.status, 201);
  const std::string second = other.json()["token"];
  EventStream events(host_.port(), maria.token, EventStream::TokenVia::kSubprotocol);
  ASSERT_TRUE(events.wait_for_type("hello"));

  ApiClient as_maria(host_.port(), maria.token);
  auto out = as_maria.del("/api/v1/tokens/current");
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_EQ(out.json()["revoked"].get<std::string>().rfind("tok", 0), 0u) << out.body;

  // The token gets 401 everywhere and its stream is closed with the code the screen knows.
  for (const auto &[method, route] : kProtectedRoutes) {
    auto answer = as_maria.request(method, fill(route, "acc_x", maria.id), "{}");
    EXPECT_EQ(answer.status, 401) << method << " " << route;
  }
  EXPECT_EQ(websocket_upgrade_status(host_.port(), maria.token), 401);
  EXPECT_TRUE(events.closed_within(std::chrono::seconds(20)));
  EXPECT_EQ(events.close_code(), 4401);
  // Signing out twice is refused; Maria's other token still works.
  EXPECT_EQ(as_maria.del("/api/v1/tokens/current").status, 401);
  EXPECT_EQ(ApiClient(host_.port(), second).get("/api/v1/me").status, 200);
}

// A revocation the running host is not told about (the command line, another process on the
// same store) is found by the periodic check, and closes the stream the same way.
TEST(RevokedElsewhereTest, ThePeriodicCheckClosesTheStreamWithTheSameCode) {
  TestHost host({}, "api:\n  websocket_token_check_seconds: 1\n");
  auto maria = host.add_attendant("Maria");
  EventStream events(host.port(), maria.token);
  ASSERT_TRUE(events.wait_for_type("hello"));
  auto tokens = host.admin().get("/api/v1/attendants/" + maria.id + "/tokens").json()["items"];
  auto store = store::Database::open(host.data_dir() / "connector-host.db");
  ASSERT_TRUE(store);
  auth::Attendants elsewhere(**store);
  ASSERT_TRUE(elsewhere.revoke_token(tokens[0]["id"].get<std::string>(), std::nullopt));

  EXPECT_TRUE(events.closed_within(std::chrono::seconds(20)));
  EXPECT_EQ(events.close_code(), 4401);
}

TEST_F(AuthTest, NamesWithControlCharactersAreRefused) {
  auto forged = host_.admin().post("/api/v1/attendants", {{"name", "evil\tadmin\nline"}});
  EXPECT_EQ(forged.status, 400);
  EXPECT_EQ(forged.json()["error"]["message"],
            "an attendant's name cannot contain control characters");
}

TEST_F(AuthTest, TokensAreStoredOnlyAsHashes) {
  auto maria = host_.add_attendant("Maria");
  host_.stop();
  std::string bytes;
  for (const char *name : {"connector-host.db", "connector-host.db-wal"}) {
    bytes += read_file(host_.data_dir() / name);
  }
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(bytes.find(maria.token), std::string::npos);
  EXPECT_EQ(bytes.find(host_.admin_token()), std::string::npos);
}

}  // namespace
}  // namespace connector::test
