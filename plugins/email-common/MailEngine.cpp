#include "MailEngine.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <ctime>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include "ImapConnection.hpp"
#include "MailComposer.hpp"
#include "MailEvent.hpp"
#include "SmtpSender.hpp"

namespace connector::email {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using sdk::Json;

// The engine's event loop: one thread for every account, plus workers for blocking calls.
struct MailEngine::Loop {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::thread_pool workers{2};
  std::thread thread{[this] { io.run(); }};

  ~Loop() {
    work.reset();
    io.stop();
    if (thread.joinable()) thread.join();
    workers.join();
  }
};

// One mailbox: its settings, its current session and what the status verb reports.
struct MailEngine::Account {
  std::string id;
  MailServers servers;
  bool give_up_on_failure = false;
  bool smtp_checked = false;
  // SMTP refused AUTH for the whole mailbox (535 5.7.139) and the plugin offers another way of
  // sending: every send takes that way. Set by the connect check or by a send, read by sends.
  std::atomic<bool> smtp_auth_disabled{false};

  // Touched on the loop thread only.
  bool stopped = false;
  ImapConnection *connection = nullptr;
  std::unique_ptr<asio::steady_timer> pause;

  // Read by the status verb from other threads.
  mutable std::mutex mutex;
  std::string state = "disconnected";
  std::string detail;
};

namespace {

const char *kStateKey = "sync.inbox";
// Bounds of one "messages" event: mails, and an estimate of their bytes in the event.
constexpr size_t kMessagesPerEvent = 500;
constexpr size_t kBytesPerEvent = 8 << 20;
// A batch of fewer mails is read on the loop itself: handing it to the workers would cost more.
constexpr size_t kMailsReadOnTheLoop = 8;

struct SyncState {
  uint64_t uid_validity = 0;
  uint64_t last_uid = 0;
  // What EXAMINE reported when the last sync finished (both 0 until one finished). With
  // CONDSTORE, an unchanged HIGHESTMODSEQ and UIDNEXT mean the mailbox is as we left it.
  uint64_t highest_modseq = 0;
  uint64_t uid_next = 0;
};

std::string imap_date(int days_ago) {
  static const char *kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t when = std::time(nullptr) - static_cast<std::time_t>(days_ago) * 86400;
  std::tm tm{};
  gmtime_r(&when, &tm);
  return std::to_string(tm.tm_mday) + "-" + kMonths[tm.tm_mon] + "-" +
         std::to_string(tm.tm_year + 1900);
}

std::string uid_set(const std::vector<uint64_t> &uids) {
  std::string out;
  for (size_t i = 0; i < uids.size();) {
    size_t j = i;
    while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(uids[i]);
    if (j > i) out += ":" + std::to_string(uids[j]);
    i = j + 1;
  }
  return out;
}

// Waits for the result of a task posted to the workers without blocking the loop. (A plain
// future polled by a timer: co_spawn of a capturing lambda onto the pool corrupted its captures
// with g++ 12 and Boost 1.74.)
template <class T>
awaitable<void> until_ready(std::future<T> &result) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  while (result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    tick.expires_after(std::chrono::milliseconds(5));
    co_await tick.async_wait(use_awaitable);
  }
}

// Runs libcurl's blocking SMTP login check on a worker.
//
// `servers` by reference, never by value: g++ 12 mishandles a by-value coroutine parameter that
// holds a std::function (Credentials::access_token_source) and the process crashed destroying
// it. The account (and so its servers) outlives the session's coroutines.
awaitable<std::optional<MailFailure>> smtp_check_on(asio::thread_pool &workers,
                                                    const MailServers &servers) {
  auto task = std::make_shared<std::packaged_task<std::optional<MailFailure>()>>(
      [servers] { return check_smtp_login(servers); });
  auto result = task->get_future();
  asio::post(workers, [task] { (*task)(); });
  co_await until_ready(result);
  co_return result.get();
}

// OAuth accounts: asks the plugin for a current access token on a worker (the source may call
// the provider) and puts it into the account's credentials. Throws MailError when there is none.
awaitable<void> refresh_access_token(asio::thread_pool &workers, MailEngine::Account &account) {
  AccessTokenSource source = account.servers.credentials.access_token_source;
  if (!source) co_return;
  using Answer = std::variant<std::string, MailFailure>;
  auto task = std::make_shared<std::packaged_task<Answer()>>([source] { return source(); });
  auto result = task->get_future();
  asio::post(workers, [task] { (*task)(); });
  co_await until_ready(result);
  Answer answer = result.get();
  if (auto *failure = std::get_if<MailFailure>(&answer)) throw MailError(*failure);
  std::lock_guard lock(account.mutex);
  account.servers.credentials.oauth_token = std::get<std::string>(answer);
}

// One running session of an account, on the loop thread.
class Session {
 public:
  Session(sdk::Host host, const SyncSettings &settings, std::shared_ptr<MailEngine::Account> a,
          asio::thread_pool &workers)
      : host_(host),
        settings_(settings),
        account_(std::move(a)),
        workers_(workers),
        case_ids_(settings.case_id_pattern) {}

  awaitable<void> run() {
    auto executor = co_await asio::this_coro::executor;
    std::chrono::milliseconds backoff(1000);
    bool ever_connected = false;
    while (!account_->stopped) {
      set_state("connecting", "");
      ImapConnection connection(executor, settings_.timeout);
      account_->connection = &connection;
      try {
        co_await connect(connection);
        ever_connected = true;
        backoff = std::chrono::milliseconds(1000);
        co_await sync(connection, true);
        co_await watch(connection);
      } catch (const std::exception &e) {
        account_->connection = nullptr;
        if (account_->stopped) break;
        // Anything unexpected is retried like a lost connection: it must never escape the
        // loop thread, which every account shares.
        const auto *mail_error = dynamic_cast<const MailError *>(&e);
        const MailFailure failure =
            mail_error != nullptr
                ? mail_error->failure()
                : MailFailure{FailureKind::kProtocol, std::string("IMAP: ") + e.what()};
        const bool reauthorise = failure.kind == FailureKind::kReauthorisationNeeded;
        const bool final = failure.kind == FailureKind::kWrongCredentials || reauthorise ||
                           (account_->give_up_on_failure && !ever_connected);
        if (final) {
          // The status's error is the integration log's entry: logged once, by the host.
          set_state(reauthorise ? "reauth_needed" : "error", failure.detail,
                    reason_code(failure.kind));
          break;
        }
        host_.emit_log(account_->id, "error", failure.detail);
        set_state("connecting", "reconnecting: " + failure.detail);
      }
      account_->connection = nullptr;
      if (account_->stopped) break;

      // Wait before the next attempt; stop() cancels the wait.
      account_->pause = std::make_unique<asio::steady_timer>(executor, backoff);
      try {
        co_await account_->pause->async_wait(use_awaitable);
      } catch (const boost::system::system_error &) {
      }
      account_->pause.reset();
      backoff = std::min(backoff * 2, std::chrono::milliseconds(60000));
    }
  }

 private:
  awaitable<void> connect(ImapConnection &connection) {
    co_await connection.open(account_->servers.imap, account_->servers.ca_file);
    co_await refresh_access_token(workers_, *account_);
    co_await connection.login(account_->servers.credentials);
    if (!account_->smtp_checked) {
      auto failure = co_await smtp_check_on(workers_, account_->servers);
      if (failure && failure->smtp_auth_disabled && account_->servers.alternate_sender) {
        // The mailbox can still send, the other way: connected, and the reason on record.
        account_->smtp_auth_disabled = true;
        host_.emit_log(account_->id, "warn",
                       failure->detail + ". Until then mail is sent through the provider's "
                                         "API (Microsoft Graph sendMail)");
        failure.reset();
      }
      if (failure) throw MailError(*failure);
      account_->smtp_checked = true;
    }
    set_state("connected", "");
  }

  // IDLE where offered (renewed every idle_restart, which doubles as the liveness check),
  // polling otherwise. Returns only by throwing (connection lost or stopped).
  awaitable<void> watch(ImapConnection &connection) {
    const bool can_idle = connection.has_capability("IDLE");
    auto executor = co_await asio::this_coro::executor;
    for (;;) {
      if (can_idle) {
        const bool news = co_await connection.idle(settings_.idle_restart);
        if (!news) co_await connection.noop();
      } else {
        asio::steady_timer wait(executor, settings_.poll_interval);
        co_await wait.async_wait(use_awaitable);
        co_await connection.noop();
      }
      co_await sync(connection, false);
    }
  }

  awaitable<void> sync(ImapConnection &connection, bool opening) {
    SyncState state = load_state();
    MailboxState box = co_await connection.examine("INBOX");
    std::vector<uint64_t> uids;
    bool initial = false;
    if (state.uid_validity != box.uid_validity) {
      // A new account, or the server renumbered the mailbox: fetch the window again; the
      // content-derived external ids keep the host from storing anything twice.
      initial = true;
      const std::string criteria = settings_.initial_sync_days > 0
                                       ? "SINCE " + imap_date(settings_.initial_sync_days)
                                       : "ALL";
      uids = co_await connection.search_uids(criteria);
      state = SyncState{box.uid_validity, 0, 0, 0};
    } else if (box.highest_modseq != 0 && box.highest_modseq == state.highest_modseq &&
               box.uid_next != 0 && box.uid_next == state.uid_next) {
      // CONDSTORE: neither a new mail nor any change since the last finished sync, so the UID
      // search is skipped (a reconnect to an idle mailbox costs EXAMINE only). Without
      // CONDSTORE the comparison of UIDNEXT with the last UID below decides.
      if (opening) {
        host_.emit_log(account_->id, "info",
                       "reconnected: the inbox is unchanged since the last sync");
      }
    } else if (box.uid_next == 0 || box.uid_next > state.last_uid + 1) {
      uids = co_await connection.search_uids("UID " + std::to_string(state.last_uid + 1) + ":*");
    }
    uids.erase(std::remove_if(uids.begin(), uids.end(),
                              [&](uint64_t uid) { return uid <= state.last_uid; }),
               uids.end());
    std::sort(uids.begin(), uids.end());
    if (initial) progress(0, uids.size());
    if (uids.empty() && initial) save_state(state);

    size_t done = 0;
    for (size_t at = 0; at < uids.size(); at += settings_.fetch_batch) {
      std::vector<uint64_t> batch(uids.begin() + at,
                                  uids.begin() + std::min(uids.size(), at + settings_.fetch_batch));
      co_await fetch_batch(connection, batch, state);
      done += batch.size();
      if (initial) progress(done, uids.size());
    }
    // Everything the mailbox held at EXAMINE is delivered now: remember where it stood.
    if (box.highest_modseq != state.highest_modseq || box.uid_next != state.uid_next) {
      state.highest_modseq = box.highest_modseq;
      state.uid_next = box.uid_next;
      save_state(state);
    }
  }

  awaitable<void> fetch_batch(ImapConnection &connection, const std::vector<uint64_t> &batch,
                              SyncState &state) {
    // Sizes first, so an oversized mail is fetched headers-only instead of whole.
    auto sizes = co_await connection.fetch(uid_set(batch), "(UID RFC822.SIZE)");
    std::vector<uint64_t> whole;
    std::vector<uint64_t> headers_only;
    for (const auto &m : sizes) {
      if (!m.has_size) continue;
      (m.size > settings_.max_message_bytes ? headers_only : whole).push_back(m.uid);
    }
    std::vector<FetchedMessage> fetched;
    if (!whole.empty()) {
      fetched =
          co_await connection.fetch(uid_set(whole), "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[])");
    }
    std::set<uint64_t> big(headers_only.begin(), headers_only.end());
    if (!headers_only.empty()) {
      auto heads = co_await connection.fetch(uid_set(headers_only),
                                             "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER])");
      for (auto &m : heads) fetched.push_back(std::move(m));
    }
    std::sort(fetched.begin(), fetched.end(), [](const auto &a, const auto &b) {
      return a.uid < b.uid || (a.uid == b.uid && a.has_body && !b.has_body);
    });
    fetched.erase(std::unique(fetched.begin(), fetched.end(),
                              [](const auto &a, const auto &b) { return a.uid == b.uid; }),
                  fetched.end());

    // Every mail of the batch is read and its parts stored first, then they are handed over
    // together: the host syncs the stored parts to disk once and stores the messages in one
    // transaction, instead of once a mail.
    std::vector<ReceivedMail> mails;
    for (auto &m : fetched) {
      if (!m.has_body || m.uid <= state.last_uid) continue;
      mails.push_back({std::move(m.body), m.uid, state.uid_validity, m.size, m.internal_date,
                       big.count(m.uid) > 0});
    }
    if (account_->stopped) throw MailError({FailureKind::kStopped, "stopped"});
    const std::vector<Prepared> prepared = co_await prepare_all(mails);
    const bool all_stored = hand_over_all(prepared, state);
    save_state(state);
    if (!all_stored) {
      throw MailError({FailureKind::kProtocol, "the host could not store a message; retrying"});
    }
  }

  // One mail read and its parts stored, ready to hand to the host.
  struct Prepared {
    enum Outcome { kReady, kUnreadable, kStoreFailed } outcome = kReady;
    uint64_t uid = 0;
    std::optional<MessageEvent> built;
  };

  // Reads the mails and stores their parts, in their order; stops after the first mail whose
  // parts could not be stored. Reading is most of a sync's work: a batch of more than a few
  // mails is read on the two workers, half each, which also keeps the loop free for the other
  // accounts meanwhile.
  awaitable<std::vector<Prepared>> prepare_all(const std::vector<ReceivedMail> &mails) {
    auto some = [this, &mails](size_t from, size_t to) {
      std::vector<Prepared> out;
      for (size_t i = from; i < to; ++i) {
        out.push_back(prepare(mails[i]));
        if (out.back().outcome == Prepared::kStoreFailed) break;
      }
      return out;
    };
    if (mails.size() < kMailsReadOnTheLoop) co_return some(0, mails.size());
    using Part = std::packaged_task<std::vector<Prepared>()>;
    const size_t half = mails.size() / 2;
    auto first = std::make_shared<Part>([some, half] { return some(0, half); });
    auto second = std::make_shared<Part>([some, half, &mails] { return some(half, mails.size()); });
    auto first_result = first->get_future();
    auto second_result = second->get_future();
    asio::post(workers_, [first] { (*first)(); });
    asio::post(workers_, [second] { (*second)(); });
    co_await until_ready(first_result);
    co_await until_ready(second_result);
    std::vector<Prepared> out = first_result.get();
    // The second half counts only if the first stored everything it read.
    if (out.empty() || out.back().outcome != Prepared::kStoreFailed) {
      for (auto &p : second_result.get()) out.push_back(std::move(p));
    }
    co_return out;
  }

  Prepared prepare(const ReceivedMail &mail) {
    const std::string &id = account_->id;
    auto store = [&](std::string_view bytes) { return host_.put_attachment(id, bytes); };
    Prepared out;
    out.uid = mail.uid;
    try {
      out.built = build_message_event(mail, store, case_ids_);
    } catch (const std::exception &e) {
      // A parser failure on one mail must not block the ones after it.
      host_.emit_log(
          id, "warn",
          "a message could not be read (UID " + std::to_string(mail.uid) + "): " + e.what());
      out.outcome = Prepared::kUnreadable;
      return out;
    }
    if (!out.built) out.outcome = Prepared::kStoreFailed;
    return out;
  }

  // Hands the prepared mails to the host in their order, several in one "messages" event where
  // they can go together, and moves state.last_uid past each one that is durable. False when
  // the host could not store one: it and the ones after it wait for the retry.
  bool hand_over_all(const std::vector<Prepared> &prepared, SyncState &state) {
    size_t at = 0;
    while (at < prepared.size()) {
      if (account_->stopped) throw MailError({FailureKind::kStopped, "stopped"});
      // The run of readable mails from here, bounded so one event stays a few MiB.
      size_t end = at;
      size_t bytes = 0;
      while (end < prepared.size() && prepared[end].outcome == Prepared::kReady &&
             end - at < kMessagesPerEvent && bytes < kBytesPerEvent) {
        const Json &event = prepared[end].built->event;
        bytes += event.value("text", std::string()).size() +
                 event.value("html", std::string()).size() + 1024;
        ++end;
      }
      if (end - at > 1 && host_takes_batches_) {
        Json list = Json::array();
        for (size_t i = at; i < end; ++i) list.push_back(prepared[i].built->event);
        const cn_result rc =
            host_.emit(account_->id, Json{{"type", "messages"}, {"messages", std::move(list)}});
        if (rc == CN_OK) {
          for (size_t i = at; i < end; ++i) {
            if (prepared[i].built->quarantined) log_quarantined(prepared[i].uid);
          }
          state.last_uid = prepared[end - 1].uid;
          at = end;
          continue;
        }
        if (rc != CN_ERR_INVALID_ARGUMENT) return false;
        // An older host takes one message at a time: so be it, from here on.
        host_takes_batches_ = false;
      }
      if (!hand_over(prepared[at])) return false;
      state.last_uid = prepared[at].uid;
      ++at;
    }
    return true;
  }

  void log_quarantined(uint64_t uid) const {
    host_.emit_log(account_->id, "warn",
                   "a message could not be read and was quarantined (UID " + std::to_string(uid) +
                       ")");
  }

  // Hands one prepared mail to the host; true once it is durable (or recorded as quarantined,
  // or unreadable and logged).
  bool hand_over(const Prepared &mail) {
    const std::string &id = account_->id;
    if (mail.outcome == Prepared::kUnreadable) return true;
    if (mail.outcome == Prepared::kStoreFailed) return false;
    if (mail.built->quarantined) log_quarantined(mail.uid);
    const cn_result rc = host_.emit(id, mail.built->event);
    if (rc == CN_ERR_INVALID_ARGUMENT) {
      host_.emit_log(
          id, "warn",
          "the host refused a message (UID " + std::to_string(mail.uid) + "); it was skipped");
      return true;
    }
    return rc == CN_OK;
  }

  SyncState load_state() const {
    SyncState state;
    auto text = host_.get(account_->id, kStateKey);
    if (!text) return state;
    Json json = Json::parse(*text, nullptr, false);
    if (!json.is_object()) return state;
    state.uid_validity = json.value("uid_validity", uint64_t{0});
    state.last_uid = json.value("last_uid", uint64_t{0});
    state.highest_modseq = json.value("highest_modseq", uint64_t{0});
    state.uid_next = json.value("uid_next", uint64_t{0});
    return state;
  }

  void save_state(const SyncState &state) const {
    host_.put(account_->id, kStateKey,
              Json{{"uid_validity", state.uid_validity},
                   {"last_uid", state.last_uid},
                   {"highest_modseq", state.highest_modseq},
                   {"uid_next", state.uid_next}}
                  .dump());
  }

  void progress(size_t done, size_t total) const {
    host_.emit(account_->id,
               {{"type", "progress"}, {"phase", "initial_sync"}, {"done", done}, {"total", total}});
  }

  void set_state(const std::string &state, const std::string &detail,
                 const std::string &reason = {}) {
    {
      std::lock_guard lock(account_->mutex);
      if (account_->state == state && account_->detail == detail) return;
      account_->state = state;
      account_->detail = detail;
    }
    host_.emit_status(account_->id, state, account_->servers.address, detail, reason);
  }

  // The status's machine-readable reason (docs/sdk.md), which the screen translates.
  static std::string reason_code(FailureKind kind) {
    switch (kind) {
      case FailureKind::kWrongCredentials: return "auth_failed";
      case FailureKind::kTlsHandshake: return "tls_handshake_failed";
      case FailureKind::kUntrustedCertificate: return "untrusted_certificate";
      case FailureKind::kUnreachable: return "unreachable";
      case FailureKind::kTimeout: return "timeout";
      case FailureKind::kReauthorisationNeeded: return "reauth_needed";
      case FailureKind::kProtocol: return "protocol";
      case FailureKind::kStopped: return {};
    }
    return {};
  }

  sdk::Host host_;
  SyncSettings settings_;
  std::shared_ptr<MailEngine::Account> account_;
  asio::thread_pool &workers_;
  std::regex case_ids_;
  // Whether the host takes "messages" events (several mails in one): until it refuses one.
  bool host_takes_batches_ = true;
};


std::string strings_joined(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// The threading headers of a reply, from the message it answers as the host describes it
// ("reply_to": its external id and link keys): In-Reply-To is that mail's Message-ID, and
// References is that mail's own chain, oldest first, ending with it. Empty when the answered mail
// had no Message-ID (its external id is then a content hash).
Json thread_of_reply(const Json &message) {
  const Json reply_to = message.value("reply_to", Json::object());
  if (!reply_to.is_object()) return Json::object();
  const std::string external_id = reply_to.value("external_id", "");
  if (external_id.empty() || external_id.rfind("sha256:", 0) == 0) return Json::object();
  const std::string message_id = external_id.substr(0, external_id.rfind('#'));
  // The parser lists a mail's references newest first (In-Reply-To, then References from the
  // right); a References header runs oldest first.
  Json references = Json::array();
  const Json refs = reply_to.value("link_keys", Json::object()).value("thread_refs", Json::array());
  for (auto it = refs.rbegin(); it != refs.rend(); ++it) {
    if (it->is_string() && *it != message_id &&
        std::find(references.begin(), references.end(), *it) == references.end()) {
      references.push_back(*it);
    }
  }
  references.push_back(message_id);
  return {{"in_reply_to", message_id}, {"references", references}};
}

// The subject of a mail sent on a case: the case id is added (as subject_case_format says) unless
// the subject already carries it, so the customer's reply finds the case again.
std::string subject_with_case_id(const Json &message, const SyncSettings &settings) {
  std::string subject = message.value("subject", "");
  std::string case_id;
  if (auto it = message.find("case_id"); it != message.end()) {
    if (it->is_string()) case_id = it->get<std::string>();
    if (it->is_number_integer()) case_id = std::to_string(it->get<int64_t>());
  }
  if (case_id.empty()) return subject;
  const auto present = case_ids_in(subject, std::regex(settings.case_id_pattern));
  if (std::find(present.begin(), present.end(), case_id) != present.end()) return subject;
  std::string tag = settings.subject_case_format;
  for (size_t at = tag.find("{id}"); at != std::string::npos; at = tag.find("{id}", at)) {
    tag.replace(at, 4, case_id);
    at += case_id.size();
  }
  return subject.empty() ? tag : subject + " " + tag;
}

// Files a copy of a sent mail in the Sent folder, creating it when missing. `servers` by
// reference (see smtp_check_on); the caller waits for the coroutine to finish.
awaitable<void> append_to_sent(const MailServers &servers, std::string bytes,
                               std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  ImapConnection connection(executor, timeout);
  co_await connection.open(servers.imap, servers.ca_file);
  co_await connection.login(servers.credentials);
  bool filed = false;
  try {
    co_await connection.append("Sent", "\\Seen", bytes);
    filed = true;
  } catch (const MailError &) {
    // Most likely the folder does not exist yet (NO [TRYCREATE]).
  }
  if (!filed) {
    co_await connection.create("Sent");
    co_await connection.append("Sent", "\\Seen", bytes);
  }
  co_await connection.logout();
}

// Keeps the session alive for as long as its coroutine runs.
awaitable<void> run_session(std::shared_ptr<Session> session) { co_await session->run(); }

}  // namespace

MailEngine::MailEngine(sdk::Host host, SyncSettings settings)
    : host_(host), settings_(std::move(settings)), loop_(std::make_unique<Loop>()) {}

MailEngine::~MailEngine() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mutex_);
    for (const auto &[id, account] : accounts_) ids.push_back(id);
  }
  for (const auto &id : ids) stop(id);
  loop_.reset();
}

void MailEngine::start(const std::string &account_id, const MailServers &servers,
                       bool give_up_on_failure) {
  stop(account_id);
  auto account = std::make_shared<Account>();
  account->id = account_id;
  account->servers = servers;
  account->give_up_on_failure = give_up_on_failure;
  {
    std::lock_guard lock(mutex_);
    accounts_[account_id] = account;
  }
  auto session = std::make_shared<Session>(host_, settings_, account, loop_->workers);
  asio::co_spawn(loop_->io, run_session(session), asio::detached);
}

void MailEngine::stop(const std::string &account_id) {
  std::shared_ptr<Account> account;
  {
    std::lock_guard lock(mutex_);
    auto it = accounts_.find(account_id);
    if (it == accounts_.end()) return;
    account = it->second;
    accounts_.erase(it);
  }
  // Close on the loop thread and wait for that, so no event follows once stop() returns
  // (beyond one already being emitted).
  std::promise<void> closed;
  asio::post(loop_->io, [account, &closed] {
    account->stopped = true;
    if (account->connection != nullptr) account->connection->close();
    if (account->pause) account->pause->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  std::lock_guard lock(account->mutex);
  account->state = "disconnected";
}

Json MailEngine::status(const std::string &account_id) const {
  std::shared_ptr<Account> account;
  {
    std::lock_guard lock(mutex_);
    auto it = accounts_.find(account_id);
    if (it != accounts_.end()) account = it->second;
  }
  if (!account) return {{"type", "status"}, {"state", "disconnected"}};
  std::lock_guard lock(account->mutex);
  Json status = {
      {"type", "status"}, {"state", account->state}, {"account", account->servers.address}};
  if (!account->detail.empty()) status["detail"] = account->detail;
  return status;
}

sdk::Result<Json> MailEngine::send(const std::string &account_id, const Json &message) {
  std::shared_ptr<Account> account;
  {
    std::lock_guard lock(mutex_);
    auto it = accounts_.find(account_id);
    if (it != accounts_.end()) account = it->second;
  }
  if (!account) return sdk::fail(CN_ERR_STATE, "the account is not connected");

  // Every recipient is one plain address (or Name <address>): anything else could carry SMTP
  // parameters or commands onto the envelope.
  std::vector<Recipient> to, cc, bcc;
  for (auto [field, list] : {std::pair{"to", &to}, std::pair{"cc", &cc}, std::pair{"bcc", &bcc}}) {
    const Json value = message.value(field, Json(""));
    if (!value.is_string()) {
      return sdk::fail(CN_ERR_INVALID_ARGUMENT, std::string("\"") + field + "\" must be a string");
    }
    auto read = read_recipients(value.get<std::string>(), field);
    if (auto *refused = std::get_if<std::string>(&read)) {
      return sdk::fail(CN_ERR_INVALID_ARGUMENT, *refused);
    }
    *list = std::get<std::vector<Recipient>>(std::move(read));
  }
  OutgoingMail mail;
  mail.from = account->servers.address;
  for (const auto &r : to) mail.to.push_back(r.text());
  for (const auto &r : cc) mail.cc.push_back(r.text());
  mail.subject = subject_with_case_id(message, settings_);
  mail.text = message.value("text", "");
  mail.html = message.value("html", "");
  mail.automatic = message.value("automatic", false);
  const Json thread = message.contains("thread") ? message.value("thread", Json::object())
                                                 : thread_of_reply(message);
  mail.in_reply_to = thread.value("in_reply_to", "");
  for (const auto &ref : thread.value("references", Json::array())) {
    if (ref.is_string()) mail.references.push_back(ref.get<std::string>());
  }
  if (!mail.in_reply_to.empty() && std::find(mail.references.begin(), mail.references.end(),
                                             mail.in_reply_to) == mail.references.end()) {
    mail.references.push_back(mail.in_reply_to);
  }
  for (const auto &a : message.value("attachments", Json::array())) {
    auto path = host_.attachment_path(a.value("id", ""));
    if (!path) return sdk::fail(CN_ERR_NOT_FOUND, "an attachment to send was not found");
    mail.attachments.push_back({*path, a.value("name", "attachment"), a.value("mime", "")});
  }

  auto composed = compose_mail(mail);
  if (auto *refused = std::get_if<std::string>(&composed)) {
    return sdk::fail(CN_ERR_INVALID_ARGUMENT, *refused);
  }
  const auto &ready = std::get<ComposedMail>(composed);
  // The envelope holds the bare addresses; Bcc goes on the envelope only.
  std::vector<std::string> recipients;
  std::vector<std::string> bcc_addresses;
  for (const auto *list : {&to, &cc, &bcc}) {
    for (const auto &r : *list) recipients.push_back(r.address);
  }
  for (const auto &r : bcc) bcc_addresses.push_back(r.address);
  MailServers servers;
  {
    std::lock_guard lock(account->mutex);
    servers = account->servers;
  }
  bool alternate = servers.alternate_sender && account->smtp_auth_disabled;
  std::optional<MailFailure> failure;
  if (!alternate) {
    // OAuth: a current token for this send (the session's may be close to expiring).
    if (servers.credentials.access_token_source) {
      auto token = servers.credentials.access_token_source();
      if (auto *none = std::get_if<MailFailure>(&token)) {
        host_.emit_log(account_id, "error", "sending failed: " + none->detail);
        return sdk::fail(CN_ERR_AUTH, none->detail);
      }
      servers.credentials.oauth_token = std::get<std::string>(token);
    }
    failure = send_smtp(servers, recipients, ready.bytes);
    if (failure && failure->smtp_auth_disabled && servers.alternate_sender) {
      account->smtp_auth_disabled = true;
      host_.emit_log(account_id, "warn", failure->detail + ". Sending through the provider's API "
                                                           "(Microsoft Graph sendMail) instead");
      alternate = true;
    }
  }
  if (alternate) {
    // The other way reads the recipients from the headers: Bcc goes in as a header there, and
    // the provider takes it out before delivery.
    failure = servers.alternate_sender(bcc_addresses.empty()
                                           ? ready.bytes
                                           : "Bcc: " + strings_joined(bcc_addresses) + "\r\n" +
                                                 ready.bytes);
  }
  if (failure) {
    const cn_result code =
        failure->kind == FailureKind::kWrongCredentials ? CN_ERR_AUTH : CN_ERR_NETWORK;
    host_.emit_log(account_id, "error", "sending failed: " + failure->detail);
    return sdk::fail(code, failure->detail);
  }

  if (!alternate && !account->servers.server_saves_sent) {
    auto filed =
        asio::co_spawn(loop_->io, append_to_sent(servers, ready.bytes, settings_.timeout),
                       asio::use_future);
    try {
      filed.get();
    } catch (const std::exception &e) {
      // The mail went out; only the copy in Sent is missing. Say so, do not fail the send.
      host_.emit_log(account_id, "warn",
                     std::string("sent, but no copy could be filed in Sent: ") + e.what());
    }
  }
  return Json{{"external_id", ready.message_id},
              {"to", strings_joined(mail.to)},
              {"subject", mail.subject},
              {"status", "sent"}};
}

sdk::LinkKeys MailEngine::link_keys(const Json &message) const {
  return link_keys_of(message, std::regex(settings_.case_id_pattern));
}

}  // namespace connector::email
