// The connector-host binary as an admin meets it: --help, --version, --check-config, admin
// commands, a clean stop on SIGTERM, and refused plugins reported while the others run.
#include "ApiClient.hpp"
#include "HostProcess.hpp"
#include "TempDir.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <thread>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace connector::test {
namespace {

struct Run {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

Run run(const std::string &args) {
  Run result;
  FILE *pipe = popen((std::string(CONNECTOR_HOST_BINARY) + " " + args + " 2>&1").c_str(), "r");
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(CommandLineTest, HelpAndVersion) {
  auto help = run("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--check-config FILE"), std::string::npos);
  auto version = run("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.output, "connector-host " CONNECTOR_HOST_VERSION " (connector SDK 1.1)\n");
  auto unknown = run("--frobnicate");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("unknown option --frobnicate"), std::string::npos);
}

TEST(CommandLineTest, CheckConfigNamesFileLineAndKey) {
  TempDir dir;
  auto good = dir.write("good.yaml", "listen:\n  port: 8080\n");
  auto check = run("--check-config " + good.string());
  EXPECT_EQ(check.exit_code, 0);
  EXPECT_NE(check.output.find("configuration is valid"), std::string::npos);

  auto bad = dir.write("bad.yaml", "listen:\n  port: 8080\n  adress: 127.0.0.1\n");
  auto refused = run("--check-config " + bad.string());
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find(bad.string() + ":3:3: listen.adress: unknown key"),
            std::string::npos)
      << refused.output;

  auto missing = run("--config " + (dir / "absent.yaml").string());
  EXPECT_EQ(missing.exit_code, 2);
}

TEST(CommandLineTest, RunsRefusesBadPluginsAndStopsCleanlyOnSigterm) {
  TempDir dir;
  const auto config = dir.write(
      "host.yaml",
      "listen:\n  port: 0\n"
      "data_dir: data\n"
      "plugins:\n"
      "  loopback:\n    library: " CONNECTOR_PLUGIN_DIR "/libconnector_loopback.so\n"
      "  future:\n    library: " CONNECTOR_FIXTURE_PLUGIN_DIR "/libfixture_abi_v2_0.so\n");
  HostProcess host(config, dir / "output.txt");

  const std::string url = host.wait_for("running at (http://127\\.0\\.0\\.1:[0-9]+)");
  ASSERT_FALSE(url.empty()) << read_file(dir / "output.txt");
  const std::string code = host.wait_for("#login=([A-Za-z0-9_-]+)");
  ASSERT_FALSE(code.empty());
  const uint16_t port = static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));

  auto redeemed = ApiClient(port).post("/api/v1/auth/login-link", {{"code", code}});
  ASSERT_EQ(redeemed.status, 201);
  ApiClient admin(port, redeemed.json()["token"]);
  auto plugins = admin.get("/api/v1/plugins").json()["items"];
  ASSERT_EQ(plugins.size(), 2u);
  const Json &future = plugins[0]["id"] == "future" ? plugins[0] : plugins[1];
  const Json &loopback = plugins[0]["id"] == "loopback" ? plugins[0] : plugins[1];
  EXPECT_EQ(loopback["state"], "loaded");
  EXPECT_EQ(future["state"], "refused");
  EXPECT_NE(future["reason"].get<std::string>().find("built for connector SDK 2.0"),
            std::string::npos)
      << future["reason"];

  // The admin commands work beside the running host.
  auto link = run("--config " + config.string() + " login-link");
  EXPECT_EQ(link.exit_code, 0);
  EXPECT_NE(link.output.find("#login="), std::string::npos);
  auto added = run("--config " + config.string() + " attendants add Ana");
  ASSERT_EQ(added.exit_code, 0) << added.output;
  const std::string ana = added.output.substr(0, added.output.find('\n'));
  auto token = run("--config " + config.string() + " tokens issue " + ana);
  ASSERT_EQ(token.exit_code, 0);
  ApiClient as_ana(port, token.output.substr(0, token.output.find('\n')));
  EXPECT_EQ(as_ana.get("/api/v1/me").json()["name"], "Ana");

  EXPECT_EQ(host.stop(SIGTERM), 0);
  const std::string output = read_file(dir / "output.txt");
  EXPECT_NE(output.find("received SIGTERM"), std::string::npos);
  EXPECT_NE(output.find("stopped"), std::string::npos);
}

TEST(CommandLineTest, ACorruptDatabaseIsAClearErrorNotACrash) {
  TempDir dir;
  dir.write("data/connector-host.db", std::string(8192, 'x'));
  const auto config = dir.write("host.yaml", "listen:\n  port: 0\ndata_dir: data\n");
  HostProcess host(config, dir / "output.txt");
  EXPECT_FALSE(host.wait_for("cannot start: (.*)").empty()) << read_file(dir / "output.txt");
  EXPECT_EQ(host.stop(0), 1);
  EXPECT_NE(read_file(dir / "output.txt").find("connector-host.db"), std::string::npos);
}

TEST(CommandLineTest, ALostOrReplacedSecretKeyStopsTheStartWithTheWayOut) {
  TempDir dir;
  const auto config = dir.write(
      "host.yaml",
      "listen:\n  port: 0\ndata_dir: data\n"
      "plugins:\n  loopback:\n    library: " CONNECTOR_PLUGIN_DIR "/libconnector_loopback.so\n");
  {
    HostProcess host(config, dir / "first.txt");
    const auto signed_in = host.sign_in();
    ASSERT_TRUE(signed_in) << read_file(dir / "first.txt");
    ApiClient admin(signed_in->port, signed_in->token);
    auto account = admin.post("/api/v1/accounts", {{"plugin", "loopback"}, {"label", "x"}});
    ASSERT_EQ(account.status, 201);
    const std::string id = account.json()["id"];
    auto connected = admin.post("/api/v1/accounts/" + id + "/connect",
                                {{"values", {{"method", "password"}, {"account", "ana@example.com"},
                                             {"password", "kept-as-a-secret"}}}});
    ASSERT_EQ(connected.status, 202) << connected.body;
    EXPECT_EQ(host.stop(SIGTERM), 0);
  }
  const auto key = dir / "data" / "secret.key";
  std::filesystem::rename(key, dir / "secret.key.backup");

  {
    HostProcess host(config, dir / "missing.txt");
    const std::string reason = host.wait_for("cannot start: (.*)");
    EXPECT_NE(reason.find("secret.key is missing"), std::string::npos) << reason;
    EXPECT_NE(reason.find("secrets forget"), std::string::npos) << reason;
    EXPECT_EQ(host.stop(0), 1);
  }
  EXPECT_FALSE(std::filesystem::exists(key)) << "a new key must not replace the lost one";

  dir.write("data/secret.key", std::string(64, 'a') + "\n");
  std::filesystem::permissions(key, std::filesystem::perms::owner_read |
                                        std::filesystem::perms::owner_write);
  {
    HostProcess host(config, dir / "replaced.txt");
    const std::string reason = host.wait_for("cannot start: (.*)");
    EXPECT_NE(reason.find("does not open the credentials"), std::string::npos) << reason;
    EXPECT_EQ(host.stop(0), 1);
  }

  auto forgotten = run("--config " + config.string() + " secrets forget");
  EXPECT_EQ(forgotten.exit_code, 0) << forgotten.output;
  EXPECT_NE(forgotten.output.find("deleted 1 stored credentials"), std::string::npos)
      << forgotten.output;
  HostProcess host(config, dir / "after.txt");
  EXPECT_FALSE(host.wait_for("running at (http://[^ ]+)").empty()) << read_file(dir / "after.txt");
  EXPECT_EQ(host.stop(SIGTERM), 0);
}

TEST(CommandLineTest, TheHostServesMoreClientsThanASmallSoftFileLimitAllows) {
  rlimit files{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  constexpr int kClients = 150;
  if (files.rlim_max < 2 * kClients + 64) GTEST_SKIP() << "the hard open-file limit is too low";
  TempDir dir;
  const auto config = dir.write("host.yaml", "listen:\n  port: 0\ndata_dir: data\n");
  HostProcess host(config, dir / "output.txt", /*soft_file_limit=*/64);
  const auto admin = host.sign_in();
  ASSERT_TRUE(admin) << read_file(dir / "output.txt");
  const uint16_t port = admin->port;
  const std::string token = admin->token;

  // With 64 descriptors the host could not hold these; it raised its own limit at start.
  std::vector<std::unique_ptr<EventStream>> clients;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_NO_THROW(clients.push_back(std::make_unique<EventStream>(port, token))) << i;
  }
  for (auto &client : clients) EXPECT_TRUE(client->wait_for_type("hello"));
  EXPECT_EQ(ApiClient(port, token).get("/api/v1/me").status, 200);
  clients.clear();
  EXPECT_EQ(host.stop(SIGTERM), 0);
}

TEST(CommandLineTest, OutOfFileDescriptorsTheHostWaitsInsteadOfSpinningAndServesAgain) {
  TempDir dir;
  const auto config = dir.write("host.yaml", "listen:\n  port: 0\ndata_dir: data\n");
  HostProcess host(config, dir / "output.txt", /*soft_file_limit=*/64, /*hard_file_limit=*/64);
  const auto admin = host.sign_in();
  ASSERT_TRUE(admin) << read_file(dir / "output.txt");
  const uint16_t port = admin->port;
  const std::string token = admin->token;

  // Take every descriptor the host has left, then some: the kernel queues the extra connections.
  std::vector<int> sockets;
  for (int i = 0; i < 80; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof address), 0);
    sockets.push_back(fd);
  }
  EXPECT_FALSE(host.wait_for("(cannot accept connections: .*)").empty());
  // Saturated for a while, the host must not burn a core retrying the accept.
  const double before = host.cpu_seconds();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_LT(host.cpu_seconds() - before, 0.5);

  for (const int fd : sockets) ::close(fd);  // the descriptors come back: the host serves again
  EventStream again(port, token);
  EXPECT_TRUE(again.wait_for_type("hello"));
  EXPECT_EQ(ApiClient(port, token).get("/api/v1/me").status, 200);
}

}  // namespace
}  // namespace connector::test
