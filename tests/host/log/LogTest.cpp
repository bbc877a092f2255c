#include "TempDir.hpp"

#include "log/Log.hpp"

#include <gtest/gtest.h>

namespace connector::log {
namespace {

TEST(LogTest, LinesAreTaggedWithPluginAndAccountAndSecretsAreMasked) {
  test::TempDir dir;
  const auto file = dir / "host.log";
  init("debug", file.string());
  add_secret("s3cr3t-value");
  add_secret("abc");  // too short to mask safely: ignored
  info({"whatsapp", "acc_1"}, "logged in with s3cr3t-value and abc");
  debug({}, "host line");
  spdlog::default_logger()->flush();

  const std::string text = test::read_file(file);
  EXPECT_NE(text.find("[whatsapp acc_1] logged in with *** and abc"), std::string::npos) << text;
  EXPECT_NE(text.find("[host] host line"), std::string::npos) << text;
  EXPECT_EQ(text.find("s3cr3t-value"), std::string::npos);
  init("warn");
}

TEST(LogTest, ASecretContainingAnotherIsMaskedWhole) {
  add_secret("token-123456");
  add_secret("token-123456-extended");
  EXPECT_EQ(mask("a token-123456-extended b token-123456"), "a *** b ***");
}

// A secret value that is a stored blob (a session state rewritten after nearly every message) is
// not kept in the mask list, which would otherwise grow with every write; tokens are.
TEST(LogTest, BlobSizedSecretValuesAreNotKept) {
  const std::string token(8 * 1024, 't');
  const std::string blob(64 * 1024, 'b');
  add_secret(token);
  add_secret(blob);
  EXPECT_EQ(mask("x" + token + "x"), "x***x");
  EXPECT_EQ(mask(blob).size(), blob.size());
}

TEST(LogTest, LevelsBelowTheThresholdAreDropped) {
  test::TempDir dir;
  init("warn", (dir / "host.log").string());
  info({}, "not written");
  warn({}, "written");
  spdlog::default_logger()->flush();
  const std::string text = test::read_file(dir / "host.log");
  EXPECT_EQ(text.find("not written"), std::string::npos);
  EXPECT_NE(text.find("written"), std::string::npos);
  init("warn");
}

}  // namespace
}  // namespace connector::log
