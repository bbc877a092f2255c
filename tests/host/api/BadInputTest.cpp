// Bad requests get a clear 4xx answer, and slow, oversized or abandoned connections are cut off
// without blocking anyone else.
#include "ApiClient.hpp"
#include "TestHost.hpp"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <functional>
#include <thread>

namespace connector::test {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// Small limits, so the tests can cross them cheaply.
const std::string kTightLimits =
    "api:\n"
    "  max_body_bytes: 4096\n"
    "  max_header_bytes: 2048\n"
    "  max_header_count: 20\n"
    "  request_timeout_ms: 500\n";

class BadInputTest : public ::testing::Test {
 protected:
  BadInputTest() : host_({}, kTightLimits) {}

  // Sends raw bytes and returns everything the host answers before closing (or `wait` passes).
  std::string raw_exchange(const std::string &bytes,
                           std::chrono::milliseconds wait = std::chrono::seconds(5)) {
    net::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), host_.port()));
    net::write(socket, net::buffer(bytes));
    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    socket.non_blocking(true);
    while (std::chrono::steady_clock::now() < deadline) {
      char buffer[4096];
      boost::system::error_code ec;
      const size_t n = socket.read_some(net::buffer(buffer), ec);
      if (ec == net::error::would_block) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (ec) break;  // closed by the host
      answer.append(buffer, n);
    }
    return answer;
  }

  TestHost host_;
};

TEST_F(BadInputTest, MalformedJsonAndUnknownFieldsAreRefusedWithAStableCode) {
  auto admin = host_.admin();
  auto malformed = admin.request("POST", "/api/v1/accounts", "{\"plugin\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.error_code(), "invalid_json");

  auto not_object = admin.request("POST", "/api/v1/accounts", "[1, 2]");
  EXPECT_EQ(not_object.status, 400);
  EXPECT_EQ(not_object.error_code(), "invalid_json");

  auto deep = admin.request("POST", "/api/v1/accounts", std::string(100, '[') +
                                                            std::string(100, ']'));
  EXPECT_EQ(deep.status, 400);
  EXPECT_EQ(deep.json()["error"]["message"], "the JSON body nests too deeply");

  // The parser alone would stop at the NUL and take the object before it.
  auto nul = admin.request("POST", "/api/v1/accounts",
                           std::string("{\"plugin\": \"loopback\"}\0trailing", 31));
  EXPECT_EQ(nul.status, 400) << nul.body;
  EXPECT_EQ(nul.error_code(), "invalid_json");

  auto unknown = admin.post("/api/v1/accounts", {{"plugin", "loopback"}, {"colour", "blue"}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.error_code(), "unknown_field");
  EXPECT_EQ(unknown.json()["error"]["message"],
            "unknown field \"colour\"; valid fields: plugin, label, attendant_id");

  auto wrong_type = admin.post("/api/v1/accounts", {{"plugin", 42}});
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_EQ(wrong_type.error_code(), "invalid_request");

  auto no_plugin = admin.post("/api/v1/accounts", {{"plugin", "telex"}});
  EXPECT_EQ(no_plugin.status, 422);
  EXPECT_EQ(no_plugin.json()["error"]["message"], "no plugin \"telex\" is enabled");
}

TEST_F(BadInputTest, BadPagingRoutesAndMethodsAreRefused) {
  auto admin = host_.admin();
  EXPECT_EQ(admin.get("/api/v1/cases?limit=0").status, 400);
  EXPECT_EQ(admin.get("/api/v1/cases?limit=abc").status, 400);
  EXPECT_EQ(admin.get("/api/v1/cases?before=1x").status, 400);
  EXPECT_EQ(admin.get("/api/v1/nothing-here").status, 404);
  EXPECT_EQ(admin.get("/api/v2/accounts").status, 404);
  EXPECT_EQ(admin.request("PUT", "/api/v1/accounts").status, 405);
  EXPECT_EQ(admin.get("/api/v1/accounts/%zz").status, 400);
}

TEST_F(BadInputTest, HeaderInjectionThroughARecipientOrSubjectIsRefused) {
  auto admin = host_.admin();
  const std::string account = TestHost::create_account(admin, "loopback");
  admin.post("/api/v1/accounts/" + account + "/connect",
             {{"values", {{"account", "a"}, {"password", "pw-inject"}}}});
  auto injected = admin.post("/api/v1/accounts/" + account + "/messages",
                             {{"to", "x@example.com\r\nBcc: everyone@example.com"}, {"text", "hi"}});
  EXPECT_EQ(injected.status, 400);
  EXPECT_EQ(injected.json()["error"]["message"], "\"to\" must not contain line breaks");
  auto subject = admin.post("/api/v1/accounts/" + account + "/messages",
                            {{"to", "x@example.com"}, {"subject", "a\nb"}});
  EXPECT_EQ(subject.status, 400);
}

TEST_F(BadInputTest, BadAttachmentsAreRefusedBeforeAnythingIsSent) {
  auto admin = host_.admin();
  const std::string account = TestHost::create_account(admin, "loopback");
  admin.post("/api/v1/accounts/" + account + "/connect",
             {{"values", {{"account", "a"}, {"password", "pw-attach"}}}});
  for (const Json &attachments : {Json::array({1}), Json::array({{{"id", 5}}}),
                                  Json::array({{{"id", "abc"}}}),
                                  Json::array({{{"id", std::string(64, 'a')}}})}) {
    auto refused = admin.post("/api/v1/accounts/" + account + "/messages",
                              {{"to", "x@example.com"}, {"text", "t"}, {"attachments", attachments}});
    EXPECT_EQ(refused.status, 400) << attachments.dump() << " " << refused.body;
    EXPECT_EQ(refused.error_code(), "invalid_request");
  }
  // Nothing went out, so nothing came back either.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(admin.get("/api/v1/accounts/" + account + "/messages").json()["items"].size(), 0u);
}

TEST_F(BadInputTest, OversizedBodiesAndHeadersAreRefused) {
  auto admin = host_.admin();
  auto big = admin.request("POST", "/api/v1/accounts", std::string(5000, ' '));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.error_code(), "body_too_large");

  auto headers = raw_exchange("GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Filler: " +
                              std::string(4000, 'a') + "\r\n\r\n");
  EXPECT_NE(headers.find("431"), std::string::npos) << headers;
  EXPECT_NE(headers.find("headers_too_large"), std::string::npos);

  // Many short headers, well within the byte limit, are refused by their count; the WebSocket's
  // upgrade request too. At the limit, a request is served.
  const auto with_headers = [](const std::string &head, int count) {
    std::string request = head + "Host: x\r\n";
    for (int i = 1; i < count; ++i) request += "X-" + std::to_string(i) + ": a\r\n";
    return request + "\r\n";
  };
  auto many = raw_exchange(with_headers("GET /api/v1/me HTTP/1.1\r\n", 21));
  EXPECT_NE(many.find("431"), std::string::npos) << many;
  EXPECT_NE(many.find("the request has 21 headers; at most 20 are taken"), std::string::npos)
      << many;
  auto upgrade = raw_exchange(with_headers("GET /api/v1/events HTTP/1.1\r\nUpgrade: websocket\r\n"
                                           "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                                           18));
  EXPECT_NE(upgrade.find("431"), std::string::npos) << upgrade;
  auto within = raw_exchange(with_headers("GET /api/v1/me HTTP/1.1\r\nConnection: close\r\n", 19),
                             std::chrono::seconds(2));
  EXPECT_NE(within.find("401"), std::string::npos) << within;
}

TEST_F(BadInputTest, GarbageAndSlowClientsAreCutOffWhileOthersAreServed) {
  auto garbage = raw_exchange("\x16\x03\x01 this is not HTTP\r\n\r\n");
  EXPECT_NE(garbage.find("400"), std::string::npos) << garbage;

  // A client that sends half a request and stalls is disconnected after the request timeout,
  // and meanwhile everyone else is served.
  net::io_context io;
  tcp::socket stalled(io);
  stalled.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), host_.port()));
  net::write(stalled, net::buffer(std::string("GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")));
  EXPECT_EQ(host_.admin().get("/api/v1/me").status, 200);

  char byte = 0;
  boost::system::error_code ec;
  stalled.read_some(net::buffer(&byte, 1), ec);  // returns when the host closes the connection
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();

  // Abandoned connections leave nothing behind that blocks the next client.
  for (int i = 0; i < 20; ++i) {
    tcp::socket abandoned(io);
    abandoned.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), host_.port()));
  }
  EXPECT_EQ(host_.admin().get("/api/v1/me").status, 200);
}

TEST_F(BadInputTest, StaticFilesNeverEscapeTheirFolder) {
  auto anonymous = host_.anonymous();
  EXPECT_EQ(anonymous.get("/../../etc/passwd").status, 404);
  EXPECT_EQ(anonymous.get("/%2e%2e/%2e%2e/etc/passwd").status, 404);
  EXPECT_EQ(anonymous.get("/.hidden").status, 404);
  EXPECT_EQ(anonymous.request("POST", "/index.html").status, 405);
}


// A WebSocket client that stops reading is dropped once its events pile up past the queue limit,
// and is not waited for: a client reading beside it gets every event.
TEST(SlowEventReaderTest, AClientThatFallsBehindIsDroppedWhileAReaderGetsEverything) {
  TestHost host({}, "api:\n  websocket_queue_limit: 8\n");
  const ApiClient admin = host.admin();
  const std::string account = TestHost::create_account(admin, "loopback");
  ASSERT_EQ(admin.post("/api/v1/accounts/" + account + "/connect",
                       {{"values", {{"account", "slow"}, {"password", "pw-slow-reader"}}}})
                .status,
            202);
  for (int i = 0; i < 300 && admin.get("/api/v1/accounts/" + account).json().value("state", "") !=
                                  "connected";
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EventStream reader(host.port(), host.admin_token());

  // The slow client: a small receive buffer, the handshake, then no reading at all.
  namespace beast = boost::beast;
  net::io_context io;
  beast::websocket::stream<beast::tcp_stream> slow(io);
  auto &socket = beast::get_lowest_layer(slow).socket();
  socket.open(tcp::v4());
  socket.set_option(net::socket_base::receive_buffer_size(4096));
  beast::get_lowest_layer(slow).connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), host.port()));
  const std::string token = host.admin_token();
  slow.set_option(beast::websocket::stream_base::decorator(
      [token](beast::websocket::request_type &request) {
        request.set(beast::http::field::authorization, "Bearer " + token);
      }));
  slow.handshake("127.0.0.1", "/api/v1/events");

  // Far more than any socket buffer holds: each message is pushed going out and coming back.
  constexpr int kMessages = 120;
  const std::string text(60000, 'x');
  for (int i = 0; i < kMessages; ++i) {
    auto sent = admin.post("/api/v1/accounts/" + account + "/messages",
                           {{"to", "+5511987654321"}, {"text", std::to_string(i) + text}});
    ASSERT_EQ(sent.status, 201) << sent.body;
  }

  // The reader gets every message, both ways.
  int read = 0;
  while (read < 2 * kMessages) {
    auto event = reader.wait_for([](const Json &e) { return e.value("type", "") == "message.new"; },
                                 std::chrono::seconds(30));
    if (!event) break;
    ++read;
  }
  EXPECT_EQ(read, 2 * kMessages) << "a reading client was held back by one that does not read";

  // The slow client, reading at last, finds its stream ended by the host before it had them all
  // (still open after 20 s of reading means the host kept it).
  int behind = 0;
  bool ended = false;
  beast::flat_buffer buffer;
  std::function<void()> read_next = [&] {
    slow.async_read(buffer, [&](beast::error_code error, size_t) {
      if (error) {
        ended = true;
        return;
      }
      if (beast::buffers_to_string(buffer.data()).find("\"message.new\"") != std::string::npos) {
        ++behind;
      }
      buffer.consume(buffer.size());
      read_next();
    });
  };
  read_next();
  io.run_for(std::chrono::seconds(20));
  EXPECT_TRUE(ended) << "the slow client was kept, not dropped";
  EXPECT_LT(behind, 2 * kMessages) << "the slow client was waited for";
}

}  // namespace
}  // namespace connector::test
