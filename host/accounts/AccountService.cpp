#include "accounts/AccountService.hpp"

#include "common/RandomId.hpp"
#include "log/Log.hpp"
#include "plugins/LoadedPlugin.hpp"

#include <algorithm>
#include <set>

namespace connector::accounts {
namespace {

using store::now_ms;
using store::Row;
using store::Value;

const std::set<std::string> kStates = {"disconnected", "connecting",   "awaiting_qr",
                                       "connected",    "error",        "reauth_needed"};

constexpr size_t kMaxExternalId = 512;
constexpr size_t kMaxLogText = 2000;

constexpr const char *kAccountColumns =
    "SELECT id, attendant_id, plugin_id, label, state, account_name, detail, wanted_connected, "
    "created_at, updated_at, reason_code FROM accounts ";

Account account_from(const Row &row) {
  return Account{row.text(0), row.text(1), row.text(2), row.text(3),        row.text(4),
                 row.text(5), row.text(6), row.integer(7) != 0, row.integer(8), row.integer(9),
                 row.text(10)};
}

cn_result code_of(const Failure &failure) {
  return failure.code == "conflict" || failure.code == "storage" ||
                 failure.code == "storage_full"
             ? CN_ERR_STORAGE
             : CN_ERR_INVALID_ARGUMENT;
}

// At most this many attachments of one account wait for their message (see
// unfiled_attachments_); beyond it the oldest is no longer tracked.
constexpr size_t kMaxUnfiledAttachments = 1000;
// Message events one "messages" event may carry.
constexpr size_t kMaxMessagesPerEvent = 1000;
// A disk that fills up again within this time of resuming makes the next resume wait for more
// room: first this much, then twice as much each time, up to the last.
constexpr std::chrono::seconds kResumeHeld(60);
constexpr uint64_t kFirstExtraRoom = 16ull << 20;
constexpr uint64_t kMostExtraRoom = 64ull << 30;

std::string string_member(const Json &object, const char *key, size_t max_size = 1 << 20) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  std::string value = it->get<std::string>();
  if (value.size() > max_size) value.resize(max_size);
  return value;
}

// Checks the connect form against the plugin's declared fields: unknown names are refused with
// the valid ones, required ones must be present, and a choice must be one of those offered.
Outcome check_connect_values(const Json &descriptor, const Json &values) {
  if (!values.is_object()) return failure("invalid_request", "\"values\" must be an object");
  const Json fields = descriptor.value("connect_fields", Json::array());
  std::string valid;
  for (const auto &field : fields) valid += (valid.empty() ? "" : ", ") + field.value("name", "");

  for (const auto &item : values.items()) {
    const std::string &name = item.key();
    const Json &value = item.value();
    const bool declared = std::any_of(fields.begin(), fields.end(), [&](const Json &f) {
      return f.value("name", "") == name;
    });
    if (!declared) {
      return failure("unknown_field", "unknown connect field \"" + name + "\"; valid: " + valid);
    }
    if (!value.is_string() && !value.is_number() && !value.is_boolean()) {
      return failure("invalid_request", "connect field \"" + name + "\" must be a plain value");
    }
  }
  for (const auto &field : fields) {
    const std::string name = field.value("name", "");
    const bool present = values.contains(name) &&
                         !(values[name].is_string() && values[name].get<std::string>().empty());
    if (field.value("required", false) && !present && !field.contains("default")) {
      return failure("missing_field", "connect field \"" + name + "\" is required");
    }
    if (present && field.contains("choices") && values[name].is_string()) {
      const auto chosen = values[name].get<std::string>();
      const auto &choices = field["choices"];
      const bool offered = std::any_of(choices.begin(), choices.end(), [&](const Json &c) {
        return c.value("value", "") == chosen;
      });
      if (!offered) {
        return failure("invalid_choice",
                       "\"" + chosen + "\" is not a valid choice for \"" + name + "\"");
      }
    }
  }
  return Ok{};
}

// Secret connect values are registered with the log masker before the plugin sees them, so
// nothing the plugin logs or reports can carry them.
void mask_secret_values(const Json &descriptor, const Json &values) {
  for (const auto &field : descriptor.value("connect_fields", Json::array())) {
    const std::string name = field.value("name", "");
    if (field.value("secret", false) && values.contains(name) && values[name].is_string()) {
      log::add_secret(values[name].get<std::string>());
    }
  }
}

}  // namespace

Json to_json(const Account &a) {
  return {{"id", a.id},
          {"attendant_id", a.attendant_id},
          {"plugin", a.plugin_id},
          {"label", a.label},
          {"state", a.state},
          {"account", a.account_name},
          {"detail", a.detail},
          {"wanted_connected", a.wanted_connected},
          {"created_at", a.created_at},
          {"updated_at", a.updated_at},
          {"reason_code", a.reason_code}};
}

AccountService::AccountService(store::Database &db, store::AccountValues &values,
                               store::AttachmentStore &attachments,
                               store::Conversations &conversations, EventHub &events)
    : db_(db),
      values_(values),
      attachments_(attachments),
      conversations_(conversations),
      events_(events) {}

AccountService::~AccountService() { stop_watching_space(); }

Expected<Account> AccountService::create(const std::string &attendant_id,
                                         const std::string &plugin_id, const std::string &label) {
  if (plugins_ == nullptr || plugins_->find(plugin_id) == nullptr) {
    auto refusal = plugins_ != nullptr ? plugins_->refusal(plugin_id) : std::nullopt;
    return failure("unknown_plugin", refusal ? "plugin \"" + plugin_id + "\" is not available: " +
                                                   *refusal
                                             : "no plugin \"" + plugin_id + "\" is enabled");
  }
  if (label.size() > 200) return failure("invalid_request", "a label has at most 200 characters");
  const int64_t now = now_ms();
  Account account{random_id("acc"), attendant_id, plugin_id, label, "disconnected", "", "",
                  false,            now,          now,    ""};
  auto inserted = db_.run(
      "INSERT INTO accounts (id, attendant_id, plugin_id, label, created_at, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {account.id, attendant_id, plugin_id, label, now, now});
  if (!inserted) return inserted.failure();
  log::info({plugin_id, account.id}, "account created");
  return account;
}

Expected<Account> AccountService::get(const std::string &account_id) {
  std::optional<Account> found;
  auto read = db_.run(std::string(kAccountColumns) + "WHERE id = ?", {account_id},
                      [&](const Row &row) { found = account_from(row); });
  if (!read) return read.failure();
  if (!found) return failure("not_found", "no account " + account_id);
  return *found;
}

std::vector<Account> AccountService::list(const std::optional<std::string> &attendant_id) {
  std::vector<Account> out;
  auto on_row = [&](const Row &row) { out.push_back(account_from(row)); };
  if (attendant_id) {
    (void)db_.run(std::string(kAccountColumns) + "WHERE attendant_id = ? ORDER BY created_at, id",
                  {*attendant_id}, on_row);
  } else {
    (void)db_.run(std::string(kAccountColumns) + "ORDER BY created_at, id", {}, on_row);
  }
  return out;
}

Outcome AccountService::remove(const std::string &account_id) {
  auto account = get(account_id);
  if (!account) return account.failure();
  std::lock_guard verbs(verb_lock(account_id));
  if (auto plugin = plugin_of(*account)) {
    // Forget the credentials at the channel too; a plugin that fails here must not keep the
    // account alive in the host.
    if (auto done = (*plugin)->disconnect(account_id, true); !done) {
      log::warn({account->plugin_id, account_id}, "disconnect before removal failed: " +
                                                       done.failure().message);
    }
  }
  auto deleted = db_.run("DELETE FROM accounts WHERE id = ?", {account_id});
  if (!deleted) return deleted;
  {
    std::lock_guard lock(mutex_);
    qr_codes_.erase(account_id);
  }
  log::info({account->plugin_id, account_id}, "account removed");
  events_.publish(account->attendant_id, "account.removed", {{"account_id", account_id}});
  return Ok{};
}

Outcome AccountService::connect(const std::string &account_id, const Json &values) {
  auto account = get(account_id);
  if (!account) return account.failure();
  auto plugin = plugin_of(*account);
  if (!plugin) return plugin.failure();
  if (auto checked = check_connect_values((*plugin)->descriptor(), values); !checked) {
    return checked;
  }
  mask_secret_values((*plugin)->descriptor(), values);

  std::lock_guard verbs(verb_lock(account_id));
  if (auto wanted = set_wanted(account_id, true); !wanted) return wanted;
  {
    // Asked for by the attendant: a paused account tries again now.
    std::lock_guard lock(mutex_);
    paused_.erase(account_id);
  }
  log::info({account->plugin_id, account_id}, "connecting");
  (void)save_state(account_id, "connecting", account->account_name, "");
  events_.publish(account->attendant_id, "account.status",
                  {{"account_id", account_id}, {"state", "connecting"}});
  auto started = (*plugin)->connect(account_id, {{"values", values}});
  if (!started && started.failure().code == "invalid_argument") {
    // The form's values, refused before anything was tried: the answer says why, and the
    // account stays as it was (a connected one stays connected).
    (void)set_wanted(account_id, account->wanted_connected);
    (void)save_state(account_id, account->state, account->account_name, account->detail,
                     account->reason_code);
    events_.publish(account->attendant_id, "account.status",
                    {{"account_id", account_id},
                     {"state", account->state},
                     {"account", account->account_name},
                     {"detail", account->detail},
                     {"reason_code", account->reason_code}});
    return started;
  }
  if (!started) {
    // The plugin may already have reported the error with a status event; make sure the
    // account shows it either way.
    auto now = get(account_id);
    if (now && now->state != "error" && now->state != "reauth_needed") {
      Json event = {{"type", "status"}, {"state", "error"}, {"detail", started.failure().message}};
      on_status(*now, event);
    }
  }
  return started;
}

Outcome AccountService::disconnect(const std::string &account_id) {
  auto account = get(account_id);
  if (!account) return account.failure();
  std::lock_guard verbs(verb_lock(account_id));
  if (auto wanted = set_wanted(account_id, false); !wanted) return wanted;
  {
    std::lock_guard lock(mutex_);
    paused_.erase(account_id);
  }
  auto plugin = plugin_of(*account);
  if (plugin) {
    if (auto done = (*plugin)->disconnect(account_id, true); !done) return done;
  }
  // Whatever the plugin reported, the attendant asked for "disconnected".
  auto now = get(account_id);
  if (now && now->state != "disconnected") {
    on_status(*now, {{"type", "status"}, {"state", "disconnected"}, {"detail", ""}});
  }
  return Ok{};
}

Outcome AccountService::refresh_qr(const std::string &account_id) {
  auto account = get(account_id);
  if (!account) return account.failure();
  auto plugin = plugin_of(*account);
  if (!plugin) return plugin.failure();
  std::lock_guard verbs(verb_lock(account_id));
  (void)set_wanted(account_id, true);
  return (*plugin)->refresh_qr(account_id);
}

std::optional<QrCode> AccountService::qr(const std::string &account_id) {
  std::lock_guard lock(mutex_);
  auto it = qr_codes_.find(account_id);
  if (it == qr_codes_.end() || it->second.expires_at <= now_ms()) return std::nullopt;
  return it->second;
}

// Whether messages name this attachment and none of them is one of `attendant_id`'s.
bool AccountService::held_by_another(const std::string &attendant_id,
                                     const std::string &attachment_id) {
  bool named = false;
  bool theirs = false;
  auto read = db_.run(
      "SELECT EXISTS (SELECT 1 FROM message_attachments WHERE attachment_id = ?1), "
      "EXISTS (SELECT 1 FROM message_attachments ma JOIN messages m ON m.id = ma.message_id "
      "JOIN accounts a ON a.id = m.account_id WHERE ma.attachment_id = ?1 AND "
      "a.attendant_id = ?2)",
      {attachment_id, attendant_id}, [&](const Row &row) {
        named = row.integer(0) != 0;
        theirs = row.integer(1) != 0;
      });
  return !read || (named && !theirs);
}

Expected<Json> AccountService::send(const std::string &account_id, const Json &message,
                                    std::optional<int64_t> case_id, const std::string &sent_by) {
  auto account = get(account_id);
  if (!account) return account.failure();
  auto plugin = plugin_of(*account);
  if (!plugin) return plugin.failure();

  // Everything that could make storing the sent message fail is checked before the channel
  // sends it: a message sent but not stored would be sent twice by a client that retries.
  {
    std::lock_guard lock(mutex_);
    if (!paused_.empty()) {
      return failure("storage_full",
                     "the host's disk is full, so the message could not be stored: it was not "
                     "sent; try again once space is freed");
    }
  }
  for (const auto &a : message.value("attachments", Json::array())) {
    // One that another attendant's messages hold is not this account's to send: answered as an
    // unknown one, so the answer does not tell whether the content is stored.
    const auto whole = a.is_object() && a.contains("id") && a["id"].is_string()
                           ? (held_by_another(account->attendant_id, a["id"].get<std::string>())
                                  ? Outcome(failure("not_found", ""))
                                  : attachments_.check(a["id"].get<std::string>()))
                           : Outcome(failure("not_found", ""));
    if (!whole && whole.failure().code != "not_found") return whole.failure();
    if (!whole) {
      return failure("invalid_request",
                     "every attachment must be {\"id\": <the id of a stored attachment>, "
                     "\"name\": ..., \"mime\": ...}");
    }
    for (const char *member : {"name", "mime"}) {
      if (a.contains(member) && !a[member].is_string()) {
        return failure("invalid_request", std::string("an attachment's \"") + member +
                                              "\" must be a string");
      }
    }
  }

  // A client's retry: the lookup, the send and the store happen under the account's verb lock,
  // so two tries with the same key cannot both send.
  const std::string client_id = message.value("client_id", "");
  std::unique_lock verbs(verb_lock(account_id));
  if (!client_id.empty()) {
    auto earlier = conversations_.by_client_id(account_id, client_id);
    if (!earlier) return earlier.failure();
    if (*earlier) return resend(*account, **earlier, message, **plugin);
  }
  Expected<Json> sent = (*plugin)->send(account_id, message);
  // Without a key nothing below depends on the lock; with one, it is held until the message is
  // stored under that key.
  if (client_id.empty()) verbs.unlock();
  if (!sent) return sent.failure();
  const std::string external_id = string_member(*sent, "external_id", kMaxExternalId);
  if (external_id.empty()) {
    return failure("internal", "the plugin sent the message but reported no id for it");
  }

  store::NewMessage stored;
  stored.account_id = account_id;
  stored.channel = account->plugin_id;
  stored.direction = "outbound";
  stored.external_id = external_id;
  stored.sender = account->account_name;
  stored.recipient = sent->value("to", message.value("to", ""));
  // The channel may have changed the subject on its way out (the e-mail plugins add the case
  // id); the copy kept is what the recipient got.
  const auto sent_subject = sent->find("subject");
  stored.subject = sent_subject != sent->end() && sent_subject->is_string()
                       ? sent_subject->get<std::string>()
                       : message.value("subject", "");
  stored.text = message.value("text", "");
  stored.html = message.value("html", "");
  stored.sent_at = now_ms();
  stored.delivery_status = sent->value("status", "sent");
  stored.client_id = client_id;
  for (const auto &a : message.value("attachments", Json::array())) {
    stored.attachments.push_back({a.value("id", ""), a.value("name", ""), a.value("mime", ""), ""});
  }
  // The attachments it names are in the store for good before it is (the channel has sent it
  // meanwhile: a failure here is logged, and the message is stored all the same).
  if (auto synced = attachments_.sync_pending(); !synced) {
    log::error({account->plugin_id, account_id},
               "attachments of a sent message could not be written: " + synced.failure().message);
  }
  // Stored and filed in one transaction, as a message a plugin reports is: on case_id when
  // given, else on the recipient's case.
  Expected<store::Conversations::Stored> inserted = Failure{};
  if (filer_) {
    inserted = filer_(*account, stored, case_id, sent_by);
    if (!inserted && case_id) {
      // The channel has sent it: kept even when its case cannot take it (gone meanwhile).
      log::warn({account->plugin_id, account_id},
                "a sent message could not be filed on case " + std::to_string(*case_id) + ": " +
                    inserted.failure().message + "; stored without it");
      inserted = filer_(*account, stored, std::nullopt, sent_by);
    }
  } else {
    auto done = db_.transaction([&]() -> Outcome {
      inserted = conversations_.insert_in_transaction(stored);
      if (!inserted) return inserted.failure();
      if (!case_id || !inserted->inserted) return Ok{};
      return db_.run(
          "INSERT INTO message_links (message_id, case_id, method, linked_by, linked_at) "
          "VALUES (?, ?, 'manual', ?, ?)",
          {inserted->id, *case_id, sent_by, now_ms()});
    });
    if (!done) return done.failure();
  }
  if (!inserted) return inserted.failure();
  auto shown = conversations_.message(inserted->id);
  if (!shown) return shown.failure();
  events_.publish(account->attendant_id, "message.new", {{"message", *shown}});
  if (inserted->inserted && apply_early_delivery(*account, external_id, inserted->id)) {
    return conversations_.message(inserted->id);
  }
  return *shown;
}

Expected<Json> AccountService::resend(const Account &account, int64_t message_id,
                                      const Json &message, plugins::LoadedPlugin &plugin) {
  auto earlier = conversations_.message(message_id);
  if (!earlier) return earlier.failure();
  if ((*earlier)["delivery_status"] != "failed") return *earlier;
  Json again = message;
  again["external_id"] = (*earlier)["external_id"];
  auto sent = plugin.send(account.id, again);
  if (!sent) return sent.failure();
  const std::string external_id = (*earlier)["external_id"];
  if (string_member(*sent, "external_id", kMaxExternalId) != external_id) {
    // The channel could not send under the first id: the retry went out as a new message, which
    // the stored one now stands for.
    log::warn({account.plugin_id, account.id},
              "a retried send got a new id from the channel; the stored message keeps the first");
  }
  const std::string status = sent->value("status", "sent");
  if (auto updated = conversations_.set_delivery(account.id, external_id, status); !updated) {
    return updated.failure();
  }
  events_.publish(account.attendant_id, "message.delivery",
                  {{"account_id", account.id},
                   {"message_id", message_id},
                   {"external_id", external_id},
                   {"status", status},
                   {"detail", "sent again"}});
  return conversations_.message(message_id);
}

std::vector<Json> AccountService::log_entries(const std::string &account_id,
                                              const store::Page &page) {
  std::vector<Json> out;
  (void)db_.run(
      "SELECT id, at, kind, level, text FROM integration_log WHERE account_id = ? AND id < ? "
      "ORDER BY id DESC LIMIT ?",
      {account_id, page.before ? Value(*page.before) : Value(std::numeric_limits<int64_t>::max()),
       int64_t{page.limit}},
      [&](const Row &row) {
        out.push_back({{"id", row.integer(0)},
                       {"at", row.integer(1)},
                       {"kind", row.text(2)},
                       {"level", row.text(3)},
                       {"text", row.text(4)}});
      });
  return out;
}

void AccountService::resume_all() {
  std::vector<Account> wanted;
  (void)db_.run(std::string(kAccountColumns) + "WHERE wanted_connected = 1", {},
                [&](const Row &row) { wanted.push_back(account_from(row)); });
  for (const auto &account : wanted) {
    auto plugin = plugin_of(account);
    if (!plugin) {
      on_status(account, {{"type", "status"}, {"state", "error"},
                          {"detail", plugin.failure().message}});
      continue;
    }
    std::lock_guard verbs(verb_lock(account.id));
    log::info({account.plugin_id, account.id}, "resuming");
    if (auto resumed = (*plugin)->connect(account.id, {{"resume", true}}); !resumed) {
      auto now = get(account.id);
      if (now && now->state != "error" && now->state != "reauth_needed") {
        on_status(*now, {{"type", "status"}, {"state", "error"},
                         {"detail", resumed.failure().message}});
      }
    }
  }
}

void AccountService::record(const Account &account, const std::string &kind,
                            const std::string &level, const std::string &text) {
  std::string masked = log::mask(text);
  if (masked.size() > kMaxLogText) masked.resize(kMaxLogText);
  const int64_t at = now_ms();
  int64_t entry_id = 0;
  auto inserted = db_.run(
      "INSERT INTO integration_log (account_id, at, kind, level, text) VALUES (?, ?, ?, ?, ?) "
      "RETURNING id",
      {account.id, at, kind, level, masked}, [&](const Row &row) { entry_id = row.integer(0); });
  if (!inserted) {
    log::error({account.plugin_id, account.id},
               "cannot write the integration log: " + inserted.failure().message);
    return;
  }
  events_.publish(account.attendant_id, "account.log",
                  {{"account_id", account.id},
                   {"entry",
                    {{"id", entry_id},
                     {"at", at},
                     {"kind", kind},
                     {"level", level},
                     {"text", masked}}}});
}

// --- The plugin side -------------------------------------------------------------------------

void AccountService::log(std::string_view plugin, std::string_view account, cn_log_level level,
                         std::string_view text) {
  PluginServices::log(plugin, account, level, text);
}

cn_result AccountService::emit(std::string_view plugin, std::string_view account_id,
                               std::string_view event_json) {
  auto account = owned_by(plugin, account_id);
  if (!account) {
    log::warn({plugin, account_id}, "event for an account this plugin does not own was ignored");
    return CN_ERR_NOT_FOUND;
  }
  const Json event = Json::parse(event_json, nullptr, false);
  if (!event.is_object() || !event.contains("type") || !event["type"].is_string()) {
    log::warn({plugin, account_id}, "malformed event ignored: not a JSON object with a type");
    return CN_ERR_INVALID_ARGUMENT;
  }
  const std::string type = event["type"];
  if (paused(account->id)) {
    // Paused by a full disk: the account's status stays what the host said, and no message is
    // taken, so the plugin acknowledges none of them to its channel.
    if (type == "status") return CN_OK;
    if (type == "message" || type == "messages") return CN_ERR_STORAGE;
  }
  if (type == "status") return on_status(*account, event);
  if (type == "qr") return on_qr(*account, event);
  if (type == "message") return on_message(*account, event);
  if (type == "messages") return on_messages(*account, event);
  if (type == "delivery") return on_delivery(*account, event);
  if (type == "qr_expired") {
    {
      std::lock_guard lock(mutex_);
      qr_codes_.erase(account->id);
    }
    record(*account, "qr_expired", "warn", "QR code expired");
    events_.publish(account->attendant_id, "account.qr_expired", {{"account_id", account->id}});
    return CN_OK;
  }
  if (type == "pairing_code" || type == "progress") {
    Json fields = event;
    fields.erase("type");
    fields["account_id"] = account->id;
    events_.publish(account->attendant_id, "account." + type, std::move(fields));
    return CN_OK;
  }
  if (type == "log") {
    const std::string level = string_member(event, "level");
    record(*account, "plugin", level == "error" || level == "warn" ? level : "info",
           string_member(event, "text", kMaxLogText));
    return CN_OK;
  }
  log::warn({plugin, account_id}, "unknown event type \"" + type + "\" ignored");
  return CN_ERR_INVALID_ARGUMENT;
}

cn_result AccountService::on_status(const Account &account, const Json &event) {
  const std::string state = string_member(event, "state");
  if (kStates.count(state) == 0) {
    log::warn({account.plugin_id, account.id}, "status event with unknown state ignored");
    return CN_ERR_INVALID_ARGUMENT;
  }
  const std::string name =
      event.contains("account") ? string_member(event, "account", 320) : account.account_name;
  const std::string detail = log::mask(string_member(event, "detail", kMaxLogText));
  // A reason code is a plain token (docs/sdk.md); anything else is dropped, the detail stays.
  std::string reason = string_member(event, "reason_code", 64);
  if (reason.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos) {
    reason.clear();
  }
  if (auto saved = save_state(account.id, state, name, detail, reason); !saved) {
    return CN_ERR_STORAGE;
  }
  // A session the channel logged out or the plugin gave up on purpose is not resumed at the
  // next start: the attendant connects it again.
  const bool final = event.contains("final") && event["final"].is_boolean() &&
                     event["final"].get<bool>();
  if (state == "reauth_needed" || final) (void)set_wanted(account.id, false);
  {
    std::lock_guard lock(mutex_);
    if (state != "awaiting_qr") qr_codes_.erase(account.id);
  }

  // The integration log keeps connections, disconnections and errors, not every step between.
  if (state != account.state || detail != account.detail) {
    if (state == "connected") {
      record(account, "connected", "info", "Connected as " + name);
    } else if (state == "disconnected" &&
               (account.state == "connected" || account.state == "connecting")) {
      // A QR that expired before anyone scanned it is logged as such (qr_expired), not as a
      // disconnection.
      record(account, "disconnected", "info", detail.empty() ? "Disconnected" : detail);
    } else if (state == "error" || state == "reauth_needed") {
      record(account, state, "error", detail.empty() ? "Connection failed" : detail);
    }
    log::info({account.plugin_id, account.id},
              "state " + state + (detail.empty() ? "" : ": " + detail));
  }
  events_.publish(account.attendant_id, "account.status",
                  {{"account_id", account.id},
                   {"state", state},
                   {"account", name},
                   {"detail", detail},
                   {"reason_code", reason}});
  return CN_OK;
}

cn_result AccountService::on_qr(const Account &account, const Json &event) {
  QrCode code{string_member(event, "payload", 4096), 0};
  if (code.payload.empty() || !event.contains("expires_at") ||
      !event["expires_at"].is_number_integer()) {
    log::warn({account.plugin_id, account.id}, "QR event without payload or expiry ignored");
    return CN_ERR_INVALID_ARGUMENT;
  }
  code.expires_at = event["expires_at"].get<int64_t>();
  {
    std::lock_guard lock(mutex_);
    qr_codes_[account.id] = code;
  }
  // The payload itself is not pushed: clients fetch the image through the API, so the
  // pairing secret only travels to callers allowed to see it.
  events_.publish(account.attendant_id, "account.qr",
                  {{"account_id", account.id}, {"expires_at", code.expires_at}});
  return CN_OK;
}

cn_result AccountService::on_message(const Account &account, const Json &event) {
  auto m = read_message(account, event);
  if (!m) return CN_ERR_INVALID_ARGUMENT;
  std::vector<store::NewMessage> one;
  one.push_back(std::move(*m));
  return store_messages(account, std::move(one), {event.value("quiet", false) == true});
}

cn_result AccountService::on_messages(const Account &account, const Json &event) {
  const auto list = event.find("messages");
  if (list == event.end() || !list->is_array() || list->empty() ||
      list->size() > kMaxMessagesPerEvent) {
    log::warn({account.plugin_id, account.id},
              "messages event refused: \"messages\" must be a list of 1 to " +
                  std::to_string(kMaxMessagesPerEvent) + " message events");
    return CN_ERR_INVALID_ARGUMENT;
  }
  std::vector<store::NewMessage> batch;
  std::vector<bool> quiet;
  size_t refused = 0;
  for (const auto &entry : *list) {
    auto m = entry.is_object() ? read_message(account, entry) : std::nullopt;
    if (!m) {
      ++refused;
      continue;
    }
    batch.push_back(std::move(*m));
    quiet.push_back(entry.value("quiet", false) == true);
  }
  // The rest are stored: one message the host cannot read must not hold back the others.
  if (refused > 0) {
    record(account, "message_refused", "warn",
           std::to_string(refused) + " of " + std::to_string(list->size()) +
               " messages the channel handed over could not be read and were skipped (the "
               "host log says why)");
  }
  if (batch.empty()) return CN_OK;
  return store_messages(account, std::move(batch), quiet);
}

std::optional<store::NewMessage> AccountService::read_message(const Account &account,
                                                              const Json &event) {
  store::NewMessage m;
  m.account_id = account.id;
  m.channel = account.plugin_id;
  m.direction = event.value("direction", "inbound");
  m.external_id = string_member(event, "external_id");
  if (m.external_id.empty() || m.external_id.size() > kMaxExternalId ||
      (m.direction != "inbound" && m.direction != "outbound")) {
    log::warn({account.plugin_id, account.id},
              "message event refused: it needs an external_id (at most 512 bytes) and a "
              "direction of inbound or outbound");
    return std::nullopt;
  }
  m.sender = string_member(event, "from", 1024);
  m.recipient = string_member(event, "to", 1024);
  m.subject = string_member(event, "subject", 4096);
  m.text = string_member(event, "text");
  m.html = string_member(event, "html");
  if (event.contains("timestamp") && event["timestamp"].is_number_integer()) {
    m.sent_at = event["timestamp"].get<int64_t>();
  }
  m.automatic = event.value("automatic", false);
  if (event.contains("link") && event["link"].is_object()) {
    m.link_keys = event["link"];
  } else if (auto *plugin = plugins_ != nullptr ? plugins_->find(account.plugin_id) : nullptr) {
    // No keys in the event: the plugin's link verb derives them from the message.
    if (auto keys = plugin->link(event)) m.link_keys = *keys;
  }
  if (event.contains("details") && event["details"].is_object()) m.details = event["details"];
  for (const auto &a : event.value("attachments", Json::array())) {
    if (!a.is_object() || !store::AttachmentStore::valid_id(string_member(a, "id")) ||
        !attachments_.has(string_member(a, "id"))) {
      log::warn({account.plugin_id, account.id},
                "message event refused: it names an attachment that was not stored first");
      return std::nullopt;
    }
    m.attachments.push_back({string_member(a, "id"), string_member(a, "name", 255),
                             string_member(a, "mime", 255), string_member(a, "content_id", 255)});
  }

  return m;
}

cn_result AccountService::store_messages(const Account &account,
                                         std::vector<store::NewMessage> batch,
                                         const std::vector<bool> &quiet) {
  auto named_attachments = [&] {
    std::vector<std::string> named;
    for (const auto &m : batch) {
      for (const auto &a : m.attachments) named.push_back(a.id);
    }
    return named;
  };
  // What the plugin stored for these messages (attachments, an e-mail's raw copy) reaches the
  // disk before the messages that name it.
  {
    if (auto synced = attachments_.sync_pending(); !synced) {
      log::error({account.plugin_id, account.id},
                 "message could not be stored: " + synced.failure().message);
      if (synced.failure().code == "storage_full") {
        pause_for_full_disk(account, "a message could not be stored", named_attachments());
      }
      return CN_ERR_STORAGE;
    }
  }

  // Outbound messages the plugin reports itself go to the case engine too (it files them by
  // their recipient and never opens or reopens a case for them).
  Expected<std::vector<store::Conversations::Stored>> stored = std::vector<store::Conversations::Stored>{};
  if (batch.size() > 1 && batch_filer_) {
    stored = batch_filer_(account, batch);
  } else {
    // One at a time, each in its own transaction: a failure leaves the ones before it stored,
    // and the channel hands the batch over again (the stored ones are recognised then).
    for (const auto &m : batch) {
      auto one = filer_ ? filer_(account, m, std::nullopt, "") : conversations_.insert(m);
      if (!one) {
        stored = one.failure();
        break;
      }
      stored->push_back(*one);
    }
  }
  if (!stored) {
    log::error({account.plugin_id, account.id},
               "message could not be stored: " + stored.failure().message);
    if (stored.failure().code == "storage_full") {
      pause_for_full_disk(account, "a message could not be stored", named_attachments());
    }
    return CN_ERR_STORAGE;
  }
  forget_filed(account, batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto &done = (*stored)[i];
    if (!done.inserted) continue;  // already stored: a replay, nothing to do
    // Part of a backlog import: the plugin reports the whole import with one progress event
    // instead of one push per old message.
    if (i < quiet.size() && quiet[i]) continue;
    // Built from what was just written, as GET /messages/{id} shows it, without reading it back.
    events_.publish(account.attendant_id, "message.new",
                    {{"message", store::Conversations::shown(batch[i], done)}});
  }
  // Outbound copies the channel reports itself (sent from the attendant's phone) may have had
  // their delivery updates first.
  for (size_t i = 0; i < batch.size(); ++i) {
    if ((*stored)[i].inserted && batch[i].direction == "outbound") {
      apply_early_delivery(account, batch[i].external_id, (*stored)[i].id);
    }
  }
  return CN_OK;
}

// The attachments these stored messages name (as attachments, or in their details: an e-mail's
// raw copy) are filed now; those stored ahead for the next messages stay listed until theirs
// are.
void AccountService::forget_filed(const Account &account,
                                  const std::vector<store::NewMessage> &batch) {
  std::lock_guard lock(mutex_);
  auto it = unfiled_attachments_.find(account.id);
  if (it == unfiled_attachments_.end()) return;
  std::set<std::string, std::less<>> named;
  for (const auto &m : batch) {
    for (const auto &a : m.attachments) named.insert(a.id);
    // Ids are 64 lowercase hex digits: every such run in the details is a candidate.
    const std::string details = m.details.dump();
    size_t at = 0;
    while (at < details.size()) {
      const size_t begin = details.find_first_of("0123456789abcdef", at);
      if (begin == std::string::npos) break;
      const size_t stop = details.find_first_not_of("0123456789abcdef", begin);
      const size_t end = stop == std::string::npos ? details.size() : stop;
      if (end - begin == 64) named.insert(details.substr(begin, 64));
      at = end;
    }
  }
  auto &ids = it->second;
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](const std::string &id) { return named.count(id) > 0; }),
            ids.end());
  if (ids.empty()) unfiled_attachments_.erase(it);
}

cn_result AccountService::on_delivery(const Account &account, const Json &event) {
  const std::string external_id = string_member(event, "external_id", kMaxExternalId);
  const std::string status = string_member(event, "status", 32);
  static const std::set<std::string> kDelivery = {"sent", "delivered", "read", "played",
                                                  "failed"};
  if (external_id.empty() || kDelivery.count(status) == 0) {
    log::warn({account.plugin_id, account.id}, "delivery event refused: bad id or status");
    return CN_ERR_INVALID_ARGUMENT;
  }
  // Updates of an account are recorded and pushed one at a time, in the order they came, also
  // against those that waited for their message (apply_early_delivery).
  std::lock_guard lock(delivery_mutex_);
  auto id = conversations_.set_delivery(account.id, external_id, status);
  if (!id && id.failure().code == "not_found") {
    // The update overtook the message it is about: kept until that message is stored.
    constexpr size_t kEarlyDeliveryLimit = 4096;
    const auto key = std::make_pair(account.id, external_id);
    if (early_deliveries_.insert_or_assign(key, event).second) early_order_.push_back(key);
    while (early_order_.size() > kEarlyDeliveryLimit) {
      early_deliveries_.erase(early_order_.front());
      early_order_.pop_front();
    }
    log::debug({account.plugin_id, account.id},
               "delivery update for a message not stored yet; kept until it is");
    return CN_OK;
  }
  if (!id) {
    log::error({account.plugin_id, account.id},
               "a delivery update could not be recorded: " + id.failure().message);
    return CN_ERR_STORAGE;
  }
  events_.publish(account.attendant_id, "message.delivery",
                  {{"account_id", account.id},
                   {"message_id", *id},
                   {"external_id", external_id},
                   {"status", status},
                   {"detail", log::mask(string_member(event, "detail", kMaxLogText))}});
  return CN_OK;
}

bool AccountService::apply_early_delivery(const Account &account, const std::string &external_id,
                                          int64_t message_id) {
  std::lock_guard lock(delivery_mutex_);
  auto found = early_deliveries_.find({account.id, external_id});
  if (found == early_deliveries_.end()) return false;
  const Json event = std::move(found->second);
  early_deliveries_.erase(found);
  early_order_.erase(std::find(early_order_.begin(), early_order_.end(),
                               std::make_pair(account.id, external_id)));
  const std::string status = event.value("status", "");
  if (auto updated = conversations_.set_delivery(account.id, external_id, status); !updated) {
    log::error({account.plugin_id, account.id},
               "a delivery update could not be recorded: " + updated.failure().message);
    return false;
  }
  events_.publish(account.attendant_id, "message.delivery",
                  {{"account_id", account.id},
                   {"message_id", message_id},
                   {"external_id", external_id},
                   {"status", status},
                   {"detail", log::mask(string_member(event, "detail", kMaxLogText))}});
  return true;
}

cn_result AccountService::store_put(std::string_view plugin, std::string_view account,
                                    std::string_view key, std::string_view value, bool secret) {
  if (!owned_by(plugin, account)) return CN_ERR_NOT_FOUND;
  if (key.empty() || key.size() > 256) return CN_ERR_INVALID_ARGUMENT;
  auto done = values_.put(std::string(account), std::string(key), value, secret);
  if (!done) {
    log::error({plugin, account}, "cannot store a value: " + done.failure().message);
    return CN_ERR_STORAGE;
  }
  return CN_OK;
}

cn_result AccountService::store_get(std::string_view plugin, std::string_view account,
                                    std::string_view key, std::string &value) {
  if (!owned_by(plugin, account)) return CN_ERR_NOT_FOUND;
  auto read = values_.get(std::string(account), std::string(key));
  if (!read) {
    log::error({plugin, account}, "cannot read a stored value: " + read.failure().message);
    return CN_ERR_STORAGE;
  }
  if (!*read) return CN_ERR_NOT_FOUND;
  value = std::move(**read);
  return CN_OK;
}

cn_result AccountService::store_delete(std::string_view plugin, std::string_view account,
                                       std::string_view key) {
  if (!owned_by(plugin, account)) return CN_ERR_NOT_FOUND;
  return values_.erase(std::string(account), std::string(key)) ? CN_OK : CN_ERR_STORAGE;
}

cn_result AccountService::attachment_put(std::string_view plugin, std::string_view account,
                                         std::string_view data, std::string &id) {
  auto owner = owned_by(plugin, account);
  if (!owner) return CN_ERR_NOT_FOUND;
  if (paused(owner->id)) return CN_ERR_STORAGE;
  auto stored = attachments_.put(data);
  if (!stored) {
    log::error({plugin, account}, "cannot store an attachment: " + stored.failure().message);
    if (stored.failure().code == "storage_full") {
      pause_for_full_disk(*owner, "an attachment could not be stored", {});
    }
    return CN_ERR_STORAGE;
  }
  id = *stored;
  {
    std::lock_guard lock(mutex_);
    auto &unfiled = unfiled_attachments_[owner->id];
    if (unfiled.size() >= kMaxUnfiledAttachments) unfiled.erase(unfiled.begin());
    unfiled.push_back(id);
  }
  return CN_OK;
}

cn_result AccountService::attachment_path(std::string_view plugin, std::string_view attachment_id,
                                          std::string &path) {
  auto file = attachments_.path(attachment_id);
  if (!file) return CN_ERR_NOT_FOUND;
  path = file->string();
  return CN_OK;
}

// --- A full disk -------------------------------------------------------------------------------

void AccountService::watch_space(store::SpaceReserve &reserve, std::chrono::milliseconds interval) {
  stop_watching_space();
  {
    std::lock_guard lock(mutex_);
    reserve_ = &reserve;
    space_stopping_ = false;
  }
  space_watch_ = std::thread([this, interval] { watch_space_loop(interval); });
}

void AccountService::stop_watching_space() {
  {
    std::lock_guard lock(mutex_);
    space_stopping_ = true;
  }
  space_wake_.notify_all();
  if (space_watch_.joinable()) space_watch_.join();
  std::lock_guard lock(mutex_);
  reserve_ = nullptr;
}

bool AccountService::paused(const std::string &account_id) {
  std::lock_guard lock(mutex_);
  return paused_.count(account_id) > 0;
}

void AccountService::pause_for_full_disk(const Account &account, const std::string &why,
                                         const std::vector<std::string> &attachments) {
  std::vector<std::string> unfiled = attachments;
  store::SpaceReserve *reserve = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (reserve_ == nullptr || space_stopping_) return;  // no watch: nothing would resume it
    if (!paused_.insert(account.id).second) return;
    reserve = reserve_;
    // Full again right after resuming: what did not fit needs more room than the margin (a mail
    // larger than what is free). Each time, resuming waits for twice as much more room, instead
    // of fetching it, failing and resuming over and over.
    const auto now = std::chrono::steady_clock::now();
    if (last_resume_ && now - *last_resume_ < kResumeHeld) {
      // Once per resume, however many accounts it resumed pause again.
      last_resume_.reset();
      extra_room_ = std::min<uint64_t>(extra_room_ == 0 ? kFirstExtraRoom : 2 * extra_room_,
                                       kMostExtraRoom);
      log::warn({account.plugin_id, account.id},
                "the disk filled up again right after resuming: resuming now waits for " +
                    std::to_string(extra_room_ >> 20) + " MiB more free space");
    } else if (last_resume_) {
      extra_room_ = 0;  // the last resume held
    }
    to_disconnect_.push_back(account.id);
    auto it = unfiled_attachments_.find(account.id);
    if (it != unfiled_attachments_.end()) {
      unfiled.insert(unfiled.end(), it->second.begin(), it->second.end());
      unfiled_attachments_.erase(it);
    }
  }
  // The reserve's room is what the lines below write with.
  reserve->release();
  // Attachments whose message was not stored are not kept: the channel hands them over again.
  for (const auto &id : unfiled) attachments_.forget_unreferenced(id);
  log::error({account.plugin_id, account.id},
             "the disk is full (" + why + "): the account pauses until there is room again");
  on_status(account, {{"type", "status"},
                      {"state", "error"},
                      {"detail", "The disk of the host's data folder is full: " + why +
                                     ". New messages wait at the channel and arrive once space "
                                     "is freed; the account resumes by itself."},
                      {"reason_code", "storage_full"}});
  space_wake_.notify_all();
}

void AccountService::watch_space_loop(std::chrono::milliseconds interval) {
  std::unique_lock lock(mutex_);
  while (!space_stopping_) {
    space_wake_.wait_for(lock, interval,
                         [&] { return space_stopping_ || !to_disconnect_.empty(); });
    if (space_stopping_) break;
    std::vector<std::string> pending;
    pending.swap(to_disconnect_);
    const bool any_paused = !paused_.empty();
    const uint64_t extra_room = extra_room_;
    store::SpaceReserve *reserve = reserve_;
    lock.unlock();
    for (const auto &id : pending) stop_paused(id);
    if (any_paused && reserve->room_to_resume(extra_room) && reserve->hold()) resume_paused();
    lock.lock();
  }
}

void AccountService::stop_paused(const std::string &account_id) {
  auto account = get(account_id);
  if (!account) {
    std::lock_guard lock(mutex_);
    paused_.erase(account_id);
    return;
  }
  auto plugin = plugin_of(*account);
  if (!plugin) return;
  std::lock_guard verbs(verb_lock(account_id));
  if (!paused(account_id)) return;  // connected again by the attendant meanwhile
  if (auto done = (*plugin)->disconnect(account_id, false); !done) {
    log::warn({account->plugin_id, account_id},
              "pausing for a full disk: disconnect failed: " + done.failure().message);
  }
}

void AccountService::resume_paused() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mutex_);
    ids.assign(paused_.begin(), paused_.end());
    last_resume_ = std::chrono::steady_clock::now();
  }
  for (const auto &id : ids) {
    std::lock_guard verbs(verb_lock(id));
    {
      std::lock_guard lock(mutex_);
      if (paused_.erase(id) == 0) continue;  // the attendant connected or disconnected it
    }
    auto account = get(id);
    if (!account) continue;
    log::info({account->plugin_id, id}, "there is room on the disk again: resuming");
    record(*account, "storage", "info",
           "There is room on the disk again: the account resumes and fetches what could not be "
           "stored");
    auto plugin = plugin_of(*account);
    if (!plugin) {
      on_status(*account, {{"type", "status"}, {"state", "error"},
                           {"detail", plugin.failure().message}});
      continue;
    }
    on_status(*account, {{"type", "status"}, {"state", "connecting"}, {"detail", ""}});
    if (auto resumed = (*plugin)->connect(id, {{"resume", true}}); !resumed) {
      auto now = get(id);
      if (now && now->state != "error" && now->state != "reauth_needed") {
        on_status(*now, {{"type", "status"}, {"state", "error"},
                         {"detail", resumed.failure().message}});
      }
    }
  }
}

// --- Internals ---------------------------------------------------------------------------------

std::optional<Account> AccountService::owned_by(std::string_view plugin,
                                                std::string_view account_id) {
  auto account = get(std::string(account_id));
  if (!account || account->plugin_id != plugin) return std::nullopt;
  return *account;
}

Expected<plugins::LoadedPlugin *> AccountService::plugin_of(const Account &account) {
  plugins::LoadedPlugin *plugin = plugins_ != nullptr ? plugins_->find(account.plugin_id) : nullptr;
  if (plugin != nullptr) return plugin;
  auto refusal = plugins_ != nullptr ? plugins_->refusal(account.plugin_id) : std::nullopt;
  return failure("plugin_unavailable", "the " + account.plugin_id + " plugin is not loaded" +
                                           (refusal ? ": " + *refusal : ""));
}

std::mutex &AccountService::verb_lock(const std::string &account_id) {
  std::lock_guard lock(mutex_);
  auto &slot = verb_locks_[account_id];
  if (!slot) slot = std::make_unique<std::mutex>();
  return *slot;
}

Outcome AccountService::save_state(const std::string &account_id, const std::string &state,
                                   const std::string &account_name, const std::string &detail,
                                   const std::string &reason_code) {
  return db_.run(
      "UPDATE accounts SET state = ?, account_name = ?, detail = ?, reason_code = ?, "
      "updated_at = ? WHERE id = ?",
      {state, account_name, detail, reason_code, now_ms(), account_id});
}

Outcome AccountService::set_wanted(const std::string &account_id, bool connected) {
  return db_.run("UPDATE accounts SET wanted_connected = ?, updated_at = ? WHERE id = ?",
                 {int64_t{connected ? 1 : 0}, now_ms(), account_id});
}

}  // namespace connector::accounts

// --- OAuth sign-in -------------------------------------------------------------------------------

namespace connector::accounts {

Expected<Json> AccountService::oauth_start(const std::string &account_id, const Json &values,
                                           const std::string &redirect_uri) {
  auto account = get(account_id);
  if (!account) return account.failure();
  auto plugin = plugin_of(*account);
  if (!plugin) return plugin.failure();
  if (auto checked = check_connect_values((*plugin)->descriptor(), values); !checked) {
    return checked.failure();
  }
  mask_secret_values((*plugin)->descriptor(), values);
  const std::string state = oauth_attempts_.open(account_id);
  std::lock_guard verbs(verb_lock(account_id));
  auto started = (*plugin)->oauth_start(
      account_id, {{"values", values}, {"redirect_uri", redirect_uri}, {"state", state}});
  if (!started) return started.failure();
  const std::string url = string_member(*started, "authorization_url", 16384);
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    return failure("internal", "plugin " + account->plugin_id + " gave no authorization URL");
  }
  log::info({account->plugin_id, account_id}, "OAuth sign-in started");
  return Json{{"authorization_url", url}, {"state", state}};
}

Expected<Account> AccountService::oauth_finish(const OAuthReturn &answer) {
  const OAuthAttempts::Taken taken = oauth_attempts_.take(answer.state);
  if (taken.verdict == OAuthAttempts::Verdict::kUnknown) {
    log::warn({"oauth"}, "OAuth callback with an unknown state refused");
    return failure("invalid_oauth_state",
                   "this sign-in answer does not belong to any sign-in the host started");
  }
  auto account = get(taken.account_id);
  if (!account) return failure("not_found", "the account of this sign-in no longer exists");

  // Ends the attempt: the account says why, in its status and its integration log. A mailbox
  // connected with an earlier sign-in stays connected; only its log tells of the failed one.
  const bool was_connected = account->state == "connected";
  auto end_attempt = [&](const std::string &code, const std::string &why) -> Expected<Account> {
    auto now = get(account->id);
    if (now && was_connected && now->state == "connected") {
      record(*now, "oauth", "warn",
             "A new sign-in failed; the account stays connected with its earlier sign-in: " + why);
    } else if (now) {
      on_status(*now, {{"type", "status"}, {"state", "error"}, {"detail", why}});
    }
    return failure(code, why);
  };
  if (taken.verdict == OAuthAttempts::Verdict::kUsed) {
    // Whoever replays a state does not get to change a connected account: log it, nothing more.
    record(*account, "oauth", "warn",
           "A sign-in answer arrived a second time and was refused (its state was already used)");
    return failure("invalid_oauth_state", "this sign-in answer was already used");
  }
  if (!answer.same_browser) {
    // Someone else's browser (a forwarded link, a planted answer) completes nothing: the
    // account keeps its state, the log tells of the attempt.
    record(*account, "oauth", "warn",
           "A sign-in answer arrived in a browser that did not start the sign-in and was refused");
    return failure("oauth_other_browser",
                   "This sign-in answer does not belong to a sign-in started in this browser: "
                   "start the sign-in again from the connection screen, in the browser you want "
                   "to use");
  }
  if (taken.verdict == OAuthAttempts::Verdict::kExpired) {
    return end_attempt("invalid_oauth_state",
                       "The sign-in took too long and expired: connect again");
  }
  if (!answer.error.empty()) {
    return end_attempt("auth", "The provider refused the sign-in: " + answer.error +
                                   (answer.error_description.empty()
                                        ? std::string()
                                        : " (" + answer.error_description + ")"));
  }
  if (answer.code.empty()) {
    return end_attempt("invalid_request", "The provider's answer carried no authorization code");
  }
  auto plugin = plugin_of(*account);
  if (!plugin) return end_attempt(plugin.failure().code, plugin.failure().message);

  std::lock_guard verbs(verb_lock(account->id));
  if (auto wanted = set_wanted(account->id, true); !wanted) return wanted.failure();
  if (!was_connected) {
    (void)save_state(account->id, "connecting", account->account_name, "");
    events_.publish(account->attendant_id, "account.status",
                    {{"account_id", account->id}, {"state", "connecting"}});
  }
  auto started = (*plugin)->connect(account->id, {{"oauth",
                                                   {{"state", answer.state},
                                                    {"code", answer.code},
                                                    {"redirect_uri", answer.redirect_uri}}}});
  if (!started) {
    auto now = get(account->id);
    if (now && was_connected && now->state == "connected") {
      record(*now, "oauth", "warn",
             "A new sign-in failed; the account stays connected with its earlier sign-in: " +
                 started.failure().message);
    } else if (now && now->state != "error" && now->state != "reauth_needed") {
      on_status(*now, {{"type", "status"}, {"state", "error"}, {"detail", started.failure().message}});
    }
    return started.failure();
  }
  return get(account->id);
}

}  // namespace connector::accounts
