// HostTable: the C functions a plugin calls, forwarded to PluginServices with the plugin's id.
#include <gtest/gtest.h>

#include <cstring>

#include "FakePluginServices.hpp"
#include "plugins/HostTable.hpp"

namespace connector::plugins::test {
namespace {

class PluginHostTableTest : public ::testing::Test {
 protected:
  FakePluginServices services_;
  HostTable table_{services_, "mail"};
  const cn_host_api &api_ = *table_.api();
};

TEST_F(PluginHostTableTest, DescribesItself) {
  EXPECT_EQ(api_.struct_size, sizeof(cn_host_api));
  EXPECT_EQ(api_.host, &table_);
}

TEST_F(PluginHostTableTest, TagsLogLinesWithPluginAndAccount) {
  api_.log(api_.host, "acc-7", CN_LOG_WARN, "mailbox is full");
  api_.log(api_.host, nullptr, CN_LOG_INFO, "started");
  EXPECT_EQ(services_.calls(),
            (std::vector<std::string>{"log mail acc-7 2 mailbox is full", "log mail  1 started"}));
}

TEST_F(PluginHostTableTest, ForwardsEvents) {
  EXPECT_EQ(api_.emit(api_.host, "acc-7", R"({"type":"qr_expired"})"), CN_OK);
  auto event = services_.wait_for_event([](const auto &) { return true; });
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->plugin, "mail");
  EXPECT_EQ(event->account, "acc-7");
  EXPECT_EQ(event->body["type"], "qr_expired");
  EXPECT_EQ(api_.emit(api_.host, "acc-7", "{oops"), CN_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(api_.emit(api_.host, nullptr, "{}"), CN_ERR_INVALID_ARGUMENT);
}

TEST_F(PluginHostTableTest, StoresAndReturnsBytesInTheSharedAllocator) {
  const char bytes[] = {'a', '\0', 'b'};
  ASSERT_EQ(api_.store_put(api_.host, "acc-7", "token", bytes, sizeof bytes, 1), CN_OK);
  EXPECT_EQ(services_.stored("mail", "acc-7", "token"), std::string(bytes, sizeof bytes));

  char *value = nullptr;
  size_t size = 0;
  ASSERT_EQ(api_.store_get(api_.host, "acc-7", "token", &value, &size), CN_OK);
  ASSERT_EQ(size, sizeof bytes);
  EXPECT_EQ(std::memcmp(value, bytes, size), 0);
  api_.free(value);

  EXPECT_EQ(api_.store_delete(api_.host, "acc-7", "token"), CN_OK);
  EXPECT_EQ(api_.store_get(api_.host, "acc-7", "token", &value, &size), CN_ERR_NOT_FOUND);
  EXPECT_EQ(services_.calls().front(), "store_put mail acc-7 token secret");
}

TEST_F(PluginHostTableTest, HandsOutAttachmentIdsAndPaths) {
  char id[65];
  std::memset(id, 'x', sizeof id);
  ASSERT_EQ(api_.attachment_put(api_.host, "acc-7", "pdf", 3, id), CN_OK);
  EXPECT_EQ(std::string(id), std::string(64, 'a'));

  char *path = nullptr;
  ASSERT_EQ(api_.attachment_path(api_.host, id, &path), CN_OK);
  EXPECT_EQ(std::string(path), "/attachments/" + std::string(64, 'a'));
  api_.free(path);
  EXPECT_EQ(services_.calls().front(), "attachment_put mail acc-7 pdf");
}

TEST_F(PluginHostTableTest, NoExceptionReachesThePlugin) {
  services_.storage_throws = true;
  char *value = nullptr;
  size_t size = 0;
  char id[65];
  EXPECT_EQ(api_.store_put(api_.host, "acc-7", "k", "v", 1, 0), CN_ERR_STORAGE);
  EXPECT_EQ(api_.store_get(api_.host, "acc-7", "k", &value, &size), CN_ERR_STORAGE);
  EXPECT_EQ(api_.store_delete(api_.host, "acc-7", "k"), CN_ERR_STORAGE);
  EXPECT_EQ(api_.attachment_put(api_.host, "acc-7", "v", 1, id), CN_ERR_STORAGE);
  EXPECT_EQ(api_.attachment_path(api_.host, "id", &value), CN_ERR_STORAGE);
}

TEST_F(PluginHostTableTest, RefusesNullArguments) {
  char *value = nullptr;
  EXPECT_EQ(api_.store_put(api_.host, "acc-7", nullptr, "v", 1, 0), CN_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(api_.store_get(api_.host, "acc-7", "k", &value, nullptr), CN_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(api_.attachment_path(api_.host, nullptr, &value), CN_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(services_.calls().empty());
}

}  // namespace
}  // namespace connector::plugins::test
