#include "MailComposer.hpp"

#include "GObjectPtr.hpp"

#include <gmime/gmime.h>
#include <openssl/rand.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

namespace connector::email {
namespace {


bool has_line_break(const std::string &value) {
  return value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos;
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
  if (has_line_break(mail.subject)) return std::string("the subject contains a line break");
  if (has_line_break(mail.from) || has_line_break(mail.in_reply_to)) {
    return std::string("a header value contains a line break");
  }
  for (const auto &list : {mail.to, mail.cc, mail.references}) {
    for (const auto &value : list) {
      if (has_line_break(value)) return std::string("a header value contains a line break");
    }
  }
  for (const auto &a : mail.attachments) {
    if (has_line_break(a.name) || has_line_break(a.mime)) {
      return std::string("an attachment name contains a line break");
    }
  }
  return std::nullopt;
}

}  // namespace

std::variant<ComposedMail, std::string> compose_mail(const OutgoingMail &mail) {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
  if (auto refused = refused_header(mail)) return *refused;
  if (mail.to.empty()) return std::string("a recipient is required");

  GPtr<GMimeMessage> message(g_mime_message_new(TRUE));
  g_mime_message_add_mailbox(message.get(), GMIME_ADDRESS_TYPE_FROM, nullptr, mail.from.c_str());
  for (const auto &to : mail.to) {
    g_mime_message_add_mailbox(message.get(), GMIME_ADDRESS_TYPE_TO, nullptr, to.c_str());
  }
  for (const auto &cc : mail.cc) {
    g_mime_message_add_mailbox(message.get(), GMIME_ADDRESS_TYPE_CC, nullptr, cc.c_str());
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
