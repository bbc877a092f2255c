// The plugin↔bridge protocol as the WhatsApp plugin reads it: whatever bytes the Node bridge
// writes on its stdout go through the plugin's own line reader and event handling (a plugin made
// by the library's entry point, as the host makes it, with an in-memory host) and its reading of
// answers, without a fault; the reader hands on the same events and drops the same lines however
// the bytes are split into reads; nothing the plugin hands the host is malformed.
//
// An input is the bridge's stdout: JSON lines, e.g. the seeds in corpus/bridge/.
#include "FuzzCheck.hpp"
#include "WhatsAppPlugin.hpp"

#include <connector/sdk.hpp>

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

extern "C" cn_result connector_plugin_entry(const cn_host_api *host, cn_plugin_api *api,
                                            char **error);

namespace {

using connector::whatsapp::BridgeProcess;
using connector::whatsapp::Json;

// What the plugin asked of the host; the plugin calls it from this thread only (no bridge runs).
struct FakeHost {
  std::map<std::string, std::string> store;  // "account\nkey" → value
  std::set<std::string> accounts;            // every account an event was emitted for
  std::vector<std::string> messages;         // the first message events, as emitted
  size_t emitted = 0;
};

FakeHost *host_of(void *host) { return static_cast<FakeHost *>(host); }

cn_result emit(void *host, const char *account, const char *text) {
  FUZZ_CHECK(account != nullptr && text != nullptr, "an event without account or text");
  const Json event = Json::parse(text, nullptr, false);
  FUZZ_CHECK(event.is_object(), "an event that is not a JSON object");
  FUZZ_CHECK(event.contains("type") && event["type"].is_string(), "an event without a type");
  if (event["type"] == "message") {
    if (host_of(host)->messages.size() < 8) host_of(host)->messages.push_back(text);
    for (const auto &attachment : event.value("attachments", Json::array())) {
      const Json id = attachment.value("id", Json());
      FUZZ_CHECK(id.is_string() && id.get<std::string>().size() == 64,
                 "a message names an attachment the store did not give");
    }
  }
  host_of(host)->accounts.insert(account);
  ++host_of(host)->emitted;
  return CN_OK;
}

cn_result store_put(void *host, const char *account, const char *key, const void *value,
                    size_t size, int) {
  host_of(host)->store[std::string(account) + "\n" + key] =
      std::string(static_cast<const char *>(value), size);
  return CN_OK;
}

cn_result store_get(void *host, const char *account, const char *key, char **value,
                    size_t *size) {
  auto &store = host_of(host)->store;
  const auto it = store.find(std::string(account) + "\n" + key);
  if (it == store.end()) return CN_ERR_NOT_FOUND;
  *value = static_cast<char *>(std::malloc(it->second.size() + 1));
  std::memcpy(*value, it->second.data(), it->second.size());
  *size = it->second.size();
  return CN_OK;
}

cn_result store_delete(void *host, const char *account, const char *key) {
  return host_of(host)->store.erase(std::string(account) + "\n" + key) ? CN_OK : CN_ERR_NOT_FOUND;
}

cn_result attachment_put(void *, const char *, const void *data, size_t size, char id[65]) {
  // Not SHA-256, but 64 hex digits that depend on the bytes, as the plugin expects.
  uint64_t hash = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ static_cast<const uint8_t *>(data)[i]) * 1099511628211ull;
  for (int i = 0; i < 64; ++i) id[i] = "0123456789abcdef"[(hash >> ((i % 16) * 4)) & 15];
  id[64] = '\0';
  return CN_OK;
}

cn_result attachment_path(void *, const char *, char **) { return CN_ERR_NOT_FOUND; }

void log(void *, const char *, cn_log_level, const char *message) {
  FUZZ_CHECK(message != nullptr, "a log line without text");
}

// The reads the input arrives in: lengths from a generator seeded by the input, mostly short.
std::vector<std::string_view> pieces_of(std::string_view input) {
  uint64_t state = input.size() * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < input.size() && i < 16; ++i) state = state * 31 + uint8_t(input[i]);
  std::vector<std::string_view> pieces;
  for (size_t at = 0; at < input.size();) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const size_t bound = (state >> 60) == 0 ? 65536 : 64;
    const size_t length = std::min(input.size() - at, 1 + (state >> 33) % bound);
    pieces.push_back(input.substr(at, length));
    at += length;
  }
  return pieces;
}

struct ReaderRun {
  std::vector<std::string> events;
  size_t reports = 0;
};

// The reader alone, with a small line limit so that the over-long paths are reached.
ReaderRun read_in(const std::vector<std::string_view> &pieces, size_t max_line) {
  ReaderRun run;
  BridgeProcess reader({"unused"}, [&](const Json &event) { run.events.push_back(event.dump()); },
                       [] {});
  reader.set_log_handler([&](const std::string &) { ++run.reports; });
  reader.set_max_line_bytes(max_line);
  for (auto piece : pieces) reader.feed(piece);
  return run;
}

// The plugin's reading of an answer never throws: the answer to hello is read on the thread that
// restarts the bridge, outside any verb, where an exception would end the host.
void read_answer(const Json &line) {
  try {
    const auto outcome = BridgeProcess::outcome(line);
    (void)connector::whatsapp::read_hello(outcome, "/bridge");
    (void)connector::whatsapp::logout_unconfirmed(outcome);
    if (outcome) (void)connector::whatsapp::sent_answer(outcome.value(), "+5511988887777");
  } catch (const std::exception &e) {
    std::fprintf(stderr, "answer %s: %s\n", line.dump().substr(0, 200).c_str(), e.what());
    FUZZ_CHECK(false, "reading an answer threw");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string_view input(reinterpret_cast<const char *>(data), size);
  const auto pieces = pieces_of(input);

  // However the bytes are split into reads, the same events and the same drops.
  const size_t max_line = 32 + size % 2048;
  const ReaderRun whole = read_in({input}, max_line);
  const ReaderRun split = read_in(pieces, max_line);
  FUZZ_CHECK(whole.events == split.events, "the events depend on how the bytes were read");
  FUZZ_CHECK(whole.reports == split.reports, "the drops depend on how the bytes were read");

  // The plugin itself, as the host loads it, with the settings' default line limit.
  FakeHost fake;
  cn_host_api host_api{};
  host_api.struct_size = sizeof host_api;
  host_api.host = &fake;
  host_api.alloc = std::malloc;
  host_api.free = std::free;
  host_api.log = log;
  host_api.emit = emit;
  host_api.store_put = store_put;
  host_api.store_get = store_get;
  host_api.store_delete = store_delete;
  host_api.attachment_put = attachment_put;
  host_api.attachment_path = attachment_path;
  cn_plugin_api plugin_api{};
  FUZZ_CHECK(connector_plugin_entry(&host_api, &plugin_api, nullptr) == CN_OK,
             "the plugin did not start");
  auto *instance = static_cast<connector::sdk::detail::Instance *>(plugin_api.plugin);
  {
    auto reader = connector::whatsapp::bridge_reader(*instance->plugin);
    for (auto piece : pieces) reader->feed(piece);
  }
  // What the events left behind reads back as a well-formed status, and the verbs that read the
  // stored session (pairing again, resuming) and the link keys of a message take it without a
  // fault. No bridge runs: the verbs that would ask it answer that it is restarting.
  const std::set<std::string> accounts = fake.accounts;
  for (const auto &account : accounts) {
    char *out = nullptr;
    char *error = nullptr;
    FUZZ_CHECK(plugin_api.status(plugin_api.plugin, account.c_str(), &out, &error) == CN_OK,
               "the status of an account the bridge named failed");
    FUZZ_CHECK(Json::parse(out, nullptr, false).is_object(), "a malformed status");
    std::free(out);
    std::free(error);
    error = nullptr;
    (void)plugin_api.connect(plugin_api.plugin, account.c_str(), R"({"resume":true})", &error);
    std::free(error);
    error = nullptr;
    (void)plugin_api.refresh_qr(plugin_api.plugin, account.c_str(), &error);
    std::free(error);
  }
  const std::vector<std::string> messages = fake.messages;
  for (const auto &message : messages) {
    char *out = nullptr;
    char *error = nullptr;
    if (plugin_api.link(plugin_api.plugin, message.c_str(), &out, &error) == CN_OK) {
      FUZZ_CHECK(Json::parse(out, nullptr, false).is_object(), "malformed link keys");
    }
    std::free(out);
    std::free(error);
  }
  plugin_api.shutdown(plugin_api.plugin);

  // Every answer line, as the plugin reads answers (the reader keeps them for request()).
  for (size_t start = 0, end; (end = input.find('\n', start)) != std::string_view::npos;
       start = end + 1) {
    const std::string_view text = input.substr(start, end - start);
    if (BridgeProcess::nests_deeper_than(text, BridgeProcess::kMaxDepth)) continue;
    const Json line = Json::parse(text.begin(), text.end(), nullptr, false);
    if (line.is_object() && line.contains("id") && line["id"].is_number_integer()) {
      read_answer(line);
    }
  }
  return 0;
}
