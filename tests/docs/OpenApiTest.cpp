// docs/openapi.yaml against the control API it describes: the document is OpenAPI 3, its
// references resolve, and the routes, methods and live events it lists are the ones the host
// serves — read three ways: from the router's source, from a table kept here, and by asking a
// running host.
#include "ApiClient.hpp"
#include "TestHost.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace connector::test {
namespace {

const std::filesystem::path kSource = CONNECTOR_SOURCE_DIR;

std::string read_text(const std::filesystem::path &file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

YAML::Node load_document() { return YAML::LoadFile((kSource / "docs/openapi.yaml").string()); }

// Every (method, path template) the document lists, methods upper-case, paths under /api/v1.
std::set<std::pair<std::string, std::string>> documented_operations(const YAML::Node &doc) {
  static const std::set<std::string> kMethods = {"get", "post", "put", "patch", "delete"};
  std::set<std::pair<std::string, std::string>> out;
  for (const auto &path : doc["paths"]) {
    for (const auto &entry : path.second) {
      std::string method = entry.first.as<std::string>();
      if (kMethods.count(method) == 0) continue;  // "parameters" and the like
      for (auto &c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.emplace(method, path.first.as<std::string>());
    }
  }
  return out;
}

// The literal segments of the documented paths ("accounts", "qr.png"; not "{account_id}").
std::set<std::string> documented_segments(const YAML::Node &doc) {
  std::set<std::string> out;
  for (const auto &path : doc["paths"]) {
    std::stringstream parts(path.first.as<std::string>());
    std::string part;
    while (std::getline(parts, part, '/')) {
      if (!part.empty() && part.front() != '{') out.insert(part);
    }
  }
  return out;
}

// The path segments the router compares against, read from its source (every host/api/*.cpp:
// ControlApi.cpp and the route files beside it). A route added to the router brings a new
// literal here, which the document must then contain.
std::set<std::string> routed_segments() {
  std::set<std::string> out;
  const std::regex compared(R"re((?:head|verb|call\.at\(\d\))\s*==\s*"([^"]+)")re");
  for (const auto &entry : std::filesystem::directory_iterator(kSource / "host/api")) {
    if (entry.path().extension() != ".cpp") continue;
    const std::string router = read_text(entry.path());
    for (auto it = std::sregex_iterator(router.begin(), router.end(), compared);
         it != std::sregex_iterator(); ++it) {
      out.insert((*it)[1]);
    }
  }
  // The WebSocket is routed by the HTTP session, not by ControlApi.
  const std::string session = read_text(kSource / "host/api/server/HttpSession.cpp");
  const std::regex websocket(R"re("/api/v1/([a-z.-]+)")re");
  for (auto it = std::sregex_iterator(session.begin(), session.end(), websocket);
       it != std::sregex_iterator(); ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

// The live event types the host publishes, read from every publish(...) call in host/.
std::set<std::string> published_event_types() {
  std::set<std::string> out = {"hello"};  // sent by the WebSocket session itself
  const std::regex type_literal(R"re("([a-z_]+\.[a-z_]+)")re");
  const std::regex dynamic_type(R"re("account\." \+ type)re");
  for (const auto &entry : std::filesystem::recursive_directory_iterator(kSource / "host")) {
    if (entry.path().extension() != ".cpp") continue;
    const std::string text = read_text(entry.path());
    for (size_t at = text.find("publish("); at != std::string::npos;
         at = text.find("publish(", at + 1)) {
      const std::string call = text.substr(at, text.find(';', at) - at);
      std::smatch match;
      if (std::regex_search(call, match, type_literal)) out.insert(match[1]);
      if (std::regex_search(call, dynamic_type)) {
        // AccountService passes these plugin events on as "account.<type>".
        out.insert("account.pairing_code");
        out.insert("account.progress");
      }
    }
  }
  return out;
}

void collect_refs(const YAML::Node &node, std::vector<std::string> &refs) {
  if (node.IsMap()) {
    for (const auto &entry : node) {
      if (entry.first.as<std::string>() == "$ref") {
        refs.push_back(entry.second.as<std::string>());
      } else {
        collect_refs(entry.second, refs);
      }
    }
  } else if (node.IsSequence()) {
    for (const auto &item : node) collect_refs(item, refs);
  }
}

// The routes as this test knows them. Keep in step with host/api/ControlApi.cpp; the test
// below compares it with the document in both directions.
const std::set<std::pair<std::string, std::string>> kRoutes = {
    {"GET", "/openapi.yaml"},
    {"POST", "/auth/login-link"},
    {"GET", "/me"},
    {"GET", "/plugins"},
    {"GET", "/accounts"},
    {"POST", "/accounts"},
    {"GET", "/accounts/{account_id}"},
    {"DELETE", "/accounts/{account_id}"},
    {"POST", "/accounts/{account_id}/connect"},
    {"POST", "/accounts/{account_id}/disconnect"},
    {"GET", "/accounts/{account_id}/qr"},
    {"GET", "/accounts/{account_id}/qr.png"},
    {"GET", "/accounts/{account_id}/qr.svg"},
    {"POST", "/accounts/{account_id}/qr/refresh"},
    {"POST", "/accounts/{account_id}/oauth/start"},
    {"GET", "/oauth/callback"},
    {"GET", "/accounts/{account_id}/log"},
    {"GET", "/accounts/{account_id}/messages"},
    {"POST", "/accounts/{account_id}/messages"},
    {"GET", "/messages/{message_id}"},
    {"POST", "/messages/{message_id}/link"},
    {"GET", "/cases"},
    {"POST", "/cases"},
    {"GET", "/cases/{case_id}"},
    {"PATCH", "/cases/{case_id}"},
    {"GET", "/cases/{case_id}/messages"},
    {"GET", "/merges"},
    {"GET", "/merges/{merge_id}"},
    {"POST", "/merges/{merge_id}/undo"},
    {"GET", "/attendants"},
    {"POST", "/attendants"},
    {"GET", "/attendants/{attendant_id}"},
    {"GET", "/attendants/{attendant_id}/tokens"},
    {"POST", "/attendants/{attendant_id}/tokens"},
    {"POST", "/attendants/{attendant_id}/login-link"},
    {"DELETE", "/tokens/current"},
    {"DELETE", "/tokens/{token_id}"},
    {"GET", "/events"},
};

TEST(DocsOpenApiTest, IsAnOpenApi3DocumentWithBearerSecurity) {
  const YAML::Node doc = load_document();
  ASSERT_TRUE(doc["openapi"]) << "no openapi member";
  EXPECT_EQ(doc["openapi"].as<std::string>().rfind("3.", 0), 0u) << doc["openapi"];
  EXPECT_TRUE(doc["info"]["title"] && doc["info"]["version"]);
  EXPECT_EQ(doc["components"]["securitySchemes"]["bearer"]["scheme"].as<std::string>(), "bearer");
  EXPECT_EQ(doc["servers"][0]["url"].as<std::string>(), "/api/v1");
}

TEST(DocsOpenApiTest, EveryReferenceResolves) {
  const YAML::Node doc = load_document();
  std::vector<std::string> refs;
  collect_refs(doc, refs);
  ASSERT_FALSE(refs.empty());
  for (const auto &ref : refs) {
    ASSERT_EQ(ref.rfind("#/components/", 0), 0u) << ref;
    const std::string rest = ref.substr(std::string("#/components/").size());
    const std::string kind = rest.substr(0, rest.find('/'));
    const std::string name = rest.substr(rest.find('/') + 1);
    EXPECT_TRUE(doc["components"][kind][name]) << "unresolved " << ref;
  }
}

TEST(DocsOpenApiTest, DocumentsExactlyTheRoutesOfTheRouteTable) {
  const auto documented = documented_operations(load_document());
  for (const auto &[method, path] : kRoutes) {
    EXPECT_TRUE(documented.count({method, path})) << "not documented: " << method << " " << path;
  }
  for (const auto &[method, path] : documented) {
    EXPECT_TRUE(kRoutes.count({method, path})) << "documented but not routed: " << method << " "
                                               << path;
  }
}

TEST(DocsOpenApiTest, DocumentsEveryPathSegmentTheRouterKnows) {
  const auto routed = routed_segments();
  const auto documented = documented_segments(load_document());
  ASSERT_GT(routed.size(), 10u) << "the router's source was not read";
  for (const auto &segment : routed) {
    EXPECT_TRUE(documented.count(segment)) << "the router serves \"" << segment
                                           << "\" but no documented path has it";
  }
  for (const auto &segment : documented) {
    EXPECT_TRUE(routed.count(segment)) << "documented segment \"" << segment
                                       << "\" is not in the router";
  }
}

TEST(DocsOpenApiTest, DocumentsEveryLiveEventTheHostPublishes) {
  const YAML::Node mapping = load_document()["components"]["schemas"]["Event"]["discriminator"]
                                            ["mapping"];
  ASSERT_TRUE(mapping.IsMap());
  std::set<std::string> documented;
  for (const auto &entry : mapping) documented.insert(entry.first.as<std::string>());
  const auto published = published_event_types();
  EXPECT_GE(published.size(), 8u) << "the publishers' source was not read";
  for (const auto &type : published) {
    EXPECT_TRUE(documented.count(type)) << "event \"" << type << "\" is not documented";
  }
  for (const auto &type : documented) {
    EXPECT_TRUE(published.count(type)) << "documented event \"" << type << "\" is never sent";
  }
  const std::string upgrade = load_document()["paths"]["/events"]["get"]["description"]
                                  .as<std::string>();
  EXPECT_NE(upgrade.find("bearer.<token>"), std::string::npos);
  EXPECT_NE(upgrade.find("Sec-WebSocket-Protocol"), std::string::npos);
}

class DocsOpenApiHostTest : public ::testing::Test {
 protected:
  // Fills the path parameters with resources that exist on this host (a message is made by
  // connecting the loopback account and sending). Merge ids are made up (a merge needs two
  // contacts sharing an identity): they answer 404, which still tells a routed path (405 for a
  // wrong method) from an unrouted one.
  std::string target(std::string path) {
    const std::map<std::string, std::string> values = {
        {"{account_id}", account_},   {"{attendant_id}", person_.id},
        {"{token_id}", token_id_},    {"{message_id}", message_id_},
        {"{case_id}", case_id_},      {"{merge_id}", "999999"}};
    for (const auto &[key, value] : values) {
      if (auto at = path.find(key); at != std::string::npos) path.replace(at, key.size(), value);
    }
    return "/api/v1" + path;
  }

  void SetUp() override {
    person_ = host_.add_attendant("Ana");
    ApiClient ana(host_.port(), person_.token);
    account_ = TestHost::create_account(ana, "loopback");
    ASSERT_EQ(ana.post("/api/v1/accounts/" + account_ + "/connect",
                       {{"values", {{"account", "ana"}, {"password", "pw-ana-1"}}}})
                  .status,
              202);
    auto sent = ana.post("/api/v1/accounts/" + account_ + "/messages",
                         {{"to", "+5511987654321"}, {"text", "oi"}});
    ASSERT_EQ(sent.status, 201) << sent.body;
    message_id_ = std::to_string(sent.json()["id"].get<int64_t>());
    auto opened = ana.post("/api/v1/cases", {{"title", "Pedido 4521"}});
    ASSERT_EQ(opened.status, 201) << opened.body;
    case_id_ = std::to_string(opened.json()["id"].get<int64_t>());
    auto tokens = host_.admin().get("/api/v1/attendants/" + person_.id + "/tokens");
    token_id_ = tokens.json()["items"][0]["id"].get<std::string>();
  }

  TestHost host_;
  TestHost::Person person_;
  std::string account_;
  std::string message_id_;
  std::string case_id_;
  std::string token_id_;
};

TEST_F(DocsOpenApiHostTest, ServesTheDocumentItWasBuiltWith) {
  auto served = host_.anonymous().get("/api/v1/openapi.yaml");
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.body, read_text(kSource / "docs/openapi.yaml"));
}

TEST_F(DocsOpenApiHostTest, EveryDocumentedOperationIsRouted) {
  const YAML::Node doc = load_document();
  auto operations = documented_operations(doc);
  std::vector<std::pair<std::string, std::string>> ordered(operations.begin(), operations.end());
  // Deletions last, so they do not take away what the other calls address.
  std::stable_partition(ordered.begin(), ordered.end(),
                        [](const auto &op) { return op.first != "DELETE"; });
  // Signing out revokes the admin's own token: the very last call.
  std::stable_partition(ordered.begin(), ordered.end(),
                        [](const auto &op) { return op.second != "/tokens/current"; });
  for (const auto &[method, path] : ordered) {
    if (path == "/events") continue;  // a WebSocket; AuthTest covers its upgrade
    auto answer = host_.admin().request(method, target(path), "{}");
    EXPECT_NE(answer.status, 405) << method << " " << path << ": " << answer.body;
    const bool made_up_id = path.find("{merge_id}") != std::string::npos;
    if (!made_up_id) {
      EXPECT_FALSE(answer.status == 404 && answer.error_code() == "not_found")
          << method << " " << path << " is documented but not found: " << answer.body;
    }
  }
}

TEST_F(DocsOpenApiHostTest, MethodsTheDocumentLeavesOutAreRefused) {
  const YAML::Node doc = load_document();
  const auto operations = documented_operations(doc);
  for (const auto &path : doc["paths"]) {
    const std::string name = path.first.as<std::string>();
    if (name == "/events" || name == "/openapi.yaml") continue;  // not routed by method
    for (const std::string method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
      if (operations.count({method, name})) continue;
      auto answer = host_.admin().request(method, target(name), "{}");
      EXPECT_EQ(answer.status, 405) << method << " " << name << " answered " << answer.status
                                    << " but is not documented: " << answer.body;
    }
  }
}

}  // namespace
}  // namespace connector::test
