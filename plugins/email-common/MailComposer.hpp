// Builds outgoing mail with GMime: text and HTML alternatives, attachments, threading headers,
// a fresh Message-ID. Header values with CR, LF or other control characters, and recipients
// that are not one plain address, are refused, never passed on.
#pragma once

#include <string>
#include <string_view>
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
  std::vector<std::string> to;  // each read by parse_recipient
  std::vector<std::string> cc;
  std::string subject;
  std::string text;
  std::string html;
  std::string in_reply_to;              // a Message-ID, with or without angle brackets
  std::vector<std::string> references;  // oldest first
  std::vector<OutgoingAttachment> attachments;
  bool automatic = false;  // marks itself as an auto-reply (Auto-Submitted) so loops stop
};

// One recipient of an outgoing mail: a plain address (local@domain), with an optional name.
struct Recipient {
  std::string name;          // may be empty
  std::string address;       // local@domain
  std::string text() const;  // "Name <address>", or the address alone
};

// Reads one recipient: "local@domain" or "Name <local@domain>". The address has no spaces,
// quotes, angle brackets, control characters or other characters outside RFC 5321's dot-atoms
// (UTF-8 is allowed); the name has no quotes, angle brackets or control characters. Returns the
// recipient or the reason it was refused.
std::variant<Recipient, std::string> parse_recipient(std::string_view entry);

// Reads a comma-separated list of recipients of the header `field` ("to", "cc", "bcc"); the
// message names the field and the entry refused.
std::variant<std::vector<Recipient>, std::string> read_recipients(std::string_view list,
                                                                  std::string_view field);

struct ComposedMail {
  std::string message_id;  // without angle brackets
  std::string bytes;       // CRLF line endings, ready for SMTP and APPEND
};

// Returns the composed mail, or a message saying which value was refused.
std::variant<ComposedMail, std::string> compose_mail(const OutgoingMail &mail);

}  // namespace connector::email
