#include "MailComposer.hpp"

#include <gmime/gmime.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include "GObjectPtr.hpp"

namespace connector::email {
namespace {

// What is wrong with a header value: nullopt, "a line break" or "a control character" (NUL and
// the other C0 characters but the tab, and DEL).
std::optional<std::string> control_in(std::string_view value, bool tab_allowed = true) {
  if (value.find_first_of("\r\n") != std::string_view::npos) return std::string("a line break");
  for (unsigned char c : value) {
    if ((c < 0x20 && !(tab_allowed && c == '\t')) || c == 0x7f) {
      return std::string("a control character");
    }
  }
  return std::nullopt;
}

bool atext(unsigned char c) {
  return std::isalnum(c) || c >= 0x80 ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
             std::string_view::npos;
}

// Why `address` is not a plain local@domain of dot-atoms, or nullopt.
std::optional<std::string> address_problem(std::string_view address) {
  if (address.empty()) return std::string("no address");
  if (auto control = control_in(address, false)) return "it contains " + *control;
  if (address.find_first_of("<>") != std::string_view::npos) {
    return std::string("it contains '<' or '>' outside of Name <address>");
  }
  if (address.find_first_of(" \t") != std::string_view::npos)
    return std::string("it contains a space");
  if (address.find('"') != std::string_view::npos) {
    return std::string("it contains a quote (quoted addresses are not supported)");
  }
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || address.find('@') != at) {
    return std::string("it is not one address of the form local@domain");
  }
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  auto dot_atom = [](std::string_view text, auto allowed) {
    if (text.empty() || text.front() == '.' || text.back() == '.' ||
        text.find("..") != std::string_view::npos) {
      return false;
    }
    return std::all_of(text.begin(), text.end(),
                       [&](char c) { return c == '.' || allowed(static_cast<unsigned char>(c)); });
  };
  if (!dot_atom(local, atext)) {
    return std::string("its local part holds a character an address cannot have");
  }
  if (!dot_atom(domain, [](unsigned char c) { return std::isalnum(c) || c == '-' || c >= 0x80; })) {
    return std::string("its domain holds a character a domain cannot have");
  }
  return std::nullopt;
}

std::string trimmed(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}

std::string strip_angles(std::string value) {
  if (value.size() >= 2 && value.front() == '<' && value.back() == '>') {
    value = value.substr(1, value.size() - 2);
  }
  return value;
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char *>(raw.data()), static_cast<int>(bytes));
  static const char *kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string domain_of(const std::string &address) {
  const size_t at = address.rfind('@');
  return at == std::string::npos ? "connector.invalid" : address.substr(at + 1);
}

GMimeObject *text_part(const char *subtype, const std::string &text) {
  GMimeTextPart *part = g_mime_text_part_new_with_subtype(subtype);
  g_mime_text_part_set_text(part, text.c_str());
  return GMIME_OBJECT(part);
}

std::variant<GMimeObject *, std::string> attachment_part(const OutgoingAttachment &a) {
  std::ifstream file(a.path, std::ios::binary);
  if (!file) return "cannot read the attachment " + a.name;
  std::ostringstream content;
  content << file.rdbuf();
  const std::string bytes = content.str();

  const std::string mime = a.mime.empty() ? "application/octet-stream" : a.mime;
  const size_t slash = mime.find('/');
  GMimePart *part =
      g_mime_part_new_with_type(mime.substr(0, slash).c_str(), mime.substr(slash + 1).c_str());
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  GPtr<GMimeDataWrapper> wrapper(
      g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(part, wrapper.get());
  g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
  g_mime_part_set_filename(part, a.name.c_str());  // GMime encodes it per RFC 2231
  g_mime_object_set_disposition(GMIME_OBJECT(part), "attachment");
  return GMIME_OBJECT(part);
}

std::variant<GMimeObject *, std::string> body_of(const OutgoingMail &mail) {
  GMimeObject *body = nullptr;
  if (!mail.html.empty() && !mail.text.empty()) {
    GMimeMultipart *alternative = g_mime_multipart_new_with_subtype("alternative");
    GPtr<GMimeObject> text(text_part("plain", mail.text));
    GPtr<GMimeObject> html(text_part("html", mail.html));
    g_mime_multipart_add(alternative, text.get());
    g_mime_multipart_add(alternative, html.get());
    body = GMIME_OBJECT(alternative);
  } else if (!mail.html.empty()) {
    body = text_part("html", mail.html);
  } else {
    body = text_part("plain", mail.text);
  }
  if (mail.attachments.empty()) return body;

  GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");
  g_mime_multipart_add(mixed, body);
  g_object_unref(body);
  for (const auto &a : mail.attachments) {
    auto part = attachment_part(a);
    if (auto *problem = std::get_if<std::string>(&part)) {
      g_object_unref(mixed);
      return *problem;
    }
    g_mime_multipart_add(mixed, std::get<GMimeObject *>(part));
    g_object_unref(std::get<GMimeObject *>(part));
  }
  return GMIME_OBJECT(mixed);
}

std::optional<std::string> refused_header(const OutgoingMail &mail) {
  if (auto control = control_in(mail.subject)) return "the subject contains " + *control;
  for (const auto *value : {&mail.from, &mail.in_reply_to}) {
    if (auto control = control_in(*value, false)) return "a header value contains " + *control;
  }
  for (const auto &ref : mail.references) {
    if (auto control = control_in(ref, false)) return "a header value contains " + *control;
  }
  for (const auto &[field, list] : {std::pair{"to", &mail.to}, std::pair{"cc", &mail.cc}}) {
    for (const auto &value : *list) {
      const auto read = parse_recipient(value);
      if (const auto *refused = std::get_if<std::string>(&read)) {
        return std::string("the ") + field + " recipient is refused: " + *refused;
      }
    }
  }
  for (const auto &a : mail.attachments) {
    if (auto control = control_in(a.name)) return "an attachment name contains " + *control;
    if (auto control = control_in(a.mime)) return "an attachment type contains " + *control;
  }
  return std::nullopt;
}

}  // namespace

std::string Recipient::text() const { return name.empty() ? address : name + " <" + address + ">"; }

std::variant<Recipient, std::string> parse_recipient(std::string_view entry) {
  const std::string text = trimmed(entry);
  if (auto control = control_in(text, false)) return "it contains " + *control;
  Recipient recipient;
  const size_t open = text.find('<');
  if (open != std::string::npos && !text.empty() && text.back() == '>') {
    recipient.name = trimmed(std::string_view(text).substr(0, open));
    recipient.address = text.substr(open + 1, text.size() - open - 2);
    if (recipient.name.find('"') != std::string::npos) {
      return std::string("its name contains a quote (quoted names are not supported)");
    }
    if (recipient.name.find_first_of("<>") != std::string::npos) {
      return std::string("its name contains '<' or '>'");
    }
  } else {
    recipient.address = text;
  }
  if (auto problem = address_problem(recipient.address)) return *problem;
  return recipient;
}

std::variant<std::vector<Recipient>, std::string> read_recipients(std::string_view list,
                                                                  std::string_view field) {
  std::vector<Recipient> out;
  size_t index = 0;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    const std::string_view entry = list.substr(start, comma - start);
    start = comma + 1;
    if (trimmed(entry).empty()) continue;
    ++index;
    auto read = parse_recipient(entry);
    if (auto *refused = std::get_if<std::string>(&read)) {
      return "recipient " + std::to_string(index) + " of \"" + std::string(field) +
             "\" is not one plain address (local@domain) or Name <address>: " + *refused;
    }
    out.push_back(std::get<Recipient>(std::move(read)));
  }
  return out;
}

std::variant<ComposedMail, std::string> compose_mail(const OutgoingMail &mail) {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
  if (auto refused = refused_header(mail)) return *refused;
  if (mail.to.empty()) return std::string("a recipient is required");

  GPtr<GMimeMessage> message(g_mime_message_new(TRUE));
  g_mime_message_add_mailbox(message.get(), GMIME_ADDRESS_TYPE_FROM, nullptr, mail.from.c_str());
  for (const auto &[type, list] :
       {std::pair{GMIME_ADDRESS_TYPE_TO, &mail.to}, std::pair{GMIME_ADDRESS_TYPE_CC, &mail.cc}}) {
    for (const auto &entry : *list) {
      const auto recipient = std::get<Recipient>(parse_recipient(entry));
      g_mime_message_add_mailbox(message.get(), type,
                                 recipient.name.empty() ? nullptr : recipient.name.c_str(),
                                 recipient.address.c_str());
    }
  }
  g_mime_message_set_subject(message.get(), mail.subject.c_str(), "utf-8");
  GDateTime *now = g_date_time_new_now_local();
  g_mime_message_set_date(message.get(), now);
  g_date_time_unref(now);

  ComposedMail composed;
  composed.message_id = random_hex(16) + "@" + domain_of(mail.from);
  g_mime_message_set_message_id(message.get(), composed.message_id.c_str());

  auto *object = GMIME_OBJECT(message.get());
  if (!mail.in_reply_to.empty()) {
    const std::string id = "<" + strip_angles(mail.in_reply_to) + ">";
    g_mime_object_set_header(object, "In-Reply-To", id.c_str(), nullptr);
  }
  std::string references;
  for (const auto &ref : mail.references) {
    references += (references.empty() ? "" : " ") + ("<" + strip_angles(ref) + ">");
  }
  if (!references.empty())
    g_mime_object_set_header(object, "References", references.c_str(), nullptr);
  if (mail.automatic) {
    g_mime_object_set_header(object, "Auto-Submitted", "auto-replied", nullptr);
    g_mime_object_set_header(object, "X-Auto-Response-Suppress", "All", nullptr);
  }

  auto body = body_of(mail);
  if (auto *problem = std::get_if<std::string>(&body)) return *problem;
  g_mime_message_set_mime_part(message.get(), std::get<GMimeObject *>(body));
  g_object_unref(std::get<GMimeObject *>(body));

  GMimeFormatOptions *format = g_mime_format_options_clone(nullptr);
  g_mime_format_options_set_newline_format(format, GMIME_NEWLINE_FORMAT_DOS);
  char *text = g_mime_object_to_string(object, format);
  g_mime_format_options_free(format);
  composed.bytes = text;
  g_free(text);
  return composed;
}

}  // namespace connector::email
