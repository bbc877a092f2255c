// Latency from the WhatsApp test server to the host's WebSocket: the test server's "phone" sends
// a text, and the clock stops when the host pushes message.new for it. Prints p50 and p95.
// Target: p95 ≤ 100 ms.
//
//   whatsapp_latency_bench [messages]     (default 200)
#include "BenchTable.hpp"
#include "TestHost.hpp"
#include "TestServer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace connector::test;
using Clock = std::chrono::steady_clock;

int main(int argc, char **argv) {
  const int count = argc > 1 ? std::stoi(argv[1]) : 200;
  WhatsAppTestServer server;
  TestHost host(whatsapp_plugin_yaml(server));
  EventStream events(host.port(), host.admin_token());
  const std::string account = TestHost::create_account(host.admin(), "whatsapp");
  host.admin().post("/api/v1/accounts/" + account + "/connect", {{"values", Json::object()}});
  if (!events.wait_for_type("account.qr", std::chrono::seconds(30))) return 1;
  auto qr = host.admin().get("/api/v1/accounts/" + account + "/qr").json();
  server.scan(qr["payload"], "5511900000009");
  if (!events.wait_for([](const Json &e) { return e["type"] == "account.status" && e["state"] == "connected"; },
                       std::chrono::seconds(60))) {
    std::fprintf(stderr, "did not connect\n");
    return 1;
  }

  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    const std::string text = "bench " + std::to_string(i);
    const auto start = Clock::now();
    server.send({{"from", "5511988880000"}, {"to", "5511900000009"}, {"text", text}});
    auto got = events.wait_for(
        [&](const Json &e) { return e["type"] == "message.new" && e["message"]["text"] == text; },
        std::chrono::seconds(10));
    if (!got) {
      std::fprintf(stderr, "message %d never arrived\n", i);
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[static_cast<size_t>(q * (ms.size() - 1))]; };
  std::printf("whatsapp latency: %d messages from the test server to the host's WebSocket\n", count);
  // No path in the same run can stand in for WhatsApp's, so the reference is the target itself.
  bench::row("whatsapp", "message to WebSocket event p50 (ms)", at(0.5), "ms", "target p95", 100,
             "-");
  bench::row("whatsapp", "message to WebSocket event p95 (ms)", at(0.95), "ms", "target p95", 100,
             "ratio <= 1");
  return 0;
}
