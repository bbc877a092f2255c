// The accounts of every attendant and what happens to them at run time: creating, connecting,
// disconnecting and resuming them through their plugin, and taking in what the plugins report
// (status, QR codes, messages, delivery updates, log entries) — stored first, then pushed live.
//
// It is also the host side of the plugin boundary (PluginServices): every call a plugin makes
// is checked against the accounts that plugin owns, so one plugin cannot read or write another
// plugin's accounts.
//
// Threading: all public methods are thread-safe. Verbs of one account are serialised (a plugin
// never sees two verbs of one account at once); verbs may block, so the API calls them from its
// worker threads. Plugin callbacks may arrive on any thread.
#pragma once

#include "accounts/EventHub.hpp"
#include "accounts/OAuthAttempts.hpp"
#include "common/Expected.hpp"
#include "plugins/PluginServices.hpp"
#include "store/AccountValues.hpp"
#include "store/AttachmentStore.hpp"
#include "store/Conversations.hpp"
#include "store/Database.hpp"
#include "store/SpaceReserve.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace connector::plugins {
class LoadedPlugin;
}

namespace connector::accounts {

using Json = nlohmann::json;

struct Account {
  std::string id;
  std::string attendant_id;
  std::string plugin_id;
  std::string label;
  std::string state;         // disconnected, connecting, awaiting_qr, connected, error, …
  std::string account_name;  // as the channel names it: the address or phone number
  std::string detail;        // the reason behind an error or a disconnection
  bool wanted_connected = false;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::string reason_code;   // the plugin's machine-readable reason for the detail, or empty
};

struct QrCode {
  std::string payload;
  int64_t expires_at = 0;
};

// Finds the running plugin for an id (nullptr when it is not loaded), and the reason when it
// was refused. Implemented by the plugin registry; kept abstract so tests can stand in for it.
class PluginDirectory {
 public:
  virtual ~PluginDirectory() = default;
  virtual plugins::LoadedPlugin *find(const std::string &plugin_id) = 0;
  virtual std::optional<std::string> refusal(const std::string &plugin_id) = 0;
};

// Stores a message and files it on its case in one transaction: the case engine. Called for a
// message a plugin reported (inbound, or outbound sent outside the host; on the plugin's calling
// thread before emit returns; case_id nullopt) and for one sent through send() (case_id: the
// case it was sent on, filed by hand by `by`; nullopt: filed as a reported outbound message
// is). Without one, messages are only stored, and a sent one linked to its case_id.
using MessageFiler = std::function<Expected<store::Conversations::Stored>(
    const Account &account, const store::NewMessage &message, std::optional<int64_t> case_id,
    const std::string &by)>;

// Stores several messages a plugin reported at once and files them, all in one transaction or
// none (the case engine's ingest_all). Without one, they go through the MessageFiler one by one.
using BatchFiler = std::function<Expected<std::vector<store::Conversations::Stored>>(
    const Account &account, const std::vector<store::NewMessage> &messages)>;

class AccountService final : public plugins::PluginServices {
 public:
  AccountService(store::Database &db, store::AccountValues &values,
                 store::AttachmentStore &attachments, store::Conversations &conversations,
                 EventHub &events);
  ~AccountService() override;

  // Must be called before plugins are loaded or accounts resumed.
  void set_plugins(PluginDirectory *plugins) { plugins_ = plugins; }
  void set_message_filer(MessageFiler filer) { filer_ = std::move(filer); }
  void set_batch_filer(BatchFiler filer) { batch_filer_ = std::move(filer); }

  Expected<Account> create(const std::string &attendant_id, const std::string &plugin_id,
                           const std::string &label);
  Expected<Account> get(const std::string &account_id);
  std::vector<Account> list(const std::optional<std::string> &attendant_id);
  Outcome remove(const std::string &account_id);

  // Checks the connect form values against the plugin's declared fields, then starts connecting.
  Outcome connect(const std::string &account_id, const Json &values);
  Outcome disconnect(const std::string &account_id);
  Outcome refresh_qr(const std::string &account_id);
  std::optional<QrCode> qr(const std::string &account_id);

  // Sends through the account's plugin and stores the sent message; returns it as the API shows
  // it. `case_id`, when given, links the sent message to that case, by `sent_by`.
  // A message carrying a "client_id" the account already sent under is not sent again: the
  // stored message is returned, and only a failed one is handed to the plugin once more, under
  // its first external id (for WhatsApp, the same message id, which the server never delivers
  // twice).
  Expected<Json> send(const std::string &account_id, const Json &message,
                      std::optional<int64_t> case_id, const std::string &sent_by);

  // OAuth sign-in. oauth_start checks the form values like connect, opens a
  // state for the account and returns the plugin's {"authorization_url"}.
  Expected<Json> oauth_start(const std::string &account_id, const Json &values,
                             const std::string &redirect_uri);

  // What the provider's redirect brought back to the callback.
  struct OAuthReturn {
    std::string state;
    std::string code;
    std::string error;              // the provider's error code, e.g. access_denied
    std::string error_description;  // the provider's words
    std::string redirect_uri;
    // The browser brought back the cookie POST …/oauth/start gave the one that started it.
    bool same_browser = false;
  };
  // Consumes the state and hands the code to the account's plugin (connect with {"oauth":…}).
  // The account once the plugin connected it; otherwise a failure whose message says why (and,
  // when the state named an account, that account's status and log say it too).
  Expected<Account> oauth_finish(const OAuthReturn &answer);

  // The account's integration log, newest first.
  std::vector<Json> log_entries(const std::string &account_id, const store::Page &page);

  // Reconnects, from stored credentials, every account that was connected when the host
  // stopped.
  void resume_all();

  // A full disk. When a message of an account (or one of its attachments) cannot be stored for
  // want of space, the account pauses: its status says so (state "error", reason_code
  // "storage_full") and so does its integration log; its plugin is disconnected, so nothing
  // more is taken from the channel and nothing is acknowledged to it (the plugin acknowledges
  // only what emit stored). The reserve is released at once, so that status can still be
  // written. Every `interval` the watch looks at the disk; once there is room again and the
  // reserve is held once more, every paused account resumes from its stored credentials and the
  // channel hands over again what was not stored. Without a watch, a full disk only fails the
  // write (CN_ERR_STORAGE), as any storage failure does.
  void watch_space(store::SpaceReserve &reserve, std::chrono::milliseconds interval);
  // Stops the watch; called before the plugins shut down.
  void stop_watching_space();

  // PluginServices.
  void log(std::string_view plugin, std::string_view account, cn_log_level level,
           std::string_view text) override;
  cn_result emit(std::string_view plugin, std::string_view account,
                 std::string_view event_json) override;
  cn_result store_put(std::string_view plugin, std::string_view account, std::string_view key,
                      std::string_view value, bool secret) override;
  cn_result store_get(std::string_view plugin, std::string_view account, std::string_view key,
                      std::string &value) override;
  cn_result store_delete(std::string_view plugin, std::string_view account,
                         std::string_view key) override;
  cn_result attachment_put(std::string_view plugin, std::string_view account,
                           std::string_view data, std::string &id) override;
  cn_result attachment_path(std::string_view plugin, std::string_view attachment_id,
                            std::string &path) override;

  // Adds an entry to the account's integration log and pushes it live.
  void record(const Account &account, const std::string &kind, const std::string &level,
              const std::string &text);

 private:
  // The account if it exists and belongs to `plugin`.
  std::optional<Account> owned_by(std::string_view plugin, std::string_view account_id);
  Expected<plugins::LoadedPlugin *> plugin_of(const Account &account);
  // A send retried under a client id already stored as message `message_id` (see send).
  Expected<Json> resend(const Account &account, int64_t message_id, const Json &message,
                        plugins::LoadedPlugin &plugin);
  std::mutex &verb_lock(const std::string &account_id);
  bool held_by_another(const std::string &attendant_id, const std::string &attachment_id);
  Outcome save_state(const std::string &account_id, const std::string &state,
                     const std::string &account_name, const std::string &detail,
                     const std::string &reason_code = "");
  Outcome set_wanted(const std::string &account_id, bool connected);

  cn_result on_status(const Account &account, const Json &event);
  cn_result on_qr(const Account &account, const Json &event);
  cn_result on_message(const Account &account, const Json &event);
  // Several message events at once ({"messages": [...]}), stored in one transaction.
  cn_result on_messages(const Account &account, const Json &event);
  // A message event read into a message to store; nullopt (logged) when it cannot be.
  std::optional<store::NewMessage> read_message(const Account &account, const Json &event);
  cn_result store_messages(const Account &account, std::vector<store::NewMessage> batch,
                           const std::vector<bool> &quiet);
  void forget_filed(const Account &account, const std::vector<store::NewMessage> &batch);
  cn_result on_delivery(const Account &account, const Json &event);
  // Applies a delivery update that came before message `message_id` (`external_id`) was stored;
  // true when there was one.
  bool apply_early_delivery(const Account &account, const std::string &external_id,
                            int64_t message_id);

  bool paused(const std::string &account_id);
  void pause_for_full_disk(const Account &account, const std::string &why,
                           const std::vector<std::string> &attachments);
  void watch_space_loop(std::chrono::milliseconds interval);
  void stop_paused(const std::string &account_id);
  void resume_paused();

  store::Database &db_;
  store::AccountValues &values_;
  store::AttachmentStore &attachments_;
  store::Conversations &conversations_;
  EventHub &events_;
  PluginDirectory *plugins_ = nullptr;
  MessageFiler filer_;
  BatchFiler batch_filer_;

  std::mutex mutex_;  // guards the members below, up to space_stopping_
  std::map<std::string, std::unique_ptr<std::mutex>> verb_locks_;
  std::map<std::string, QrCode> qr_codes_;
  // Accounts paused by a full disk, those whose plugin is still to be disconnected, and the
  // attachments each account stored that no stored message names yet (removed again when the
  // account pauses: the channel hands their messages over again).
  std::set<std::string> paused_;
  // When the paused accounts last resumed, and the room beyond the usual margin that resuming
  // waits for since the disk filled up again right after (see pause_for_full_disk).
  std::optional<std::chrono::steady_clock::time_point> last_resume_;
  uint64_t extra_room_ = 0;
  std::vector<std::string> to_disconnect_;
  std::map<std::string, std::vector<std::string>> unfiled_attachments_;
  std::condition_variable space_wake_;
  bool space_stopping_ = false;
  store::SpaceReserve *reserve_ = nullptr;
  std::thread space_watch_;

  // Delivery updates that overtook the message they are about (a channel may answer before the
  // host has stored what it sent), by account and external id, applied once that message is
  // stored; the oldest give way beyond a bound. delivery_mutex_ orders an update that finds no
  // message against the store of that message.
  std::mutex delivery_mutex_;
  std::map<std::pair<std::string, std::string>, Json> early_deliveries_;
  std::deque<std::pair<std::string, std::string>> early_order_;
  OAuthAttempts oauth_attempts_;
};

// The API's view of an account, with the live QR (when pairing) and its automatic-link count.
Json to_json(const Account &account);

}  // namespace connector::accounts
