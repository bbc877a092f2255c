// Load on the control API: many WebSocket clients and a steady rate of API calls while messages
// flow in, against a host running in a process of its own (so its memory is measured alone).
//
// The host runs the example loopback plugin, one account per attendant: every message sent
// through the API comes back as an inbound message, so each send makes outbound, delivery,
// inbound and case events that fan out to every WebSocket of that attendant. Meanwhile (when run
// as root, which the mail servers need) mail flows in through real Postfix and Dovecot to an
// e-mail account of the first attendant, and WhatsApp messages through the WhatsApp test server
// to a WhatsApp account of the second, each stored and pushed like any other. A few clients
// never read: the host must drop them and keep serving the others.
//
// Each figure is printed beside a reference measured in the same run:
//   - events received per reading client, lowest against highest of the same attendant (1.0
//     means no client starved);
//   - API latency under load against the same calls on the idle host, before any client;
//   - the host's resident memory at the end against its memory with the clients connected but
//     idle (bounded: the load must not make it grow without limit);
//   - slow clients dropped against slow clients opened; API errors and failed reading clients
//     against zero;
//   - mails and WhatsApp messages stored against those sent during the load.
//
// Usage: load_bench [--clients N] [--slow N] [--attendants N] [--seconds N] [--rate N]
//                   [--no-channels]
#include "ApiClient.hpp"
#include "TestHost.hpp"
#include "TestServer.hpp"
#include "mail/MailServerFixture.hpp"

#include "BenchTable.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using connector::test::ApiClient;
using connector::test::Json;

struct Options {
  int clients = 1000;
  int slow = 10;
  int attendants = 10;
  int seconds = 60;
  int rate = 100;  // API sends per second, spread over the attendants
  bool channels = true;  // mail and WhatsApp flowing in besides (needs root)
};

Options parse_options(int argc, char **argv) {
  Options options;
  for (int i = 1; i < argc; i += 2) {
    const std::string name = argv[i];
    if (name == "--no-channels") {
      options.channels = false;
      --i;  // a flag: no value follows
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument("no value after " + name);
    const int value = std::stoi(argv[i + 1]);
    if (name == "--clients") options.clients = value;
    else if (name == "--slow") options.slow = value;
    else if (name == "--attendants") options.attendants = value;
    else if (name == "--seconds") options.seconds = value;
    else if (name == "--rate") options.rate = value;
    else throw std::invalid_argument("unknown option " + name);
  }
  if (options.clients < 1 || options.attendants < 1 || options.slow < 0 ||
      options.slow >= options.clients || options.seconds < 1 || options.rate < 1) {
    throw std::invalid_argument("options out of range");
  }
  return options;
}

// Resident memory of a process in MiB, from /proc.
double rss_mib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// The host's process: a TestHost with `plugins_yaml` (its own temporary folder) that writes its
// port and admin token to `out`, then runs until `in` closes.
[[noreturn]] void run_host(const std::string &plugins_yaml, int out, int in) {
  try {
    connector::test::TestHost host(plugins_yaml);
    const std::string ready = std::to_string(host.port()) + " " + host.admin_token() + "\n";
    if (write(out, ready.data(), ready.size()) != static_cast<ssize_t>(ready.size())) _exit(1);
    close(out);
    char byte;
    while (read(in, &byte, 1) > 0) {
    }
  } catch (const std::exception &error) {
    std::cerr << "load_bench: host failed: " << error.what() << "\n";
    _exit(1);
  }
  _exit(0);
}

// One WebSocket client. A reading client counts the events it gets; a slow one reads nothing
// after the handshake until `drain()`, with a small receive buffer so that the host feels it.
class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(net::io_context &io, int group, bool slow) : ws_(io), group_(group), slow_(slow) {}

  void start(uint16_t port, const std::string &token) {
    auto &socket = beast::get_lowest_layer(ws_).socket();
    socket.open(tcp::v4());
    if (slow_) socket.set_option(net::socket_base::receive_buffer_size(4096));
    ws_.set_option(websocket::stream_base::decorator([token](websocket::request_type &request) {
      request.set(beast::http::field::authorization, "Bearer " + token);
    }));
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
        [self = shared_from_this()](beast::error_code ec) {
          if (ec) return self->fail();
          self->ws_.async_handshake("127.0.0.1", "/api/v1/events", [self](beast::error_code ec) {
            if (ec) return self->fail();
            self->connected_ = true;
            if (!self->slow_) self->read();
          });
        });
  }

  void drain() {
    if (connected_ && !closed_) read();
  }

  int group() const { return group_; }
  bool slow() const { return slow_; }
  bool connected() const { return connected_; }
  bool closed() const { return closed_; }
  bool failed() const { return failed_; }
  long events() const { return events_; }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->closed_ = true;
        return;
      }
      self->buffer_.consume(self->buffer_.size());
      ++self->events_;
      self->read();
    });
  }

  void fail() {
    failed_ = true;
    closed_ = true;
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  int group_;
  bool slow_;
  bool connected_ = false;
  bool closed_ = false;
  bool failed_ = false;
  long events_ = 0;
};

struct Attendant {
  std::string token;
  std::string account;
};

Attendant add_attendant(const ApiClient &admin, uint16_t port, int index) {
  auto created = admin.post("/api/v1/attendants", {{"name", "load-" + std::to_string(index)}});
  if (created.status != 201) throw std::runtime_error("cannot add attendant: " + created.body);
  const std::string id = created.json()["id"];
  auto issued = admin.post("/api/v1/attendants/" + id + "/tokens", {{"label", "load"}});
  if (issued.status != 201) throw std::runtime_error("cannot issue token: " + issued.body);
  Attendant attendant{issued.json()["token"], {}};
  ApiClient client(port, attendant.token);
  auto account = client.post("/api/v1/accounts", {{"plugin", "loopback"}, {"label", "load"}});
  if (account.status != 201) throw std::runtime_error("cannot add account: " + account.body);
  attendant.account = account.json()["id"];
  auto connected = client.post("/api/v1/accounts/" + attendant.account + "/connect",
                               {{"values", {{"method", "password"},
                                            {"account", "load" + std::to_string(index) + "@example.com"},
                                            {"password", "load-password"}}}});
  if (connected.status != 202) throw std::runtime_error("cannot connect: " + connected.body);
  return attendant;
}

struct Latencies {
  std::vector<double> ms;
  int errors = 0;

  double percentile(double p) {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  }
};

// Sends `count` messages (one every `interval`) round-robin over the attendants, with a case
// listing after every fourth, and records each call's latency and every non-2xx answer.
Latencies call_api(uint16_t port, const std::vector<Attendant> &attendants, int count,
                   std::chrono::microseconds interval) {
  Latencies result;
  auto next = Clock::now();
  for (int i = 0; i < count; ++i) {
    const Attendant &attendant = attendants[static_cast<size_t>(i) % attendants.size()];
    ApiClient client(port, attendant.token);
    const auto begin = Clock::now();
    auto answer = (i % 4 == 3)
                      ? client.get("/api/v1/cases?limit=20")
                      : client.post("/api/v1/accounts/" + attendant.account + "/messages",
                                    {{"to", "+5511987650" + std::to_string(100 + i % 800)},
                                     {"text", "load " + std::to_string(i)}});
    result.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
    if (answer.status < 200 || answer.status > 299) ++result.errors;
    next += interval;
    std::this_thread::sleep_until(next);
  }
  return result;
}

}  // namespace

// The mail servers and the WhatsApp test server, and the host's accounts on them.
struct Channels {
  connector::test::MailServerFixture mail;
  connector::test::WhatsAppTestServer whatsapp;
  std::string mail_account;
  std::string whatsapp_account;
  int mails_sent = 0;
  int whatsapp_sent = 0;

  static constexpr const char *kPhone = "5511900000077";
  static constexpr const char *kContact = "5511988880077";

  // The loopback plugin (every attendant's account), the e-mail plugin and the WhatsApp plugin.
  std::string plugins_yaml() const {
    const std::string whatsapp_entry =
        connector::test::whatsapp_plugin_yaml(whatsapp).substr(std::string("plugins:\n").size());
    return connector::test::loopback_plugin_yaml() + whatsapp_entry +
           "  email-imap:\n    library: " CONNECTOR_PLUGIN_DIR
           "/libconnector_email_imap.so\n    settings:\n      timeout_s: 30\n      ca_dir: " +
           (mail.dir() / "tls").string() + "\n";
  }

  // An e-mail account for the first attendant and a paired WhatsApp account for the second.
  void connect(uint16_t port, const Attendant &first, const Attendant &second) {
    using connector::test::MailServerFixture;
    ApiClient one(port, first.token);
    mail_account = one.post("/api/v1/accounts", {{"plugin", "email-imap"}}).json()["id"];
    auto connected = one.post(
        "/api/v1/accounts/" + mail_account + "/connect",
        {{"values",
          {{"provider", "imap"}, {"address", MailServerFixture::kAgent},
           {"password", MailServerFixture::kPassword}, {"imap_host", "127.0.0.1"},
           {"imap_port", mail.imaps_port()}, {"imap_security", "tls"},
           {"smtp_host", "127.0.0.1"}, {"smtp_port", mail.smtps_port()},
           {"smtp_security", "tls"}, {"ca_file", mail.ca_file()}}}});
    if (connected.status != 202) throw std::runtime_error("mail connect: " + connected.body);

    ApiClient two(port, second.token);
    whatsapp_account = two.post("/api/v1/accounts", {{"plugin", "whatsapp"}}).json()["id"];
    const std::string base = "/api/v1/accounts/" + whatsapp_account;
    if (two.post(base + "/connect", {{"values", Json::object()}}).status != 202) {
      throw std::runtime_error("WhatsApp connect refused");
    }
    wait_until([&] { return two.get(base + "/qr").status == 200; }, "no WhatsApp QR");
    whatsapp.scan(two.get(base + "/qr").json()["payload"], kPhone);
    wait_until([&] { return two.get(base).json().value("state", "") == "connected"; },
               "WhatsApp did not connect");
    wait_until([&] { return one.get("/api/v1/accounts/" + mail_account).json().value("state", "") ==
                            "connected"; },
               "the mailbox did not connect");
  }

  // One mail and one WhatsApp message.
  void send_one() {
    const std::string n = std::to_string(mails_sent);
    mail.deliver(connector::test::MailServerFixture::kCustomer,
                 connector::test::MailServerFixture::kAgent,
                 "From: customer@example.test\r\nTo: agent@example.test\r\nSubject: load " + n +
                     "\r\nMessage-ID: <load-" + n + "@customer.test>\r\n\r\nmail " + n + "\r\n");
    ++mails_sent;
    whatsapp.send({{"from", kContact}, {"to", kPhone}, {"text", "whatsapp " + n}});
    ++whatsapp_sent;
  }

  // How many messages an account holds, counted page by page.
  static int stored(const ApiClient &client, const std::string &account) {
    int count = 0;
    std::string page = "/api/v1/accounts/" + account + "/messages?limit=200";
    for (;;) {
      const Json answer = client.get(page).json();
      if (!answer.contains("items") || !answer["items"].is_array()) return -1;
      count += static_cast<int>(answer["items"].size());
      if (!answer.contains("next_before") || answer["next_before"].is_null()) return count;
      page = "/api/v1/accounts/" + account + "/messages?limit=200&before=" +
             answer["next_before"].dump();
    }
  }

  static void wait_until(const std::function<bool()> &done, const std::string &failure) {
    for (int i = 0; i < 600; ++i) {
      if (done()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error(failure);
  }
};

int main(int argc, char **argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::exception &error) {
    std::cerr << "load_bench: " << error.what()
              << "\nUsage: load_bench [--clients N] [--slow N] [--attendants N] [--seconds N] "
                 "[--rate N] [--no-channels]\n";
    return 2;
  }
  // Two sockets per client (ours and the host's) must fit.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Channels> channels;
  if (options.channels && geteuid() != 0) {
    std::cout << "load_bench: not root, so no mail servers: only the loopback plugin's messages "
                 "flow (--no-channels says so on purpose)\n";
  } else if (options.channels) {
    try {
      channels = std::make_unique<Channels>();
    } catch (const std::exception &error) {
      std::cerr << "load_bench: the mail or WhatsApp test servers did not start: " << error.what()
                << "\n";
      return 1;
    }
  }
  const std::string plugins_yaml = channels ? channels->plugins_yaml() : std::string();

  int ready[2];
  int hold[2];
  if (pipe(ready) != 0 || pipe(hold) != 0) return 1;
  const pid_t host_pid = fork();
  if (host_pid < 0) return 1;
  if (host_pid == 0) {
    close(ready[0]);
    close(hold[1]);
    run_host(plugins_yaml, ready[1], hold[0]);
  }
  close(ready[1]);
  close(hold[0]);
  std::string line;
  for (char byte; read(ready[0], &byte, 1) == 1 && byte != '\n';) line += byte;
  if (line.empty()) {
    std::cerr << "load_bench: the host did not start\n";
    return 1;
  }
  const auto port = static_cast<uint16_t>(std::stoi(line.substr(0, line.find(' '))));
  const ApiClient admin(port, line.substr(line.find(' ') + 1));

  std::vector<Attendant> attendants;
  for (int i = 0; i < options.attendants; ++i) attendants.push_back(add_attendant(admin, port, i));
  if (channels) {
    if (attendants.size() < 2) {
      std::cerr << "load_bench: the channels need two attendants\n";
      return 2;
    }
    try {
      channels->connect(port, attendants[0], attendants[1]);
    } catch (const std::exception &error) {
      std::cerr << "load_bench: " << error.what() << "\n";
      return 1;
    }
  }

  const auto interval = std::chrono::microseconds(1000000 / options.rate);
  Latencies idle = call_api(port, attendants, 200, interval);
  const double rss_idle = rss_mib(host_pid);

  net::io_context io;
  std::vector<std::shared_ptr<Client>> clients;
  for (int i = 0; i < options.clients; ++i) {
    const int group = i % options.attendants;
    auto client = std::make_shared<Client>(io, group, i < options.slow);
    client->start(port, attendants[static_cast<size_t>(group)].token);
    clients.push_back(client);
  }
  auto work = net::make_work_guard(io);
  std::thread network([&io] { io.run(); });
  const auto connect_deadline = Clock::now() + std::chrono::seconds(60);
  auto settled = [&] {
    return std::all_of(clients.begin(), clients.end(),
                       [](const auto &c) { return c->connected() || c->failed(); });
  };
  while (!settled() && Clock::now() < connect_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double rss_connected = rss_mib(host_pid);

  double rss_peak = rss_connected;
  std::atomic<bool> loading{true};
  std::thread sampler([&] {
    while (loading) {
      rss_peak = std::max(rss_peak, rss_mib(host_pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  // Two mails and two WhatsApp messages a second while the API is loaded.
  std::thread flowing([&] {
    while (channels && loading) {
      try {
        channels->send_one();
      } catch (const std::exception &error) {
        std::cerr << "load_bench: sending to the channels: " << error.what() << "\n";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  Latencies loaded = call_api(port, attendants, options.seconds * options.rate, interval);
  loading = false;
  sampler.join();
  flowing.join();

  // Let the last events arrive: wait until no reading client's count moves for three seconds.
  auto total_events = [&] {
    long sum = 0;
    for (const auto &c : clients) sum += c->events();
    return sum;
  };
  long last = -1;
  for (int quiet = 0; quiet < 3;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::promise<long> counted;
    net::post(io, [&] { counted.set_value(total_events()); });
    const long now = counted.get_future().get();
    quiet = (now == last) ? quiet + 1 : 0;
    last = now;
  }
  const double rss_end = rss_mib(host_pid);
  // Slow clients read now: one the host dropped ends in a close or error, one it kept reads on.
  net::post(io, [&] {
    for (auto &c : clients) {
      if (c->slow()) c->drain();
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(5));
  net::post(io, [&] { io.stop(); });
  network.join();

  int failed = 0;
  int readers_closed = 0;
  int slow_dropped = 0;
  std::vector<long> lowest(static_cast<size_t>(options.attendants), -1);
  std::vector<long> highest(static_cast<size_t>(options.attendants), 0);
  for (const auto &c : clients) {
    if (c->failed()) ++failed;
    if (c->slow()) continue;
    if (c->closed()) ++readers_closed;
    auto g = static_cast<size_t>(c->group());
    lowest[g] = lowest[g] < 0 ? c->events() : std::min(lowest[g], c->events());
    highest[g] = std::max(highest[g], c->events());
  }
  // A slow client either was dropped (its stream ends when it finally reads) or the host's
  // buffers held all it missed, and it caught up with the readers of its attendant.
  int slow_caught_up = 0;
  for (const auto &c : clients) {
    if (!c->slow()) continue;
    if (c->closed()) ++slow_dropped;
    else if (c->events() >= highest[static_cast<size_t>(c->group())]) ++slow_caught_up;
  }
  double fairness = 1.0;
  long events_per_client = 0;
  for (size_t g = 0; g < lowest.size(); ++g) {
    if (highest[g] > 0) fairness = std::min(fairness, double(lowest[g]) / double(highest[g]));
    events_per_client = std::max(events_per_client, highest[g]);
  }

  // Every mail and WhatsApp message sent during the load is stored (waiting up to a minute).
  int mails_stored = 0;
  int whatsapp_stored = 0;
  if (channels) {
    const ApiClient first(port, attendants[0].token);
    const ApiClient second(port, attendants[1].token);
    for (int i = 0; i < 60; ++i) {
      mails_stored = Channels::stored(first, channels->mail_account);
      whatsapp_stored = Channels::stored(second, channels->whatsapp_account);
      if (mails_stored >= channels->mails_sent && whatsapp_stored >= channels->whatsapp_sent) break;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }

  close(hold[1]);
  int status = 0;
  waitpid(host_pid, &status, 0);

  std::cout << "load_bench: " << options.clients << " WebSocket clients (" << options.slow
            << " never read) over " << options.attendants << " attendants, "
            << options.rate << " API calls/s for " << options.seconds << " s; up to "
            << events_per_client << " events per reading client\n";
  using bench::row;
  row("load", "events, least-served reader / best-served of same attendant", fairness, "ratio",
      "every reader served alike", 1.0, "1.0");
  row("load", "API p50 under load (ms)", loaded.percentile(0.5), "ms", "API p50 idle host",
      idle.percentile(0.5), "-");
  row("load", "API p95 under load (ms)", loaded.percentile(0.95), "ms", "API p95 idle host",
      idle.percentile(0.95), "-");
  row("load", "host RSS after load (MiB)", rss_end, "MiB", "host RSS, clients idle",
      rss_connected, "bounded");
  row("load", "host RSS peak during load (MiB)", rss_peak, "MiB", "host RSS, no clients",
      rss_idle, "bounded");
  std::cout << "  slow clients: " << slow_dropped << " dropped by the host, " << slow_caught_up
            << " caught up in full after reading\n";
  row("load", "slow clients dropped or caught up in full", slow_dropped + slow_caught_up,
      "clients", "slow clients opened", options.slow, "all");
  row("load", "API errors under load", loaded.errors + idle.errors, "calls", "API calls made",
      static_cast<double>(loaded.ms.size() + idle.ms.size()), "0");
  row("load", "reading clients failed or closed", failed + readers_closed, "clients",
      "reading clients", options.clients - options.slow, "0");
  if (channels) {
    row("load", "mails stored, sent during the load", mails_stored, "mails", "mails sent",
        channels->mails_sent, "all");
    row("load", "WhatsApp messages stored, sent during the load", whatsapp_stored, "messages",
        "WhatsApp messages sent", channels->whatsapp_sent, "all");
  }
  return 0;
}
