// The Node.js bridge as a child process: starts it, exchanges JSON lines with it (requests with
// an id and their answers; events without an id), and tells its owner when it exits.
//
// Threading: request() and notify() may be called from any thread, and several requests may be
// in flight at once. Events and the exit notice are delivered on the process's own reader
// thread; their handlers must not call request() (its answer would be read by that same thread)
// but may call notify().
#pragma once

#include <connector/sdk.hpp>

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace connector::whatsapp {

using sdk::Json;

// Members of a bridge line, read leniently: a member of another type than the protocol says
// reads as the fallback. A malformed line is the bridge's fault; reading it must neither throw
// (answers are also read outside any verb) nor convert out of range.
inline std::string text_of(const Json &line, const char *key, std::string fallback = {}) {
  const auto it = line.find(key);
  return it != line.end() && it->is_string() ? it->get<std::string>() : std::move(fallback);
}
// True only when the member is true.
inline bool flag_of(const Json &line, const char *key) {
  const auto it = line.find(key);
  return it != line.end() && it->is_boolean() && it->get<bool>();
}
// An integer member (a number with a fraction is cut to its whole part, as before), or the
// fallback when it is missing, not a number, or beyond 64 bits.
inline int64_t integer_of(const Json &line, const char *key, int64_t fallback = 0) {
  const auto it = line.find(key);
  if (it == line.end()) return fallback;
  if (it->is_number_unsigned()) {
    const uint64_t value = it->get<uint64_t>();
    return value <= uint64_t(INT64_MAX) ? static_cast<int64_t>(value) : fallback;
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    const double value = it->get<double>();
    // -2^63 is exact as a double; 2^63 is the first value beyond the range.
    return value >= -9223372036854775808.0 && value < 9223372036854775808.0
               ? static_cast<int64_t>(value)
               : fallback;
  }
  return fallback;
}

class BridgeProcess {
 public:
  using EventHandler = std::function<void(const Json &)>;
  using ExitHandler = std::function<void()>;
  using LogHandler = std::function<void(const std::string &)>;

  // Lines nested deeper than this are dropped: copying or destroying such a value recurses once
  // per level and would overflow the stack.
  static constexpr int kMaxDepth = 64;
  // Media travels as base64 inside one line, so the cap on a line is generous.
  static constexpr size_t kDefaultMaxLine = size_t{128} << 20;

  // argv[0] is the program (looked up in PATH), e.g. {"node", "/path/bridge.mjs"}.
  BridgeProcess(std::vector<std::string> argv, EventHandler on_event, ExitHandler on_exit);

  // Closes the bridge's stdin (it flushes and exits), waits briefly, then kills it.
  ~BridgeProcess();
  BridgeProcess(const BridgeProcess &) = delete;
  BridgeProcess &operator=(const BridgeProcess &) = delete;

  // Adds NAME=value to the environment the process starts with (before start()).
  void set_environment(const std::string &name, const std::string &value) {
    extra_env_.push_back(name + "=" + value);
  }

  // Where dropped lines are reported (before start()); without one they go unreported.
  void set_log_handler(LogHandler on_log) { on_log_ = std::move(on_log); }

  // Where the lines the bridge writes on its stderr go (before start()), each at most
  // kMaxStderrLine bytes, a line that looks like key material withheld; without one, the
  // bridge's stderr is this process's.
  void set_stderr_handler(LogHandler on_stderr) { on_stderr_ = std::move(on_stderr); }
  static constexpr size_t kMaxStderrLine = 2000;

  // A stderr line as it is passed on: cut to kMaxStderrLine bytes, and replaced by a notice when
  // it looks like a printed key (a Node Buffer, a Signal session's key members).
  static std::string stderr_line(std::string_view line);

  // The longest line accepted from the bridge, in bytes (before start()); a longer one is
  // dropped whole, up to its newline.
  void set_max_line_bytes(size_t bytes) { max_line_ = bytes; }

  // Whether the JSON text nests arrays or objects deeper than `limit` (strings are skipped).
  static bool nests_deeper_than(std::string_view text, int limit);

  // Starts the process; false (with a reason) when it could not be spawned.
  sdk::Status start();

  // Sends one request and waits for its answer: the answer's members, or an Error with the
  // bridge's message (CN_ERR_NETWORK when the bridge is gone or did not answer in time; the
  // code of the answer's `kind` when the bridge refused: invalid_argument, state, not_found).
  sdk::Result<Json> request(Json request, std::chrono::milliseconds timeout);

  // Sends one line that expects no answer.
  void notify(const Json &message);

  // Takes bytes the bridge wrote on its stdout, as they were read (any split): each complete line
  // within the limits is handed on, an answer to its waiting request and an event to the event
  // handler. The reader thread calls it for every read; without start(), a caller may feed the
  // protocol itself (one caller at a time).
  void feed(std::string_view bytes);

  // What request() makes of an answer: its members when `ok` is true, else an Error with the
  // bridge's message and the code of its `kind`.
  static sdk::Result<Json> outcome(Json answer);

  pid_t pid() const { return pid_; }
  bool running() const { return running_; }

 private:
  void read_loop();
  void read_stderr();
  void take_line(std::string_view text);
  // Reports a line that is dropped, with what can be told of it (event, account, message id);
  // an unreadable message event is handed on as an "unreadable" event.
  void dropped(std::string_view text, const std::string &why);
  void too_long(std::string_view line);
  // The value of the first string member `name` in JSON text that may be broken, or empty.
  static std::string member_text(std::string_view text, std::string_view name);
  void report(const std::string &text) const {
    if (on_log_) on_log_(text);
  }
  bool write_line(const std::string &line);

  std::vector<std::string> argv_;
  std::vector<std::string> extra_env_;
  EventHandler on_event_;
  ExitHandler on_exit_;
  LogHandler on_log_;
  LogHandler on_stderr_;
  size_t max_line_ = kDefaultMaxLine;
  // Read but not yet a whole line; skipping_ is set while the rest of an over-long line is being
  // thrown away, up to its newline.
  std::string pending_;
  bool skipping_ = false;
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  int err_from_child_ = -1;
  std::thread err_reader_;
  std::atomic<bool> running_{false};
  std::atomic<bool> closing_{false};
  std::thread reader_;

  std::mutex write_mutex_;
  std::mutex answers_mutex_;
  std::condition_variable answered_;
  std::map<int64_t, Json> answers_;
  int64_t next_id_ = 1;
};

}  // namespace connector::whatsapp
