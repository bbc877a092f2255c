// Turns one received mail into the SDK's "message" event (see sdk.h and docs/sdk.md).
#pragma once

#include <connector/sdk.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <string_view>

namespace connector::email {

struct ReceivedMail {
  std::string raw;  // the whole mail, or only its header block when headers_only
  uint64_t uid = 0;
  uint64_t uid_validity = 0;
  uint64_t size = 0;          // RFC822.SIZE
  std::string internal_date;  // IMAP INTERNALDATE, the fallback for a broken Date header
  bool headers_only = false;  // over the size limit: the body was not fetched
};

// Stores bytes in the host's attachment store; returns the id, or nullopt when it failed.
using AttachmentSink = std::function<std::optional<std::string>(std::string_view bytes)>;

struct MessageEvent {
  sdk::Json event;
  bool quarantined = false;  // the mail could not be read: recorded raw, marked automatic
};

// Builds the event, saving the raw mail and every attachment through `store` first. Returns
// nullopt when the attachment store failed (the caller retries later; nothing is acknowledged).
std::optional<MessageEvent> build_message_event(const ReceivedMail &mail,
                                                const AttachmentSink &store,
                                                const std::regex &case_id_pattern);

// Link keys of an event built above: sender, case ids in the subject, thread references.
sdk::LinkKeys link_keys_of(const sdk::Json &event, const std::regex &case_id_pattern);

// Case ids found in a subject with the configured pattern (its first group).
std::vector<std::string> case_ids_in(const std::string &subject, const std::regex &pattern);

// Milliseconds since the epoch of an IMAP INTERNALDATE ("17-Jul-1996 02:44:25 -0700"), or 0.
int64_t internal_date_ms(const std::string &text);

}  // namespace connector::email
