#include "TempDir.hpp"

#include "store/SecretBox.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <sys/stat.h>

namespace connector::store {
namespace {

using test::TempDir;

// Keeps CONNECTOR_HOST_SECRET_KEY out of the tests that do not set it.
class SecretBoxTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("CONNECTOR_HOST_SECRET_KEY"); }
  void TearDown() override { unsetenv("CONNECTOR_HOST_SECRET_KEY"); }
  TempDir dir_;
};

TEST_F(SecretBoxTest, TheFirstStartCreatesAPrivateKeyFileThatLaterStartsReuse) {
  auto first = SecretBox::load(dir_ / "secret.key");
  ASSERT_TRUE(first) << first.failure().message;
  struct stat info {};
  ASSERT_EQ(stat((dir_ / "secret.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);

  const std::string sealed = first->seal("hunter2-password", "acc\0pw");
  auto second = SecretBox::load(dir_ / "secret.key");
  ASSERT_TRUE(second);
  auto opened = second->open(sealed, "acc\0pw");
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, "hunter2-password");
  EXPECT_EQ(sealed.find("hunter2"), std::string::npos);
}

TEST_F(SecretBoxTest, ASealedValueOpensOnlyWithItsKeyAndContext) {
  auto box = SecretBox::load(dir_ / "secret.key");
  ASSERT_TRUE(box);
  const std::string sealed = box->seal("token", "account-1");
  EXPECT_FALSE(box->open(sealed, "account-2"));
  std::string altered = sealed;
  altered[altered.size() - 1] ^= 1;
  EXPECT_FALSE(box->open(altered, "account-1"));

  setenv("CONNECTOR_HOST_SECRET_KEY", std::string(64, 'a').c_str(), 1);
  auto other = SecretBox::load(dir_ / "secret.key");
  ASSERT_TRUE(other);
  auto refused = other->open(sealed, "account-1");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.failure().code, "secret_key_mismatch");
}

TEST_F(SecretBoxTest, TheEnvironmentKeyIsUsedInsteadOfAFile) {
  setenv("CONNECTOR_HOST_SECRET_KEY", std::string(64, 'b').c_str(), 1);
  auto box = SecretBox::load(dir_ / "secret.key");
  ASSERT_TRUE(box) << box.failure().message;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "secret.key"));
  auto same = SecretBox::load(dir_ / "elsewhere.key");
  ASSERT_TRUE(same);
  EXPECT_EQ(*same->open(box->seal("v", "c"), "c"), "v");
}

TEST_F(SecretBoxTest, BadKeysAreRefusedWithTheFix) {
  setenv("CONNECTOR_HOST_SECRET_KEY", "too-short", 1);
  auto bad_env = SecretBox::load(dir_ / "secret.key");
  ASSERT_FALSE(bad_env);
  EXPECT_EQ(bad_env.failure().message,
            "CONNECTOR_HOST_SECRET_KEY must hold exactly 64 hexadecimal digits (a 32-byte key)");
  unsetenv("CONNECTOR_HOST_SECRET_KEY");

  const auto loose = dir_.write("loose.key", std::string(64, 'c') + "\n");
  chmod(loose.c_str(), 0644);
  auto readable = SecretBox::load(loose);
  ASSERT_FALSE(readable);
  EXPECT_EQ(readable.failure().message, "the secret key file " + loose.string() +
                                            " can be read by other users; run: chmod 600 " +
                                            loose.string());

  const auto garbled = dir_.write("garbled.key", "not hex at all\n");
  chmod(garbled.c_str(), 0600);
  auto refused = SecretBox::load(garbled);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.failure().message.find("64 hexadecimal digits"), std::string::npos);
}

}  // namespace
}  // namespace connector::store
