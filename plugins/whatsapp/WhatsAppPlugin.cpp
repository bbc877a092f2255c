// The WhatsApp channel: WhatsApp Web's multi-device protocol through Baileys, run by one Node.js
// bridge process (bridge/) for all of the host's WhatsApp accounts.
//
// The plugin owns the bridge: it starts it, checks its protocol version, restarts it with backoff
// when it dies and then resumes every active session from its stored credentials (no new scan).
// The credentials (Baileys' creds and Signal keys) are one secret value per account, "wa.auth",
// replaced atomically on every change the bridge reports; the bridge waits for our confirmation
// before it reconnects or exits.
#include "WhatsAppPlugin.hpp"
#include "Base64.hpp"

#include <connector/sdk.hpp>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#ifndef CONNECTOR_WA_BRIDGE_DIR
#define CONNECTOR_WA_BRIDGE_DIR ""
#endif

namespace connector::whatsapp {
namespace {

using sdk::fail;
using sdk::Host;
using sdk::LinkKeys;
using sdk::Result;
using sdk::Status;
using namespace std::chrono_literals;

constexpr int kProtocolVersion = 1;
constexpr const char *kAuthKey = "wa.auth";
constexpr const char *kPhoneKey = "wa.phone";
constexpr auto kRequestTimeout = 60s;

struct Account {
  bool active = false;  // the bridge should be running this account's session
  std::string state = "disconnected";
  std::string name;
  std::string detail;
  std::string qr_payload;
  int64_t qr_expires_at = 0;
  std::string pairing_phone;
  bool history_loss_said = false;  // since the last connect, in the integration log
};

Json label(const char *en, const char *pt) { return {{"en", en}, {"pt-BR", pt}}; }

class WhatsAppPlugin final : public sdk::Plugin {
 public:
  explicit WhatsAppPlugin(Host host) : Plugin(host) {}

  ~WhatsAppPlugin() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (supervisor_.joinable()) supervisor_.join();
    std::unique_ptr<BridgeProcess> bridge;
    {
      std::lock_guard lock(mutex_);
      bridge = std::move(bridge_);
    }
    bridge.reset();  // closes its stdin: the bridge flushes every session and exits
  }

  Json descriptor() const override {
    return {
        {"id", "whatsapp"},
        {"name", label("WhatsApp", "WhatsApp")},
        {"version", "1.0.0"},
        {"capabilities", {"qr", "pairing_code", "send", "media", "receive"}},
        {"connect_fields",
         {{{"name", "phone"},
           {"type", "text"},
           {"label", label("Phone number, to pair with a code instead of the QR (optional)",
                           "Número de telefone, para parear com código em vez do QR (opcional)")},
           {"required", false},
           {"secret", false}}}},
        {"settings",
         {setting("node", "string", "node", "The Node.js program that runs the bridge."),
          setting("bridge_dir", "string", CONNECTOR_WA_BRIDGE_DIR,
                  "Folder of the bridge (bridge.mjs and its node_modules)."),
          setting("bridge_max_line_bytes", "integer",
                  static_cast<int64_t>(BridgeProcess::kDefaultMaxLine),
                  "Longest line accepted from the bridge (media travels as base64 in one line); "
                  "a longer one is dropped."),
          setting("ws_url", "string", "",
                  "WhatsApp's chat socket; empty means WhatsApp's own server."),
          setting("wa_version", "string", "",
                  "WhatsApp Web version to announce, as a.b.c; empty means the bridge's pinned one."),
          setting("qr_timeout_ms", "integer", 0,
                  "Lifetime of each QR code; 0 keeps the library's (60 s, then 20 s)."),
          setting("reconnect_max_ms", "integer", 60000, "Longest wait between reconnects."),
          setting("max_concurrent_connects", "integer", 4,
                  "How many sessions may open their connection at once (when many drop together, "
                  "the others wait their turn)."),
          setting("send_timeout_ms", "integer", 30000,
                  "A send without acknowledgement from WhatsApp after this long is failed."),
          setting("link_groups", "boolean", false,
                  "Link group messages to cases (by the sender's phone). Off: group messages are "
                  "stored and marked as group messages, but never linked."),
          setting("test_media_ca_file", "string", "",
                  "TESTS ONLY: PEM certificate the bridge trusts for a test server's media host "
                  "(on top of the system's). Never set it in production."),
          setting("test_root_key", "string", "",
                  "TESTS ONLY: base64 root key of a WhatsApp test server's certificate. Never set "
                  "it in production: it makes the bridge trust that server.")}}};
  }

  Status configure(const Json &settings) override {
    settings_ = settings;
    return start_bridge();
  }

  Status connect(const std::string &id, const Json &params) override {
    const bool resume = params.value("resume", false);
    std::optional<std::string> auth = host().get(id, kAuthKey);
    if (auth && !paired(id)) {
      // A pairing that never finished (a code asked for, a QR not scanned) is started afresh.
      host().erase(id, kAuthKey);
      auth.reset();
    }
    if (resume && !auth) {
      set_status(id, "reauth_needed", "", "no stored WhatsApp session: scan the QR code again",
                 "session_missing");
      return fail(CN_ERR_AUTH, "no stored WhatsApp session: scan the QR code again");
    }
    const Json values = params.value("values", Json::object());
    const Json phone_value =
        values.is_object() ? values.value("phone", Json("")) : Json(Json::value_t::discarded);
    if (!phone_value.is_string()) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "the phone number to pair with must be given as text, e.g. \"+55 11 "
                  "98888-7777\", or left empty to pair with the QR code");
    }
    std::string phone = phone_value.get<std::string>();
    if (phone.find_first_not_of(' ') != std::string::npos && !is_phone(phone)) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "the phone number to pair with must be the attendant's number with its country "
                  "code (8 to 15 digits), or empty to pair with the QR code");
    }
    {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      account.active = true;
      account.pairing_phone = digits(phone);
      if (auto shown = host().get(id, kPhoneKey)) account.name = *shown;
    }
    return start_session(id, auth);
  }

  Status refresh_qr(const std::string &id) override {
    {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      if (account.state == "connected") return fail(CN_ERR_STATE, "the account is connected");
    }
    // A paired session (even one reconnecting) is never thrown away for a new QR: the old
    // device would stay linked on the phone. Only an account without one pairs again.
    if (paired(id)) {
      return fail(CN_ERR_STATE,
                  "this account is paired with a phone: disconnect it first to pair again");
    }
    {
      std::lock_guard lock(mutex_);
      accounts_[id].active = true;
    }
    // A new pairing from scratch: whatever half-finished pairing state there was goes away.
    host().erase(id, kAuthKey);
    return start_session(id, std::nullopt);
  }

  // A phone number as written by people: digits with + ( ) - . and spaces between them.
  static bool is_phone(const std::string &text) {
    size_t count = 0;
    for (char c : text) {
      if (c >= '0' && c <= '9') {
        ++count;
      } else if (c != '+' && c != ' ' && c != '-' && c != '(' && c != ')' && c != '.') {
        return false;
      }
    }
    return count >= 8 && count <= 15;
  }

  // The recipient as the bridge takes it (a phone number or a WhatsApp id), or empty when `to`
  // is neither.
  static std::string recipient(const std::string &to) {
    const size_t at = to.find('@');
    if (at == std::string::npos) return is_phone(to) ? to : std::string();
    const std::string user = to.substr(0, at);
    std::string domain = to.substr(at + 1);
    if (domain == "c.us") domain = "s.whatsapp.net";
    const bool group = domain == "g.us";
    if (!group && domain != "s.whatsapp.net" && domain != "lid") return {};
    if (user.empty() || user.size() > 64) return {};
    for (char c : user) {
      if (!(c >= '0' && c <= '9') && !(group && c == '-')) return {};
    }
    if (user.front() == '-' || user.back() == '-') return {};
    return user + "@" + domain;
  }

  // Whether the stored session belongs to a device the phone has linked.
  bool paired(const std::string &id) {
    const auto auth = host().get(id, kAuthKey);
    if (!auth) return false;
    const Json state = Json::parse(*auth, nullptr, false);
    if (!state.is_object() || !state.contains("creds") || !state["creds"].is_object()) {
      return false;
    }
    // Asking for a pairing code already fills in `me` (with the number it was asked for); the
    // linked device's identity (`account`, from pair-success) or the phone's confirmation of
    // the code (`registered`) is what says the phone linked it.
    const Json &creds = state["creds"];
    const auto set = [&](const char *name) {
      return creds.contains(name) && !creds[name].is_null() && creds[name] != Json(false);
    };
    return set("me") && (set("account") || set("registered"));
  }

  Status disconnect(const std::string &id, bool forget) override {
    {
      std::lock_guard lock(mutex_);
      accounts_[id].active = false;
    }
    // Logging out removes this device from the phone's linked devices; the bridge opens the
    // session once more for it when it is between connections.
    Json stop = {{"op", "stop"}, {"account", id}, {"logout", forget}};
    if (forget) {
      if (auto auth = host().get(id, kAuthKey)) stop["auth"] = *auth;
    }
    auto stopped = bridge_request(stop);
    if (forget) {
      host().erase(id, kAuthKey);
      host().erase(id, kPhoneKey);
    }
    if (auto unconfirmed = forget ? logout_unconfirmed(stopped) : std::nullopt) {
      set_status(id, "disconnected", "", *unconfirmed, "logout_unconfirmed");
    } else {
      set_status(id, "disconnected", "", forget ? "logged out" : "",
                 forget ? "logged_out_here" : "");
    }
    if (!stopped) host().warn(id, "the bridge did not confirm the stop: " + stopped.error().message);
    return sdk::ok();
  }

  Result<Json> status(const std::string &id) override {
    std::lock_guard lock(mutex_);
    const auto &account = accounts_[id];
    Json status = {{"type", "status"}, {"state", account.state}, {"account", account.name}};
    if (!account.detail.empty()) status["detail"] = account.detail;
    if (account.state == "awaiting_qr" && !account.qr_payload.empty()) {
      status["qr"] = {{"payload", account.qr_payload}, {"expires_at", account.qr_expires_at}};
    }
    return status;
  }

  Result<Json> send(const std::string &id, const Json &message) override {
    const Json to_member = message.value("to", Json());
    if (!to_member.is_string() || to_member.get<std::string>().empty()) {
      return fail(CN_ERR_INVALID_ARGUMENT, "a recipient is required");
    }
    const std::string to = recipient(to_member.get<std::string>());
    if (to.empty()) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "\"to\" must be a phone number with its country code (8 to 15 digits) or a "
                  "WhatsApp id (digits@s.whatsapp.net, digits@lid or a group's id@g.us)");
    }
    Json text = message.value("text", Json(""));
    if (text.is_null()) text = "";
    if (!text.is_string()) return fail(CN_ERR_INVALID_ARGUMENT, "\"text\" must be text");
    const Json attachments = message.value("attachments", Json::array());
    if (text.get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos &&
        (!attachments.is_array() || attachments.empty())) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "the message is empty: give it a text or an attachment");
    }
    Json request = {{"op", "send"}, {"account", id}, {"to", to}, {"text", text}};
    // A reply the client named is quoted; the one the host picks for a send on a case is not (a
    // WhatsApp chat is one thread already, and quoting every answer would clutter it).
    const Json reply_to = message.value("reply_to", Json::object());
    if (reply_to.is_object() && reply_to.value("named", false) &&
        reply_to.value("external_id", Json()).is_string()) {
      request["quoted_id"] = reply_to["external_id"];
    }
    // The client's idempotency key; a retry of a failed send names the id it first went out
    // under, so WhatsApp gets the same message id again and shows it once.
    if (message.contains("client_id") && message["client_id"].is_string()) {
      request["client_id"] = message["client_id"];
    }
    if (message.contains("external_id") && message["external_id"].is_string()) {
      request["message_id"] = message["external_id"];
    }
    if (attachments.size() > 1) {
      return fail(CN_ERR_INVALID_ARGUMENT, "WhatsApp sends one attachment per message");
    }
    if (!attachments.empty()) {
      const Json &a = attachments[0];
      auto path = host().attachment_path(a.value("id", ""));
      if (!path) return fail(CN_ERR_NOT_FOUND, "unknown attachment");
      request["media"] = {{"path", *path}, {"mime", a.value("mime", "")},
                          {"name", a.value("name", "")}};
    }
    // Refusals an attendant can cause come with their own code (the bridge's kind).
    auto sent = bridge_request(request);
    if (!sent) return sent.error();
    return sent_answer(sent.value(), to);
  }

  // The keys the host links a message by: the sender's phone and WhatsApp ids (LID and phone JID),
  // the phone added from the LID mapping when the bridge learned it; none for a group message
  // unless link_groups is set.
  // Empty lists, stated, tell the case engine to link the message to no one.
  Json link_keys(const Json &message) {
    const bool group = message.value("details", Json::object()).contains("group");
    if (group && !settings_.value("link_groups", false)) {
      return {{"phones", Json::array()}, {"whatsapp_ids", Json::array()}};
    }
    auto keys = link(message);
    if (!keys) return message.value("link", Json::object());
    return {{"phones", keys.value().phones}, {"whatsapp_ids", keys.value().whatsapp_ids}};
  }

  Result<LinkKeys> link(const Json &message) override {
    LinkKeys keys;
    const Json link = message.value("link", Json::object());
    for (const auto &p : link.value("phones", Json::array())) {
      if (p.is_string()) keys.phones.push_back(p);
    }
    for (const auto &w : link.value("whatsapp_ids", Json::array())) {
      if (!w.is_string()) continue;
      keys.whatsapp_ids.push_back(w);
      // A sender first seen by LID links by phone once the mapping is known.
      std::lock_guard lock(mutex_);
      if (auto it = lid_phones_.find(w.get<std::string>()); it != lid_phones_.end()) {
        if (std::find(keys.phones.begin(), keys.phones.end(), it->second) == keys.phones.end()) {
          keys.phones.push_back(it->second);
        }
      }
    }
    if (keys.phones.empty()) {
      const std::string from = message.value("from", "");
      if (!from.empty() && from[0] == '+') keys.phones.push_back(from);
    }
    return keys;
  }

 private:
  static Json setting(const char *key, const char *type, Json fallback, const char *text) {
    return {{"key", key}, {"type", type}, {"default", std::move(fallback)}, {"description", text}};
  }

  static std::string digits(const std::string &text) {
    std::string out;
    for (char c : text) {
      if (c >= '0' && c <= '9') out += c;
    }
    return out;
  }

  // --- The bridge process ----------------------------------------------------------------------

  // The bridge process as the settings ask for, wired to this plugin, not started yet.
  std::unique_ptr<BridgeProcess> make_bridge() {
    const std::string dir = settings_.value("bridge_dir", std::string(CONNECTOR_WA_BRIDGE_DIR));
    auto bridge = std::make_unique<BridgeProcess>(
        std::vector<std::string>{settings_.value("node", std::string("node")),
                                 dir + "/bridge.mjs"},
        [this](const Json &event) { on_event(event); }, [this] { on_bridge_exit(); });
    bridge->set_log_handler([this](const std::string &text) { host().warn("", text); });
    // Node's own warnings and crash reports: through the host's log (which masks the secrets it
    // knows), never raw into its journal; a line that looks like a printed key is withheld.
    bridge->set_stderr_handler(
        [this](const std::string &line) { host().warn("", "bridge stderr: " + line); });
    if (const int64_t max_line = settings_.value("bridge_max_line_bytes", int64_t{0});
        max_line > 0) {
      bridge->set_max_line_bytes(static_cast<size_t>(max_line));
    }
    if (auto ca = settings_.value("test_media_ca_file", std::string()); !ca.empty()) {
      // Node reads extra trusted certificates only at start, from this variable.
      bridge->set_environment("NODE_EXTRA_CA_CERTS", ca);
    }
    return bridge;
  }

  Status start_bridge() {
    const std::string dir = settings_.value("bridge_dir", std::string(CONNECTOR_WA_BRIDGE_DIR));
    auto bridge = make_bridge();
    if (auto started = bridge->start(); !started) return started;

    auto hello = read_hello(
        bridge->request({{"op", "hello"}, {"protocol", kProtocolVersion}}, 30s), dir);
    if (!hello) return hello.error();
    Json configure = {{"op", "configure"}};
    if (auto url = settings_.value("ws_url", std::string()); !url.empty()) configure["ws_url"] = url;
    if (auto key = settings_.value("test_root_key", std::string()); !key.empty()) {
      configure["test_root_key"] = key;
    }
    if (auto version = settings_.value("wa_version", std::string()); !version.empty()) {
      configure["version"] = parse_version(version);
    }
    for (const char *key : {"qr_timeout_ms", "reconnect_max_ms", "send_timeout_ms",
                            "max_concurrent_connects"}) {
      if (settings_.value(key, 0) > 0) configure[key] = settings_[key];
    }
    if (auto configured = bridge->request(configure, 10s); !configured) return configured.error();
    host().info("", "WhatsApp bridge started (pid " + std::to_string(bridge->pid()) +
                        ", Baileys " + hello.value() + ")");

    std::lock_guard lock(mutex_);
    bridge_ = std::move(bridge);
    bridge_started_at_ = std::chrono::steady_clock::now();
    if (!supervisor_.joinable()) supervisor_ = std::thread([this] { supervise(); });
    return sdk::ok();
  }

  static Json parse_version(const std::string &text) {
    Json parts = Json::array();
    size_t start = 0;
    while (start <= text.size()) {
      size_t dot = text.find('.', start);
      if (dot == std::string::npos) dot = text.size();
      parts.push_back(std::stoll(text.substr(start, dot - start)));
      start = dot + 1;
    }
    return parts;
  }

  // Runs on the bridge's reader thread: only flags the exit; the supervisor restarts it.
  void on_bridge_exit() {
    {
      std::lock_guard lock(mutex_);
      bridge_died_ = true;
    }
    wake_.notify_all();
  }

  // Restarts a dead bridge with exponential backoff and resumes every active session.
  void supervise() {
    auto backoff = 500ms;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || bridge_died_; });
      if (stopping_) return;
      if (std::chrono::steady_clock::now() - bridge_started_at_ > 60s) backoff = 500ms;
      host().log(CN_LOG_WARN, "", "the WhatsApp bridge stopped; restarting it");
      std::unique_ptr<BridgeProcess> dead = std::move(bridge_);
      bridge_died_ = false;
      std::set<std::string> active;
      for (auto &[id, account] : accounts_) {
        if (account.active) active.insert(id);
      }
      lock.unlock();
      dead.reset();
      for (const auto &id : active) {
        set_status(id, "connecting", "", "restarting the bridge", "bridge_restarting");
      }

      if (wait_or_stop(backoff)) return;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
      if (auto started = start_bridge(); !started) {
        host().log(CN_LOG_ERROR, "", "WhatsApp bridge restart failed: " + started.error().message);
        lock.lock();
        bridge_died_ = true;
        continue;
      }
      for (const auto &id : active) {
        auto auth = host().get(id, kAuthKey);
        if (!auth || !paired(id)) {
          // It was still pairing: the QR it showed died with the bridge, and a new one needs
          // the attendant in front of the screen.
          {
            std::lock_guard relock(mutex_);
            accounts_[id].active = false;
          }
          set_status(id, "disconnected", "",
                     "the pairing was interrupted when the WhatsApp bridge restarted: connect "
                     "again for a new QR code",
                     "pairing_interrupted", /*final=*/true);
          continue;
        }
        if (auto resumed = start_session(id, auth); !resumed) {
          host().log(CN_LOG_WARN, id, "resume after the bridge restart failed: " +
                                          resumed.error().message);
        }
      }
      lock.lock();
    }
  }

  bool wait_or_stop(std::chrono::milliseconds delay) {
    std::unique_lock lock(mutex_);
    return wake_.wait_for(lock, delay, [&] { return stopping_; });
  }

  Result<Json> bridge_request(const Json &request) {
    BridgeProcess *bridge = nullptr;
    {
      std::lock_guard lock(mutex_);
      bridge = bridge_.get();
    }
    if (bridge == nullptr) return fail(CN_ERR_NETWORK, "the WhatsApp bridge is restarting");
    return bridge->request(request, kRequestTimeout);
  }

  Status start_session(const std::string &id, const std::optional<std::string> &auth) {
    Json request = {{"op", "start"}, {"account", id}, {"auth", auth ? Json(*auth) : Json()}};
    {
      std::lock_guard lock(mutex_);
      if (!accounts_[id].pairing_phone.empty()) {
        request["pairing_phone"] = accounts_[id].pairing_phone;
      }
    }
    set_status(id, "connecting", "", "");
    auto started = bridge_request(request);
    if (!started) {
      set_status(id, "error", "", started.error().message, "bridge_unavailable");
      return started.error();
    }
    return sdk::ok();
  }

  // --- Events from the bridge (on its reader thread) -------------------------------------------

  void on_event(const Json &event) {
    const std::string kind = event.value("event", "");
    const std::string id = event.value("account", "");
    if (kind == "state") return on_state(id, event);
    if (kind == "status") return on_status(id, event);
    if (kind == "qr") return on_qr(id, event);
    if (kind == "qr_expired") {
      host().emit(id, {{"type", "qr_expired"}});
      return;
    }
    if (kind == "pairing_code") {
      host().emit(id, {{"type", "pairing_code"},
                       {"code", event.value("code", "")},
                       {"expires_at", integer_of(event, "expires_at")}});
      return;
    }
    if (kind == "message") return on_message(id, event.value("message", Json::object()));
    if (kind == "unreadable") {
      // Its line could not be read (reported already): the message is lost, and settling it
      // lets the account's traffic, held behind its receipt, go on at once.
      const std::string external_id = event.value("external_id", "");
      host().log(CN_LOG_ERROR, id,
                 "a WhatsApp message (id " + external_id +
                     ") came from the bridge in a line that could not be read; it is lost");
      std::lock_guard lock(mutex_);
      if (bridge_) {
        bridge_->notify({{"op", "settled"}, {"account", id}, {"external_id", external_id}});
      }
      return;
    }
    if (kind == "backlog") {
      // One summary for a burst of offline or history messages, which were stored quietly.
      const int64_t count = integer_of(event, "count");
      host().emit(id, {{"type", "progress"}, {"phase", "backlog"}, {"done", count}, {"total", count}});
      return;
    }
    if (kind == "delivery") {
      Json delivery = {{"type", "delivery"},
                       {"external_id", event.value("external_id", "")},
                       {"status", event.value("status", "")}};
      if (event.contains("detail")) delivery["detail"] = event["detail"];
      host().emit(id, delivery);
      return;
    }
    if (kind == "lid") {
      std::lock_guard lock(mutex_);
      lid_phones_[event.value("lid", "")] = event.value("phone", "");
      return;
    }
    if (kind == "log") {
      const std::string level = event.value("level", "info");
      host().log(level == "error" ? CN_LOG_ERROR : level == "warn" ? CN_LOG_WARN : CN_LOG_DEBUG,
                 id, "bridge: " + event.value("text", ""));
    }
  }

  // Stores the account's new auth state (or deletes it), then confirms to the bridge.
  void on_state(const std::string &id, const Json &event) {
    const Json &auth = event.contains("auth") ? event["auth"] : Json();
    cn_result rc = auth.is_string() ? host().put(id, kAuthKey, auth.get<std::string>(), true)
                                    : host().erase(id, kAuthKey);
    if (rc != CN_OK && rc != CN_ERR_NOT_FOUND) {
      host().log(CN_LOG_ERROR, id, "could not store the WhatsApp session state");
      return;  // unconfirmed: the bridge waits (bounded) before reconnecting
    }
    std::lock_guard lock(mutex_);
    if (bridge_) {
      bridge_->notify({{"op", "state_saved"}, {"account", id}, {"seq", integer_of(event, "seq")}});
    }
  }

  void on_status(const std::string &id, const Json &event) {
    const std::string state = event.value("state", "");
    std::string name;
    if (event.contains("phone") && event["phone"].is_string()) {
      name = event["phone"].get<std::string>();
      host().put(id, kPhoneKey, name);
    }
    const bool given_up = state == "reauth_needed" || state == "disconnected" || state == "error";
    if (given_up) {
      // The bridge gave this session up on purpose (logged out, replaced, outdated, QR expired):
      // neither a bridge restart nor the host's next start may bring it back.
      std::lock_guard lock(mutex_);
      accounts_[id].active = false;
    }
    set_status(id, state, name, event.value("detail", ""), reason_of(state, event), given_up);
  }

  // The machine-readable reason of a status from the bridge, by WhatsApp's close code.
  static std::string reason_of(const std::string &state, const Json &event) {
    const int64_t code = integer_of(event, "code");
    if (state == "reauth_needed" && (code == 401 || code == 403)) return "logged_out";
    if (state == "disconnected" && code == 440) return "replaced";
    if (state == "error" && code == 405) return "update_needed";
    if (state == "disconnected" && code == 408) return "qr_expired";
    if (state == "connecting" && event.contains("detail")) return "connection_lost";
    return "";
  }

  void on_qr(const std::string &id, const Json &event) {
    const std::string payload = event.value("qr", "");
    const int64_t expires_at = integer_of(event, "expires_at");
    {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      account.qr_payload = payload;
      account.qr_expires_at = expires_at;
    }
    set_status(id, "awaiting_qr", "", "");
    host().emit(id, {{"type", "qr"}, {"payload", payload}, {"expires_at", expires_at}});
  }

  // Stores an incoming message, then tells the bridge it is settled: until then the bridge holds
  // WhatsApp's receipt for it and the Signal state that decrypted it (see the bridge's
  // receipt-gate.mjs), so a host that dies before the store commit gets the message again.
  void on_message(const std::string &id, Json message) {
    Json attachments = Json::array();
    for (const auto &a : message.value("attachments", Json::array())) {
      auto bytes = base64_decode(a.value("data", ""));
      if (!bytes) {
        host().log(CN_LOG_WARN, id, "an attachment the bridge sent could not be read: skipped");
        continue;
      }
      auto stored = host().put_attachment(id, *bytes);
      if (!stored) {
        // The host could not store it (its disk is full: the account pauses). The message is
        // left unsettled, so WhatsApp delivers it again, whole, once the account resumes.
        host().log(CN_LOG_WARN, id, "a WhatsApp message's attachment could not be stored");
        return;
      }
      attachments.push_back({{"id", *stored}, {"name", a.value("name", "")},
                             {"mime", a.value("mime", "")}});
    }
    message["attachments"] = attachments;
    message["type"] = "message";
    message["link"] = link_keys(message);
    // Messages queued while the device was away are new messages, only late: they are filed on
    // cases like any other, but quietly, announced once for the whole burst (the "backlog"
    // event). History (old chats replayed) never opens a case of its own: it joins an existing
    // case of its contact or stays unassigned.
    const Json details = message.value("details", Json::object());
    const bool history = details.is_object() && details.value("history", false) == true;
    const bool offline = details.is_object() && details.value("offline", false) == true;
    if (history) message["automatic"] = true;
    if (history || offline) message["quiet"] = true;
    const cn_result stored = host().emit(id, message);
    if (stored == CN_ERR_STORAGE) {
      // Not stored (the host's disk is full: it pauses the account and stops its session). Left
      // unsettled, the message keeps its receipt and the Signal state that decrypted it from
      // going out, so WhatsApp delivers it again once the account resumes, and it decrypts.
      // History is the exception: WhatsApp does not send a history chunk twice.
      host().log(CN_LOG_WARN, id,
                 history ? "a WhatsApp history message could not be stored (the phone does not "
                           "send its history again): lost"
                         : "a WhatsApp message could not be stored; it comes again later");
      bool say = false;
      if (history) {
        std::lock_guard lock(mutex_);
        say = !std::exchange(accounts_[id].history_loss_said, true);
      }
      if (say) {
        host().emit(id, {{"type", "log"},
                         {"level", "warn"},
                         {"text", "Older WhatsApp messages (the phone's history) could not be "
                                  "stored because the disk was full; the phone does not send "
                                  "them again"}});
      }
      return;
    }
    if (stored != CN_OK) {
      host().log(CN_LOG_WARN, id, "a WhatsApp message was refused by the host: lost");
    }
    std::lock_guard lock(mutex_);
    if (bridge_) {
      bridge_->notify({{"op", "settled"},
                       {"account", id},
                       {"external_id", message.value("external_id", "")}});
    }
  }

  void set_status(const std::string &id, const std::string &state, const std::string &name,
                  const std::string &detail, const std::string &reason_code = "",
                  bool final = false) {
    std::string shown;
    {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      account.state = state;
      if (state == "connected") account.history_loss_said = false;
      if (!name.empty()) account.name = name;
      account.detail = detail;
      if (state != "awaiting_qr") account.qr_payload.clear();
      shown = account.name;
    }
    Json event = {{"type", "status"}, {"state", state}};
    if (!shown.empty()) event["account"] = shown;
    if (!detail.empty()) event["detail"] = detail;
    if (!reason_code.empty()) event["reason_code"] = reason_code;
    if (final) event["final"] = true;
    host().emit(id, event);
  }

  Json settings_ = Json::object();
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool bridge_died_ = false;
  std::chrono::steady_clock::time_point bridge_started_at_;
  std::unique_ptr<BridgeProcess> bridge_;
  std::map<std::string, Account> accounts_;
  std::map<std::string, std::string> lid_phones_;
  std::thread supervisor_;

  friend std::unique_ptr<BridgeProcess> whatsapp::bridge_reader(sdk::Plugin &plugin);
};

}  // namespace

std::unique_ptr<BridgeProcess> bridge_reader(sdk::Plugin &plugin) {
  return static_cast<WhatsAppPlugin &>(plugin).make_bridge();
}

sdk::Result<std::string> read_hello(const sdk::Result<Json> &hello, const std::string &dir) {
  if (!hello) {
    return fail(CN_ERR_INTERNAL, "the WhatsApp bridge in " + dir + " refused to start: " +
                                     hello.error().message +
                                     " (are its npm modules installed? run npm ci there)");
  }
  // Both sides check: an older bridge may not know to refuse a protocol it does not speak.
  if (const Json spoken = hello.value().value("protocol", Json());
      spoken != Json(kProtocolVersion)) {
    return fail(CN_ERR_INTERNAL, "the WhatsApp bridge in " + dir + " speaks protocol " +
                                     (spoken.is_null() ? std::string("(none)") : spoken.dump()) +
                                     ", this plugin speaks " + std::to_string(kProtocolVersion) +
                                     ": install the bridge that came with this plugin");
  }
  return text_of(hello.value(), "baileys", "?");
}

Json sent_answer(const Json &answer, const std::string &to) {
  const std::string shown = text_of(answer, "phone", text_of(answer, "to", to));
  return Json{{"external_id", text_of(answer, "external_id")},
              {"to", shown},
              {"status", "sent"}};
}

std::optional<std::string> logout_unconfirmed(const sdk::Result<Json> &stopped) {
  const bool unconfirmed =
      !stopped || (flag_of(stopped.value(), "paired") && !flag_of(stopped.value(), "logged_out"));
  if (!unconfirmed) return std::nullopt;
  const std::string why = stopped ? text_of(stopped.value(), "detail") : stopped.error().message;
  return "logged out here, but WhatsApp could not be reached to confirm it" +
         (why.empty() ? std::string() : " (" + why + ")") +
         ": this device may still be listed among the phone's linked devices";
}

}  // namespace connector::whatsapp

CONNECTOR_PLUGIN(connector::whatsapp::WhatsAppPlugin)
