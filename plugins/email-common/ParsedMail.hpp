// One received mail, reduced to what the host stores: texts, addresses, link keys, attachments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace connector::email {

// A part saved as an attachment; `bytes` are the decoded content, `name` is already sanitised.
struct MailAttachment {
  std::string name;
  std::string mime;
  std::string content_id;  // without angle brackets; empty unless the part is referenced by cid:
  std::string bytes;
};

struct ParsedMail {
  std::string message_id;  // without angle brackets; empty when the mail has none
  std::string from;        // the sender's address (lower-case domain), empty if unreadable
  std::string from_name;
  std::vector<std::string> to;
  std::vector<std::string> cc;
  std::string subject;                   // decoded, UTF-8
  std::string text;                      // UTF-8
  std::string html;                      // UTF-8
  std::optional<int64_t> date_ms;        // absent when the Date header is missing or broken
  std::vector<std::string> thread_refs;  // In-Reply-To first, then References right-most first
  bool automatic = false;                // auto-reply, bounce, list or loop: never opens a case
  std::string automatic_reason;          // which header made it automatic
  std::vector<MailAttachment> attachments;
  std::vector<std::string> problems;  // parts that could not be read (the rest was kept)
  std::string truncated;  // why part of the content was not read (e.g. MIME nested too deep)
};

}  // namespace connector::email
