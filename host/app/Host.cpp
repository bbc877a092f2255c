#include "app/Host.hpp"

#include "accounts/AccountService.hpp"
#include "accounts/EventHub.hpp"
#include "api/ControlApi.hpp"
#include "api/Server.hpp"
#include "auth/Attendants.hpp"
#include "cases/Casework.hpp"
#include "common/RandomId.hpp"
#include "log/Log.hpp"
#include "plugins/PluginRegistry.hpp"
#include "store/AccountValues.hpp"
#include "store/AttachmentStore.hpp"
#include "store/Conversations.hpp"
#include "store/Database.hpp"
#include "store/SecretBox.hpp"
#include "store/SpaceReserve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace connector::app {
namespace {

// Lets the account runtime find plugins without knowing the registry.
class RegistryDirectory final : public accounts::PluginDirectory {
 public:
  explicit RegistryDirectory(const plugins::PluginRegistry &registry) : registry_(registry) {}

  plugins::LoadedPlugin *find(const std::string &plugin_id) override {
    return registry_.find(plugin_id);
  }
  std::optional<std::string> refusal(const std::string &plugin_id) override {
    for (const auto &record : registry_.records()) {
      if (record.id == plugin_id && record.state == plugins::PluginState::kRefused) {
        return record.attendant_reason();
      }
    }
    return std::nullopt;
  }

 private:
  const plugins::PluginRegistry &registry_;
};

// The reserve kept for the full-disk status (SpaceReserve), the room beyond it that must be free
// before paused accounts resume, and how often the disk is looked at.
constexpr uint64_t kReserveBytes = 2ull << 20;
constexpr uint64_t kResumeMarginBytes = 8ull << 20;
constexpr std::chrono::milliseconds kSpaceCheckInterval{1000};

Outcome prepare_data_dir(const std::filesystem::path &dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    return failure("storage", "cannot create the data folder " + dir.string() + ": " +
                                  (ec ? ec.message() : "not a folder"));
  }
  // Conversations and credentials live here: keep them to the host's user.
  ::chmod(dir.c_str(), 0700);
  // A folder the host cannot write in is said as such, not as a database it cannot open.
  const auto probe = dir / ("." + random_id("write-check"));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    return failure("storage",
                   "the data folder " + dir.string() + " is not writable (" +
                       std::strerror(error) + "): the host keeps its database, secret key and "
                       "attachments there. " +
                       (error == ENOSPC ? std::string("Free space on its disk")
                                        : "Make it writable for the user running connector-host "
                                          "(uid " + std::to_string(::geteuid()) + ")") +
                       ", or set data_dir to another folder");
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return Ok{};
}

std::vector<plugins::PluginSpec> plugin_specs(const config::Config &config) {
  std::vector<plugins::PluginSpec> specs;
  for (const auto &[id, plugin] : config.plugins) {
    if (plugin.enabled) specs.push_back({id, plugin.library, plugin.settings});
  }
  return specs;
}

}  // namespace

// Declared in the order they are built; destroyed in reverse, so the server stops before the
// plugins shut down, and the plugins before the store closes.
struct Host::Parts {
  config::Config config;
  std::unique_ptr<store::Database> db;
  std::unique_ptr<store::SpaceReserve> reserve;
  std::unique_ptr<store::SecretBox> secrets;
  std::unique_ptr<store::AccountValues> values;
  std::unique_ptr<store::AttachmentStore> attachments;
  std::unique_ptr<store::Conversations> conversations;
  std::unique_ptr<auth::Attendants> people;
  accounts::EventHub events;
  std::unique_ptr<accounts::AccountService> accounts;
  std::unique_ptr<cases::Casework> casework;
  std::unique_ptr<plugins::PluginRegistry> registry;
  std::unique_ptr<RegistryDirectory> directory;
  std::unique_ptr<api::ControlApi> api;
  std::unique_ptr<api::Server> server;
  uint16_t port = 0;
  std::string public_url;
  std::string first_login_link;
};

namespace {

// Loads the secret key and proves it opens the credentials already stored. A key file that is
// gone, or a key that is not the one the credentials were sealed with, stops the start with the
// way out, instead of every account failing later one by one.
Outcome open_secrets(const std::filesystem::path &data_dir, store::Database &db,
                     std::unique_ptr<store::SecretBox> &secrets,
                     std::unique_ptr<store::AccountValues> &values) {
  const auto key_file = data_dir / "secret.key";
  const char *env_key = std::getenv("CONNECTOR_HOST_SECRET_KEY");
  const bool key_from_file = env_key == nullptr || *env_key == '\0';
  const std::string fix =
      " Restore the original key (the file, or CONNECTOR_HOST_SECRET_KEY); or, to give up the "
      "stored credentials and connect every account again, run: connector-host --config <file> "
      "secrets forget";
  if (key_from_file && !std::filesystem::exists(key_file)) {
    store::SecretBox unused{store::SecretBox::Key{}};
    auto stored = store::AccountValues(db, unused).count_secrets();
    if (!stored) return stored.failure();
    if (*stored > 0) {
      return failure("secret_key_missing",
                     "the secret key file " + key_file.string() + " is missing, but the database "
                     "holds " + std::to_string(*stored) + " credentials sealed with it." + fix);
    }
  }
  auto box = store::SecretBox::load(key_file);
  if (!box) return box.failure();
  secrets = std::make_unique<store::SecretBox>(*box);
  values = std::make_unique<store::AccountValues>(db, *secrets);
  if (auto opens = values->check_key(); !opens) {
    return failure("secret_key_mismatch",
                   "the secret key in use does not open the credentials stored in the database "
                   "(it was replaced, or CONNECTOR_HOST_SECRET_KEY is not the one they were "
                   "stored with)." + fix);
  }
  return Ok{};
}

}  // namespace

Expected<std::unique_ptr<Host>> Host::start(const config::Config &config) {
  auto parts = std::make_unique<Parts>();
  parts->config = config;
  auto &p = *parts;

  // The store and its secrets.
  if (auto ready = prepare_data_dir(config.data_dir); !ready) return ready.failure();
  if (auto present = check_database_present(config.data_dir); !present) return present.failure();
  auto db = store::Database::open(config.data_dir / "connector-host.db");
  if (!db) return db.failure();
  if (auto intact = (*db)->check_intact(); !intact) return intact.failure();
  p.db = std::move(*db);
  if (auto key = open_secrets(config.data_dir, *p.db, p.secrets, p.values); !key) {
    return key.failure();
  }
  p.attachments = std::make_unique<store::AttachmentStore>(*p.db, config.data_dir / "attachments");
  if (auto whole = p.attachments->check_folder(); !whole) return whole.failure();
  p.attachments->remove_unfinished();
  p.conversations = std::make_unique<store::Conversations>(*p.db);
  p.people = std::make_unique<auth::Attendants>(*p.db);

  // The accounts and their plugins.
  p.accounts = std::make_unique<accounts::AccountService>(*p.db, *p.values, *p.attachments,
                                                          *p.conversations, p.events);

  // Every new message a plugin reports is stored and filed on its case in one transaction,
  // before the plugin's emit returns.
  auto casework = cases::Casework::open(*p.db, p.events, config.matching);
  if (!casework) return casework.failure();
  p.casework = std::move(*casework);
  p.accounts->set_message_filer([work = p.casework.get()](const accounts::Account &account,
                                                          const store::NewMessage &message,
                                                          std::optional<int64_t> case_id,
                                                          const std::string &by)
                                    -> Expected<store::Conversations::Stored> {
    auto filed = work->file_sent(account.id, account.attendant_id, message, case_id, by);
    if (!filed) return filed.failure();
    return filed->stored;
  });

  p.accounts->set_batch_filer([work = p.casework.get()](
                                  const accounts::Account &account,
                                  const std::vector<store::NewMessage> &messages)
                                  -> Expected<std::vector<store::Conversations::Stored>> {
    auto filed = work->ingest_all(account.id, account.attendant_id, messages);
    if (!filed) return filed.failure();
    std::vector<store::Conversations::Stored> stored;
    stored.reserve(filed->size());
    for (auto &one : *filed) stored.push_back(std::move(one.stored));
    return stored;
  });

  p.registry = std::make_unique<plugins::PluginRegistry>(plugin_specs(config), *p.accounts);
  p.directory = std::make_unique<RegistryDirectory>(*p.registry);
  p.accounts->set_plugins(p.directory.get());

  // The control API and its server.
  api::ServerSettings server_settings;
  server_settings.address = config.listen.address;
  server_settings.port = config.listen.port;
  server_settings.max_body_bytes = config.api.max_body_bytes;
  server_settings.max_header_bytes = config.api.max_header_bytes;
  server_settings.max_header_count = config.api.max_header_count;
  server_settings.request_timeout_ms = config.api.request_timeout_ms;
  server_settings.websocket_max_message_bytes = config.api.websocket_max_message_bytes;
  server_settings.websocket_queue_limit = config.api.websocket_queue_limit;
  server_settings.websocket_token_check_seconds = config.api.websocket_token_check_seconds;
  server_settings.static_dir = config.ui_dir;

  api::ApiSettings api_settings;
  api_settings.login_link_ttl_minutes = static_cast<int>(config.auth.login_link_ttl_minutes);
  const plugins::PluginRegistry *registry = p.registry.get();
  p.api = std::make_unique<api::ControlApi>(api_settings, *p.accounts, *p.people,
                                            *p.conversations, [registry] {
                                              nlohmann::json items = nlohmann::json::array();
                                              for (const auto &r : registry->records()) {
                                                auto item = r.to_json();
                                                item["attendant_reason"] = r.attendant_reason();
                                                items.push_back(std::move(item));
                                              }
                                              return items;
                                            });
  p.api->set_casework(p.casework.get());
  p.server = std::make_unique<api::Server>(server_settings, *p.api, p.events);
  auto port = p.server->start();
  if (!port) return port.failure();
  p.port = *port;
  p.public_url = !config.public_url.empty()
                     ? config.public_url
                     : "http://" + config.listen.address + ":" + std::to_string(p.port);
  p.api->set_public_url(p.public_url);

  // The first start creates an admin, who signs in with a one-time link.
  if (!p.people->any()) {
    auto admin = p.people->create("admin", auth::Role::kAdmin);
    if (!admin) return admin.failure();
    auto code = p.people->create_login_code(admin->id,
                                            static_cast<int>(config.auth.login_link_ttl_minutes));
    if (!code) return code.failure();
    p.first_login_link = p.public_url + "/#login=" + *code;
    log::info({}, "first start: created the admin account");
  }

  p.accounts->resume_all();

  // Room for saying "the disk is full" when it is: an account whose messages cannot be stored
  // pauses, and resumes once the watch finds space again.
  p.reserve = std::make_unique<store::SpaceReserve>(config.data_dir, kReserveBytes,
                                                    kResumeMarginBytes);
  if (!p.reserve->hold()) {
    log::warn({}, "the disk of " + config.data_dir.string() + " is (nearly) full: only " +
                      std::to_string(p.reserve->free_bytes() / 1024) + " KiB are free");
  }
  p.accounts->watch_space(*p.reserve, kSpaceCheckInterval);
  log::info({}, "listening on " + p.public_url);
  return std::unique_ptr<Host>(new Host(std::move(parts)));
}

Outcome Host::check_database_present(const std::filesystem::path &data_dir) {
  const auto file = data_dir / "connector-host.db";
  std::error_code ec;
  // An empty file is no database either, unless its write-ahead log holds what was written.
  auto size_of = [&](const std::filesystem::path &f) {
    std::error_code error;
    const auto size = std::filesystem::file_size(f, error);
    return error ? uintmax_t{0} : size;
  };
  const bool present = std::filesystem::exists(file, ec);
  if (ec) return Ok{};
  if (present && (size_of(file) > 0 || size_of(file.string() + "-wal") > 0)) return Ok{};
  std::string left;
  if (std::filesystem::exists(data_dir / "secret.key", ec)) left = "its secret key (secret.key)";
  const auto attachments = data_dir / "attachments";
  if (std::filesystem::is_directory(attachments, ec) &&
      !std::filesystem::is_empty(attachments, ec)) {
    left += std::string(left.empty() ? "" : " and ") + "its attachments (attachments/)";
  }
  if (left.empty()) return Ok{};
  return failure("database_missing",
                 "the database " + file.string() + (present ? " is empty" : " is missing") +
                     ", but the data folder still holds " +
                     left + " from an earlier store. Restore the database from the backup (with "
                     "its -wal file, if there is one); or, to start over with an empty store, move "
                     "everything out of " + data_dir.string() + " first");
}

Host::Host(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Host::~Host() {
  if (!parts_) return;
  log::info({}, "stopping");
  parts_->server->stop();
  parts_->accounts->stop_watching_space();
  parts_->registry.reset();  // shuts every plugin down while the store is still open
  log::info({}, "stopped");
}

uint16_t Host::port() const { return parts_->port; }
const std::string &Host::public_url() const { return parts_->public_url; }
const std::string &Host::first_login_link() const { return parts_->first_login_link; }
api::Response Host::handle(const api::Request &request) { return parts_->api->handle(request); }

}  // namespace connector::app
