// The loopback channel: a complete, minimal plugin to copy when writing a new one.
//
// It talks to no network. Every message sent to it comes back as an inbound message from the
// recipient ("echo: <text>"), with delivery updates in between, so the host's whole path —
// connect, QR, status, send, receive, link, disconnect — can be exercised end to end.
//
// Two ways to connect, chosen in the connect form:
//   - "password": connects at once as the given account name; the password "wrong" is refused,
//     like a real server would refuse bad credentials. The password is kept as a secret.
//   - "qr": shows a QR code that expires after `qr_ttl_ms`; when `qr_pairs_after_ms` is set, the
//     "phone" scans it after that long and the account connects.
// Stored credentials let the host resume the account after a restart without a new login.
#include <connector/sdk.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace {

using connector::sdk::fail;
using connector::sdk::Host;
using connector::sdk::Json;
using connector::sdk::LinkKeys;
using connector::sdk::Result;
using connector::sdk::Status;
using Clock = std::chrono::steady_clock;

int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Runs delayed tasks on one thread of its own; cancelled tasks never run.
class Timers {
 public:
  Timers() : thread_([this] { run(); }) {}
  ~Timers() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  void after(std::chrono::milliseconds delay, std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      tasks_.emplace(Clock::now() + delay, std::move(task));
    }
    wake_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (tasks_.empty()) {
        wake_.wait(lock);
        continue;
      }
      auto next = tasks_.begin();
      if (wake_.wait_until(lock, next->first) == std::cv_status::no_timeout) continue;
      auto task = std::move(next->second);
      tasks_.erase(next);
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<Clock::time_point, std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

struct Account {
  std::string state = "disconnected";
  std::string name;
  std::string detail;
  std::string qr_payload;
  int64_t qr_expires_at = 0;
  uint64_t generation = 0;  // bumps on every connect/disconnect so stale timers do nothing
  uint64_t next_message = 0;
};

class LoopbackPlugin final : public connector::sdk::Plugin {
 public:
  explicit LoopbackPlugin(Host host) : Plugin(host) {}

  Json descriptor() const override {
    auto label = [](const char *en, const char *pt) { return Json{{"en", en}, {"pt-BR", pt}}; };
    return {
        {"id", "loopback"},
        {"name", label("Loopback (example)", "Loopback (exemplo)")},
        {"version", "1.0.0"},
        {"capabilities", {"form_login", "qr", "send", "receive"}},
        {"connect_fields",
         {{{"name", "method"},
           {"type", "select"},
           {"label", label("Sign-in method", "Método de acesso")},
           {"required", true},
           {"secret", false},
           {"default", "password"},
           {"choices",
            {{{"value", "password"}, {"label", label("Password", "Senha")}},
             {{"value", "qr"}, {"label", label("QR code", "Código QR")}}}}},
          {{"name", "account"},
           {"type", "text"},
           {"label", label("Account name", "Nome da conta")},
           {"required", true},
           {"secret", false}},
          {{"name", "password"},
           {"type", "password"},
           {"label", label("Password", "Senha")},
           {"required", false},
           {"secret", true}}}},
        {"settings",
         {{{"key", "qr_ttl_ms"},
           {"type", "integer"},
           {"default", 60000},
           {"description", "How long each QR code stays valid."}},
          {{"key", "qr_pairs_after_ms"},
           {"type", "integer"},
           {"default", 0},
           {"description", "Pretend the phone scans the QR after this long (0: never)."}},
          {{"key", "echo_prefix"},
           {"type", "string"},
           {"default", "echo: "},
           {"description", "Text put before every echoed message."}},
          {{"key", "delivered_before_send_returns"},
           {"type", "boolean"},
           {"default", false},
           {"description",
            "Report a sent message delivered before send returns, as a fast channel may."}}}}};
  }

  Status configure(const Json &settings) override {
    qr_ttl_ = std::chrono::milliseconds(settings.value("qr_ttl_ms", 60000));
    pairs_after_ = std::chrono::milliseconds(settings.value("qr_pairs_after_ms", 0));
    echo_prefix_ = settings.value("echo_prefix", std::string("echo: "));
    delivered_at_once_ = settings.value("delivered_before_send_returns", false);
    return connector::sdk::ok();
  }

  Status connect(const std::string &id, const Json &params) override {
    if (params.value("resume", false)) return resume(id);
    const Json values = params.value("values", Json::object());
    const std::string method = values.value("method", "password");
    const std::string name = values.value("account", "");
    if (name.empty()) return fail(CN_ERR_INVALID_ARGUMENT, "the account name is required");

    if (method == "qr") {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      account.name = name;
      start_pairing(id, account);
      return connector::sdk::ok();
    }
    if (method != "password") return fail(CN_ERR_INVALID_ARGUMENT, "unknown method: " + method);

    const std::string password = values.value("password", "");
    if (password.empty() || password == "wrong") {
      set_state(id, "error", name, "wrong account name or password", "auth_failed");
      return fail(CN_ERR_AUTH, "wrong account name or password");
    }
    if (host().put(id, "account", name) != CN_OK || host().put(id, "password", password, true) != CN_OK) {
      return fail(CN_ERR_STORAGE, "could not store the credentials");
    }
    set_state(id, "connected", name, "");
    return connector::sdk::ok();
  }

  Status disconnect(const std::string &id, bool forget) override {
    std::string name;
    {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      account.generation++;
      name = account.name;
    }
    if (forget) {
      host().erase(id, "account");
      host().erase(id, "password");
    }
    set_state(id, "disconnected", name, "");
    return connector::sdk::ok();
  }

  Status refresh_qr(const std::string &id) override {
    std::lock_guard lock(mutex_);
    auto it = accounts_.find(id);
    if (it == accounts_.end() || it->second.state == "connected") {
      return fail(CN_ERR_STATE, "there is no pairing to refresh");
    }
    start_pairing(id, it->second);
    return connector::sdk::ok();
  }

  Result<Json> status(const std::string &id) override {
    std::lock_guard lock(mutex_);
    const auto &account = accounts_[id];
    Json status = {{"type", "status"}, {"state", account.state}, {"account", account.name}};
    if (!account.detail.empty()) status["detail"] = account.detail;
    if (account.state == "awaiting_qr") {
      status["qr"] = {{"payload", account.qr_payload}, {"expires_at", account.qr_expires_at}};
    }
    return status;
  }

  Result<Json> send(const std::string &id, const Json &message) override {
    const std::string to = message.value("to", "");
    if (to.empty()) return fail(CN_ERR_INVALID_ARGUMENT, "a recipient is required");
    std::string external_id;
    {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      if (account.state != "connected") return fail(CN_ERR_STATE, "the account is not connected");
      external_id = "out-" + std::to_string(++account.next_message) + "-" + std::to_string(unix_ms());
    }

    // The echo comes back a moment later, as a real reply would.
    const Json echo = {{"type", "message"},
                       {"direction", "inbound"},
                       {"external_id", "in-" + external_id},
                       {"from", to},
                       {"text", echo_prefix_ + message.value("text", "")},
                       {"timestamp", unix_ms()}};
    // No "link" member: the host asks link() below for the keys, as it does for any plugin
    // that leaves them out.
    const Json delivered = {{"type", "delivery"}, {"external_id", external_id}, {"status", "delivered"}};
    if (delivered_at_once_) host().emit(id, delivered);
    timers_.after(std::chrono::milliseconds(10), [this, id, delivered, echo] {
      if (!delivered_at_once_) host().emit(id, delivered);
      host().emit(id, echo);
    });
    return Json{{"external_id", external_id}, {"to", to}, {"status", "sent"}};
  }

  Result<LinkKeys> link(const Json &message) override {
    return keys_for(message.value("from", ""));
  }

 private:
  static LinkKeys keys_for(const std::string &address) {
    LinkKeys keys;
    if (address.find('@') != std::string::npos) {
      keys.emails.push_back(address);
    } else if (!address.empty() && address[0] == '+') {
      keys.phones.push_back(address);
    }
    return keys;
  }

  Status resume(const std::string &id) {
    auto name = host().get(id, "account");
    auto password = host().get(id, "password");
    if (!name || !password) {
      set_state(id, "error", name.value_or(""), "no stored credentials: connect again",
                "credentials_missing");
      return fail(CN_ERR_AUTH, "no stored credentials: connect again");
    }
    set_state(id, "connected", *name, "");
    return connector::sdk::ok();
  }

  // Issues a new QR and schedules its expiry (and, if configured, its scan). Needs mutex_ held.
  void start_pairing(const std::string &id, Account &account) {
    const uint64_t generation = ++account.generation;
    account.state = "awaiting_qr";
    account.detail.clear();
    account.qr_payload = "loopback:" + account.name + ":" + std::to_string(generation);
    account.qr_expires_at = unix_ms() + qr_ttl_.count();
    host().emit(id, {{"type", "status"}, {"state", "awaiting_qr"}, {"account", account.name}});
    host().emit(id, {{"type", "qr"},
                     {"payload", account.qr_payload},
                     {"expires_at", account.qr_expires_at}});

    timers_.after(qr_ttl_, [this, id, generation] {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      if (account.generation != generation || account.state != "awaiting_qr") return;
      account.state = "disconnected";
      account.detail = "the QR code expired";
      host().emit(id, {{"type", "qr_expired"}});
      host().emit(id, {{"type", "status"}, {"state", "disconnected"}, {"detail", account.detail}});
    });
    if (pairs_after_.count() > 0) {
      timers_.after(pairs_after_, [this, id, generation] { paired(id, generation); });
    }
  }

  void paired(const std::string &id, uint64_t generation) {
    std::string name;
    {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      if (account.generation != generation || account.state != "awaiting_qr") return;
      name = account.name;
    }
    host().put(id, "account", name);
    host().put(id, "password", "paired-by-qr-" + std::to_string(generation), true);
    set_state(id, "connected", name, "");
  }

  void set_state(const std::string &id, const std::string &state, const std::string &name,
                 const std::string &detail, const std::string &reason_code = "") {
    {
      std::lock_guard lock(mutex_);
      auto &account = accounts_[id];
      account.state = state;
      account.name = name;
      account.detail = detail;
    }
    host().emit_status(id, state, name, detail, reason_code);
  }

  std::mutex mutex_;
  std::map<std::string, Account> accounts_;
  std::chrono::milliseconds qr_ttl_{60000};
  std::chrono::milliseconds pairs_after_{0};
  std::string echo_prefix_ = "echo: ";
  bool delivered_at_once_ = false;
  Timers timers_;  // last: destroyed first, so no task runs against a dead member
};

}  // namespace

CONNECTOR_PLUGIN(LoopbackPlugin)
