// Builds outgoing mail with GMime: text and HTML alternatives, attachments, threading headers,
// a fresh Message-ID. Header values with CR or LF are refused, never passed on.
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace connector::email {

struct OutgoingAttachment {
  std::string path;  // file to read
  std::string name;
  std::string mime;
};

struct OutgoingMail {
  std::string from;
  std::vector<std::string> to;
  std::vector<std::string> cc;
  std::string subject;
  std::string text;
  std::string html;
  std::string in_reply_to;              // a Message-ID, with or without angle brackets
  std::vector<std::string> references;  // oldest first
  std::vector<OutgoingAttachment> attachments;
  bool automatic = false;  // marks itself as an auto-reply (Auto-Submitted) so loops stop
};

struct ComposedMail {
  std::string message_id;  // without angle brackets
  std::string bytes;       // CRLF line endings, ready for SMTP and APPEND
};

// Returns the composed mail, or a message saying which value was refused.
std::variant<ComposedMail, std::string> compose_mail(const OutgoingMail &mail);

}  // namespace connector::email
