// The page a browser shows after an OAuth provider sends it back to the host: Brazilian
// Portuguese by default, English when the screen chose it (its language cookie) or the browser
// asks for it first.
#include "ApiClient.hpp"
#include "TestHost.hpp"

#include <gtest/gtest.h>

namespace connector::test {
namespace {

class OAuthPageTest : public ::testing::Test {
 protected:
  HttpResult page(const std::map<std::string, std::string> &headers) {
    return host_.anonymous().request("GET", "/api/v1/oauth/callback?code=c&state=unknown-state",
                                     {}, headers);
  }
  TestHost host_;
};

TEST_F(OAuthPageTest, IsInPortugueseByDefault) {
  auto answer = page({});
  EXPECT_EQ(answer.status, 400);
  EXPECT_EQ(answer.headers["content-language"], "pt-BR");
  EXPECT_NE(answer.body.find("<html lang=\"pt-BR\">"), std::string::npos) << answer.body;
  EXPECT_NE(answer.body.find("Login não concluído"), std::string::npos) << answer.body;
  EXPECT_NE(answer.body.find("já foi usado"), std::string::npos) << answer.body;
  // The host's own English reason does not leak into the Portuguese page.
  EXPECT_EQ(answer.body.find("does not belong"), std::string::npos) << answer.body;
}

TEST_F(OAuthPageTest, FollowsTheBrowsersLanguages) {
  auto english = page({{"Accept-Language", "en-US,en;q=0.9,pt;q=0.5"}});
  EXPECT_EQ(english.headers["content-language"], "en");
  EXPECT_NE(english.body.find("Sign-in not completed"), std::string::npos) << english.body;
  auto portuguese = page({{"Accept-Language", "pt-BR,pt;q=0.9,en;q=0.8"}});
  EXPECT_NE(portuguese.body.find("Login não concluído"), std::string::npos) << portuguese.body;
}

TEST_F(OAuthPageTest, TheScreensLanguageChoiceWins) {
  auto english = page({{"Accept-Language", "pt-BR"}, {"Cookie", "a=1; connector_lang=en"}});
  EXPECT_NE(english.body.find("Sign-in not completed"), std::string::npos) << english.body;
  auto portuguese = page({{"Accept-Language", "en"}, {"Cookie", "connector_lang=pt-BR"}});
  EXPECT_NE(portuguese.body.find("Login não concluído"), std::string::npos) << portuguese.body;
  // A cookie whose name merely ends the same way is not the screen's.
  auto other = page({{"Cookie", "xconnector_lang=en"}});
  EXPECT_NE(other.body.find("Login não concluído"), std::string::npos) << other.body;
}

}  // namespace
}  // namespace connector::test
