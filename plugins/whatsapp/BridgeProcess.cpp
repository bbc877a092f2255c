#include "BridgeProcess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace connector::whatsapp {

BridgeProcess::BridgeProcess(std::vector<std::string> argv, EventHandler on_event,
                             ExitHandler on_exit)
    : argv_(std::move(argv)), on_event_(std::move(on_event)), on_exit_(std::move(on_exit)) {}

BridgeProcess::~BridgeProcess() {
  closing_ = true;
  if (to_child_ >= 0) {
    ::close(to_child_);  // end of input: the bridge flushes its state and exits
    to_child_ = -1;
  }
  if (pid_ > 0) {
    // Give it a moment to finish writing, then make sure it is gone.
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  if (reader_.joinable()) reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
  if (from_child_ >= 0) ::close(from_child_);
  if (err_from_child_ >= 0) ::close(err_from_child_);
}

sdk::Status BridgeProcess::start() {
  int in_pipe[2];
  int out_pipe[2];
  int err_pipe[2] = {-1, -1};
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 ||
      (on_stderr_ && ::pipe2(err_pipe, O_CLOEXEC) != 0)) {
    return sdk::fail(CN_ERR_INTERNAL, std::string("pipe: ") + std::strerror(errno));
  }
  std::vector<char *> args;
  for (auto &a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  // The environment is built before fork: the child of a threaded process may only exec.
  std::vector<char *> env;
  // A variable we set replaces an inherited one of the same name (the first one found wins in
  // getenv, so appending would leave e.g. a machine-wide NODE_EXTRA_CA_CERTS in force).
  auto overridden = [&](const char *entry) {
    for (const auto &e : extra_env_) {
      const size_t name = e.find('=') + 1;
      if (std::strncmp(entry, e.c_str(), name) == 0) return true;
    }
    return false;
  };
  for (char **e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) env.push_back(*e);
  }
  for (auto &e : extra_env_) env.push_back(e.data());
  env.push_back(nullptr);

  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) return sdk::fail(CN_ERR_INTERNAL, std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    // The bridge must not outlive the host, even when the host is killed.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    if (err_pipe[1] >= 0) ::dup2(err_pipe[1], 2);
    ::execvpe(args[0], args.data(), env.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  to_child_ = in_pipe[1];
  from_child_ = out_pipe[0];
  running_ = true;
  reader_ = std::thread([this] { read_loop(); });
  if (err_pipe[0] >= 0) {
    ::close(err_pipe[1]);
    err_from_child_ = err_pipe[0];
    err_reader_ = std::thread([this] { read_stderr(); });
  }
  return sdk::ok();
}

std::string BridgeProcess::stderr_line(std::string_view line) {
  for (const char *sign : {"<Buffer", "privKey", "rootKey", "chainKey", "privateKey"}) {
    if (line.find(sign) != std::string_view::npos) {
      return "(a line that looked like key material was withheld)";
    }
  }
  std::string text(line.substr(0, kMaxStderrLine));
  if (line.size() > kMaxStderrLine) text += "…";
  return text;
}

void BridgeProcess::read_stderr() {
  // Read to the end, so the bridge never blocks on a full pipe; a line longer than the limit is
  // passed on cut, the rest of it skipped.
  char chunk[8192];
  std::string line;
  bool skipping = false;
  auto pass = [&] {
    if (!line.empty() && line.find_first_not_of(" \t\r") != std::string::npos) {
      on_stderr_(stderr_line(line));
    }
    line.clear();
  };
  for (;;) {
    const ssize_t n = ::read(err_from_child_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (chunk[i] == '\n') {
        if (!skipping) pass();
        skipping = false;
        line.clear();
      } else if (!skipping) {
        line += chunk[i];
        if (line.size() > kMaxStderrLine) {
          pass();
          skipping = true;
        }
      }
    }
  }
  if (!skipping) pass();
}

bool BridgeProcess::nests_deeper_than(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

void BridgeProcess::read_loop() {
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(from_child_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    feed(std::string_view(chunk, static_cast<size_t>(n)));
  }
  running_ = false;
  answered_.notify_all();
  if (!closing_) on_exit_();
}

void BridgeProcess::feed(std::string_view bytes) {
  // What was pending holds no newline: only the new bytes are searched, so a long line that
  // arrives in many reads costs its length, not its length times the number of reads.
  size_t from = pending_.size();
  pending_.append(bytes);
  size_t start = 0;
  for (size_t end; (end = pending_.find('\n', from)) != std::string::npos;
       start = from = end + 1) {
    if (skipping_) {
      skipping_ = false;
      continue;
    }
    take_line(std::string_view(pending_.data() + start, end - start));
  }
  pending_.erase(0, start);
  if (pending_.size() > max_line_) {
    if (!skipping_) too_long(pending_);
    skipping_ = true;
    pending_.clear();
  }
}

// A line over the limit is told by its first max_line_ bytes only, whether it arrived whole or
// in pieces: how the bytes were read must not change what is reported or settled.
void BridgeProcess::too_long(std::string_view line) {
  dropped(line.substr(0, max_line_), "longer than " + std::to_string(max_line_) + " bytes");
}

void BridgeProcess::take_line(std::string_view text) {
  if (text.size() > max_line_) {
    too_long(text);
    return;
  }
  if (nests_deeper_than(text, kMaxDepth)) {
    dropped(text, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
    return;
  }
  Json line = Json::parse(text.begin(), text.end(), nullptr, false);
  if (line.is_discarded() || !line.is_object()) {
    dropped(text, "not a JSON object");
    return;
  }
  if (line.contains("id") && line["id"].is_number_integer()) {
    const int64_t id = line["id"].get<int64_t>();
    std::lock_guard lock(answers_mutex_);
    answers_[id] = std::move(line);
    answered_.notify_all();
  } else {
    // A malformed event must not take the host down: this thread is outside any verb.
    try {
      on_event_(line);
    } catch (const std::exception &e) {
      report(std::string("bridge event dropped: ") + e.what());
    }
  }
}

std::string BridgeProcess::member_text(std::string_view text, std::string_view name) {
  // Inside a JSON string every quote is escaped, so `"name":"` is found only as a member.
  const std::string key = "\"" + std::string(name) + "\":\"";
  const size_t at = text.find(key);
  if (at == std::string_view::npos) return {};
  const size_t from = at + key.size();
  const size_t end = text.find('"', from);
  if (end == std::string_view::npos || end - from > 200) return {};
  std::string value(text.substr(from, end - from));
  for (char c : value) {
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20) return {};
  }
  return value;
}

void BridgeProcess::dropped(std::string_view text, const std::string &why) {
  // What the line was, as far as it can be told, so the log names the account it concerned.
  const std::string event = member_text(text, "event");
  const std::string account = member_text(text, "account");
  const std::string external_id = event == "message" ? member_text(text, "external_id") : "";
  std::string about;
  if (!event.empty()) about += " (event \"" + event + "\"";
  if (!account.empty()) about += (about.empty() ? " (" : ", ") + ("account " + account);
  if (!external_id.empty()) about += ", message " + external_id;
  if (!about.empty()) about += ")";
  report("bridge line dropped" + about + ": " + why);
  // A message the bridge handed over and we cannot read: the bridge holds the account's traffic
  // behind its receipt until we settle it, so it is settled (as lost) at once.
  if (!account.empty() && !external_id.empty()) {
    try {
      on_event_({{"event", "unreadable"}, {"account", account}, {"of", event},
                 {"external_id", external_id}});
    } catch (const std::exception &e) {
      report(std::string("bridge event dropped: ") + e.what());
    }
  }
}

bool BridgeProcess::write_line(const std::string &line) {
  std::lock_guard lock(write_mutex_);
  if (to_child_ < 0) return false;
  const std::string text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(to_child_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void BridgeProcess::notify(const Json &message) { write_line(message.dump()); }

sdk::Result<Json> BridgeProcess::request(Json request, std::chrono::milliseconds timeout) {
  int64_t id;
  {
    std::lock_guard lock(answers_mutex_);
    id = next_id_++;
  }
  request["id"] = id;
  if (!running_ || !write_line(request.dump())) {
    return sdk::fail(CN_ERR_NETWORK, "the WhatsApp bridge is not running");
  }
  std::unique_lock lock(answers_mutex_);
  const bool got = answered_.wait_for(lock, timeout, [&] {
    return answers_.count(id) != 0 || !running_;
  });
  if (!got || answers_.count(id) == 0) {
    return sdk::fail(CN_ERR_NETWORK, running_ ? "the WhatsApp bridge did not answer in time"
                                              : "the WhatsApp bridge stopped");
  }
  Json answer = std::move(answers_[id]);
  answers_.erase(id);
  return outcome(std::move(answer));
}

sdk::Result<Json> BridgeProcess::outcome(Json answer) {
  if (!flag_of(answer, "ok")) {
    const std::string kind = text_of(answer, "kind");
    const cn_result code = kind == "invalid_argument" ? CN_ERR_INVALID_ARGUMENT
                           : kind == "state"          ? CN_ERR_STATE
                           : kind == "not_found"      ? CN_ERR_NOT_FOUND
                                                      : CN_ERR_INTERNAL;
    return sdk::fail(code, text_of(answer, "error", "bridge error"));
  }
  return answer;
}

}  // namespace connector::whatsapp
