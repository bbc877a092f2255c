#include "MailParser.hpp"

#include <gmime/gmime.h>
#include <uchardet.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <regex>

#include "GObjectPtr.hpp"
#include "Winmail.hpp"

namespace connector::email {
namespace {

void ensure_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

// Parser options shared by every parse: loose everywhere, fallbacks for unlabelled 8-bit headers.
GMimeParserOptions *parser_options() {
  static GMimeParserOptions *options = [] {
    GMimeParserOptions *o = g_mime_parser_options_new();
    g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    static const char *fallback[] = {"utf-8", "windows-1252", nullptr};
    g_mime_parser_options_set_fallback_charsets(o, fallback);
    return o;
  }();
  return options;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

bool valid_utf8(std::string_view bytes) {
  return g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr) != 0;
}

std::string guess_charset(std::string_view bytes) {
  uchardet_t detector = uchardet_new();
  uchardet_handle_data(detector, bytes.data(), bytes.size());
  uchardet_data_end(detector);
  std::string charset = uchardet_get_charset(detector);
  uchardet_delete(detector);
  return charset.empty() ? "windows-1252" : charset;
}

// Browsers read these labels as windows-1252, a superset; mail clients mislabel it constantly.
std::string effective_charset(std::string_view charset) {
  const std::string name = lower(trim(charset));
  if (name == "iso-8859-1" || name == "iso8859-1" || name == "latin1" || name == "us-ascii" ||
      name == "ascii" || name == "iso_8859-1") {
    return "windows-1252";
  }
  return name;
}

std::string convert(std::string_view bytes, const std::string &charset) {
  gsize written = 0;
  GError *error = nullptr;
  char *out = g_convert_with_fallback(bytes.data(), static_cast<gssize>(bytes.size()), "UTF-8",
                                      charset.c_str(), "?", nullptr, &written, &error);
  if (out == nullptr) {
    g_clear_error(&error);
    return {};
  }
  std::string result(out, written);
  g_free(out);
  return result;
}

// Replaces every invalid byte so the result is always valid UTF-8.
std::string scrub_utf8(std::string_view bytes) {
  char *valid = g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size()));
  std::string result(valid);
  g_free(valid);
  return result;
}

// A decoded header value made safe to store and to answer with: every C0 or C1 control
// character and DEL (CR and LF that an encoded word decoded to, tabs too) becomes a space, runs
// of spaces become one, and the ends are trimmed.
std::string single_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool c1 = c == 0xC2 && i + 1 < text.size() &&
                    static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7f || c == ' ' || c1) {
      if (c1) ++i;
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(c);
  }
  return out;
}

std::string bytes_of(GByteArray *array) {
  return std::string(reinterpret_cast<const char *>(array->data), array->len);
}

// The decoded content of a leaf part (transfer encoding undone, charset untouched).
std::string decoded_content(GMimePart *part) {
  GMimeDataWrapper *content = g_mime_part_get_content(part);
  if (content == nullptr) return {};
  GPtr<GMimeStream> stream(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(content, stream.get());
  return bytes_of(g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream.get())));
}

std::string serialized(GMimeObject *object) {
  GPtr<GMimeStream> stream(g_mime_stream_mem_new());
  g_mime_object_write_to_stream(object, nullptr, stream.get());
  return bytes_of(g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream.get())));
}

std::string strip_angles(std::string_view id) {
  std::string value = trim(id);
  if (value.size() >= 2 && value.front() == '<' && value.back() == '>') {
    value = value.substr(1, value.size() - 2);
  }
  return value;
}

std::vector<std::string> references_of(const char *header) {
  std::vector<std::string> ids;
  if (header == nullptr) return ids;
  GMimeReferences *refs = g_mime_references_parse(parser_options(), header);
  if (refs == nullptr) return ids;
  for (int i = 0; i < g_mime_references_length(refs); ++i) {
    std::string id = single_line(scrub_utf8(g_mime_references_get_message_id(refs, i)));
    if (!id.empty()) ids.push_back(std::move(id));
  }
  g_mime_references_free(refs);
  return ids;
}

void add_addresses(InternetAddressList *list, std::vector<std::string> &out) {
  if (list == nullptr) return;
  for (int i = 0; i < internet_address_list_length(list); ++i) {
    InternetAddress *address = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(address)) {
      add_addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(address)), out);
      continue;
    }
    const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address));
    if (addr == nullptr) continue;
    std::string clean = single_line(scrub_utf8(addr));
    if (!clean.empty()) out.push_back(std::move(clean));
  }
}

// GMime 3.2 joins adjacent B-encoded words of one charset before decoding them (to mend
// characters split across words) but stops at the first '=' padding, dropping the rest of the
// subject. Decoding each word's base64 ourselves and re-encoding the run as one word keeps both
// the mending and the text.
std::string join_base64_words(const std::string &raw) {
  static const std::regex kWord(R"(=\?([^?\s]+)\?[Bb]\?([A-Za-z0-9+/=]*)\?=)");
  std::string out;
  std::string run_charset;
  std::string run_bytes;
  size_t copied = 0;
  size_t run_end = std::string::npos;
  auto flush = [&] {
    if (run_charset.empty()) return;
    gchar *encoded =
        g_base64_encode(reinterpret_cast<const guchar *>(run_bytes.data()), run_bytes.size());
    out += "=?" + run_charset + "?B?" + encoded + "?=";
    g_free(encoded);
    run_charset.clear();
    run_bytes.clear();
  };
  for (auto it = std::sregex_iterator(raw.begin(), raw.end(), kWord); it != std::sregex_iterator();
       ++it) {
    const size_t start = static_cast<size_t>(it->position());
    const std::string between = raw.substr(copied, start - copied);
    const bool adjacent = run_end != std::string::npos &&
                          between.find_first_not_of(" \t\r\n") == std::string::npos &&
                          g_ascii_strcasecmp((*it)[1].str().c_str(), run_charset.c_str()) == 0;
    if (!adjacent) {
      flush();
      out += between;
      run_charset = (*it)[1].str();
    }
    gsize size = 0;
    guchar *bytes = g_base64_decode((*it)[2].str().c_str(), &size);
    run_bytes.append(reinterpret_cast<const char *>(bytes), size);
    g_free(bytes);
    copied = start + static_cast<size_t>(it->length());
    run_end = copied;
  }
  flush();
  out += raw.substr(copied);
  return out;
}

// A header's text, decoded from its raw form (see join_base64_words); empty when absent.
std::optional<std::string> decoded_header(GMimeObject *object, const char *name) {
  GMimeHeader *header = g_mime_header_list_get_header(g_mime_object_get_header_list(object), name);
  if (header == nullptr) return std::nullopt;
  const char *raw = g_mime_header_get_raw_value(header);
  if (raw == nullptr) return std::nullopt;
  std::string unfolded;
  for (const char *p = raw; *p != '\0'; ++p) {
    if (*p != '\r' && *p != '\n') unfolded += *p;
  }
  char *text =
      g_mime_utils_header_decode_text(parser_options(), join_base64_words(unfolded).c_str());
  std::string result = single_line(scrub_utf8(text));
  g_free(text);
  return result;
}

const char *header(GMimeObject *object, const char *name) {
  return g_mime_object_get_header(object, name);
}

// Auto-replies, bounces, lists and loops (the header list of notes/email.md).
void mark_automatic(GMimeMessage *message, ParsedMail &mail) {
  auto *object = GMIME_OBJECT(message);
  auto is = [&](const std::string &reason) {
    mail.automatic = true;
    mail.automatic_reason = reason;
  };
  if (const char *v = header(object, "Auto-Submitted"); v != nullptr && lower(trim(v)) != "no") {
    return is("Auto-Submitted");
  }
  for (const char *name : {"X-Autoreply", "X-Autorespond", "X-Loop", "X-Auto-Response-Suppress",
                           "List-Id", "List-Unsubscribe"}) {
    if (header(object, name) != nullptr) return is(name);
  }
  if (const char *v = header(object, "Precedence")) {
    const std::string p = lower(trim(v));
    if (p == "bulk" || p == "junk" || p == "list" || p == "auto_reply") return is("Precedence");
  }
  if (const char *v = header(object, "Return-Path"); v != nullptr && trim(v) == "<>") {
    return is("empty Return-Path");
  }
  const std::string local = lower(mail.from.substr(0, mail.from.find('@')));
  if (local == "mailer-daemon" || local == "postmaster") return is("sender " + local);
  GMimeContentType *type = g_mime_object_get_content_type(g_mime_message_get_mime_part(message));
  if (type != nullptr && g_mime_content_type_is_type(type, "multipart", "report")) {
    return is("multipart/report");
  }
}

void read_headers(GMimeMessage *message, ParsedMail &mail) {
  if (const char *id = g_mime_message_get_message_id(message)) {
    mail.message_id = single_line(scrub_utf8(strip_angles(id)));
  }
  if (auto subject = decoded_header(GMIME_OBJECT(message), "Subject")) mail.subject = *subject;

  InternetAddressList *from = g_mime_message_get_from(message);
  if (from != nullptr && internet_address_list_length(from) > 0) {
    InternetAddress *first = internet_address_list_get_address(from, 0);
    if (const char *name = internet_address_get_name(first)) {
      mail.from_name = single_line(scrub_utf8(name));
    }
    std::vector<std::string> addresses;
    add_addresses(from, addresses);
    if (!addresses.empty()) mail.from = addresses.front();
  }
  add_addresses(g_mime_message_get_to(message), mail.to);
  add_addresses(g_mime_message_get_cc(message), mail.cc);

  // GMime gives no date for a missing or unparseable header; the caller falls back.
  if (GDateTime *date = g_mime_message_get_date(message)) {
    mail.date_ms = g_date_time_to_unix(date) * 1000;
  }

  auto *object = GMIME_OBJECT(message);
  for (const auto &id : references_of(header(object, "In-Reply-To"))) {
    mail.thread_refs.push_back(id);
  }
  auto references = references_of(header(object, "References"));
  for (auto it = references.rbegin(); it != references.rend(); ++it) {
    if (std::find(mail.thread_refs.begin(), mail.thread_refs.end(), *it) ==
        mail.thread_refs.end()) {
      mail.thread_refs.push_back(*it);
    }
  }
  mark_automatic(message, mail);
}

// Line breaks as LF, without the trailing ones a transport adds.
std::string body_text(std::string text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string mime_type_of(GMimeObject *object) {
  GMimeContentType *type = g_mime_object_get_content_type(object);
  if (type == nullptr) return "application/octet-stream";
  char *text = g_mime_content_type_get_mime_type(type);
  std::string result = lower(text);
  g_free(text);
  return result;
}

std::string extension_for(const std::string &mime) {
  if (mime == "message/rfc822") return ".eml";
  if (mime == "text/plain") return ".txt";
  if (mime == "text/html") return ".html";
  if (mime.rfind("image/", 0) == 0) return "." + mime.substr(6);
  return ".bin";
}

constexpr int kMaxMimeDepth = 32;

class PartWalker {
 public:
  explicit PartWalker(ParsedMail &mail) : mail_(mail) {}

  void walk(GMimeObject *object, int depth) {
    // Deeply nested multiparts are an attack, not a mail: what lies deeper is not read, and the
    // mail says so (the raw mail keeps it).
    if (object == nullptr) return;
    if (depth > kMaxMimeDepth) {
      mail_.truncated = "mime nesting deeper than " + std::to_string(kMaxMimeDepth) + " levels";
      return;
    }
    if (GMIME_IS_MULTIPART(object)) {
      auto *multipart = GMIME_MULTIPART(object);
      for (int i = 0; i < g_mime_multipart_get_count(multipart); ++i) {
        walk(g_mime_multipart_get_part(multipart, i), depth + 1);
      }
      return;
    }
    if (GMIME_IS_MESSAGE_PART(object)) return keep_forwarded(object);
    if (GMIME_IS_PART(object)) return leaf(GMIME_PART(object));
  }

 private:
  // A forwarded mail is kept whole, as an .eml attachment named after its subject.
  void keep_forwarded(GMimeObject *object) {
    GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
    if (inner == nullptr) return;
    const char *subject = g_mime_message_get_subject(inner);
    std::string name = subject != nullptr && *subject != '\0' ? subject : "forwarded";
    mail_.attachments.push_back(
        {sanitize_file_name(name + ".eml"), "message/rfc822", "", serialized(GMIME_OBJECT(inner))});
  }

  void leaf(GMimePart *part) {
    auto *object = GMIME_OBJECT(part);
    const std::string mime = mime_type_of(object);
    GMimeContentDisposition *disposition = g_mime_object_get_content_disposition(object);
    const bool attachment =
        disposition != nullptr && g_mime_content_disposition_is_attachment(disposition);
    const char *filename = g_mime_part_get_filename(part);

    if (!attachment && filename == nullptr && (mime == "text/plain" || mime == "text/html")) {
      std::string &target = mime == "text/plain" ? mail_.text : mail_.html;
      if (target.empty()) {
        GMimeContentType *type = g_mime_object_get_content_type(object);
        const char *charset = g_mime_content_type_get_parameter(type, "charset");
        target = body_text(to_utf8(decoded_content(part), charset == nullptr ? "" : charset));
        return;
      }
    }
    MailAttachment saved;
    saved.mime = mime;
    const std::string fallback = "attachment-" + std::to_string(++unnamed_) + extension_for(mime);
    saved.name = sanitize_file_name(filename != nullptr ? scrub_utf8(filename) : fallback);
    if (saved.name.empty()) saved.name = fallback;
    if (const char *cid = g_mime_object_get_content_id(object))
      saved.content_id = strip_angles(cid);
    saved.bytes = decoded_content(part);
    if (is_winmail(saved.mime, saved.name)) {
      // Outlook's winmail.dat: its files instead of the opaque archive when it can be read
      // (see Winmail.hpp); the raw mail keeps the archive either way.
      if (auto files = unpack_winmail(saved.bytes)) {
        for (auto &file : *files) mail_.attachments.push_back(std::move(file));
        return;
      }
    }
    mail_.attachments.push_back(std::move(saved));
  }

  ParsedMail &mail_;
  int unnamed_ = 0;
};

GPtr<GMimeMessage> construct(std::string_view raw) {
  ensure_gmime();
  // The stream copies nothing: it reads the caller's bytes for the duration of the parse.
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  return GPtr<GMimeMessage>(g_mime_parser_construct_message(parser.get(), parser_options()));
}

// A mail must at least have a header block: a line "Name: value" before anything else.
bool looks_like_mail(std::string_view raw) {
  const size_t colon = raw.find(':');
  const size_t eol = raw.find('\n');
  if (colon == std::string_view::npos || colon == 0 ||
      (eol != std::string_view::npos && eol < colon)) {
    return false;
  }
  return std::all_of(raw.begin(), raw.begin() + colon,
                     [](unsigned char c) { return c > 32 && c < 127; });
}

// Drops the Unicode characters that change the direction text is shown in: U+061C, U+200E,
// U+200F, U+202A to U+202E and U+2066 to U+2069 (`text` is valid UTF-8).
std::string without_bidi_controls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto b = [&](size_t k) {
      return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0;
    };
    if (b(0) == 0xD8 && b(1) == 0x9C) {  // U+061C
      ++i;
      continue;
    }
    if (b(0) == 0xE2 && ((b(1) == 0x80 && (b(2) == 0x8E || b(2) == 0x8F ||
                                             (b(2) >= 0xAA && b(2) <= 0xAE))) ||
                         (b(1) == 0x81 && b(2) >= 0xA6 && b(2) <= 0xA9))) {
      i += 2;
      continue;
    }
    out += text[i];
  }
  return out;
}

}  // namespace

std::string to_utf8(std::string_view bytes, std::string_view charset) {
  std::string name = effective_charset(charset);
  if (name.empty() || name == "utf-8" || name == "utf8") {
    if (valid_utf8(bytes)) return std::string(bytes);
    if (!name.empty()) return scrub_utf8(bytes);  // labelled UTF-8 but broken: keep what is valid
    name = effective_charset(guess_charset(bytes));
  }
  std::string converted = convert(bytes, name);
  if (converted.empty() && !bytes.empty()) {
    // An unknown label: guess from the bytes themselves.
    converted = convert(bytes, effective_charset(guess_charset(bytes)));
  }
  return valid_utf8(converted) ? converted : scrub_utf8(converted);
}

std::string sanitize_file_name(std::string_view name, size_t max_bytes) {
  // Bidi controls go first (they could turn "gpj.exe" into what looks like "exe.jpg", or hide
  // a ".." between two dots).
  const std::string valid = without_bidi_controls(scrub_utf8(name));
  std::string clean;
  for (unsigned char c : valid) {
    if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == ':') {
      clean += '_';
    } else {
      clean += static_cast<char>(c);
    }
  }
  // No "..": neither as a component nor hidden inside.
  for (size_t at = clean.find(".."); at != std::string::npos; at = clean.find("..")) {
    clean.replace(at, 2, "_");
  }
  clean = trim(clean);
  while (!clean.empty() && clean.front() == '.') clean.erase(0, 1);
  if (clean.size() <= max_bytes) return clean;

  // Too long: keep the extension, cut the stem on a UTF-8 character boundary.
  const size_t dot = clean.rfind('.');
  std::string extension =
      dot != std::string::npos && clean.size() - dot <= 16 ? clean.substr(dot) : "";
  size_t keep = max_bytes - extension.size();
  while (keep > 0 && (static_cast<unsigned char>(clean[keep]) & 0xC0) == 0x80) --keep;
  return clean.substr(0, keep) + extension;
}

std::optional<ParsedMail> parse_mail(std::string_view raw) {
  if (!looks_like_mail(raw)) return std::nullopt;
  auto message = construct(raw);
  if (!message) return std::nullopt;
  ParsedMail mail;
  read_headers(message.get(), mail);
  PartWalker(mail).walk(g_mime_message_get_mime_part(message.get()), 0);
  return mail;
}

std::optional<ParsedMail> parse_mail_headers(std::string_view header_block) {
  if (!looks_like_mail(header_block)) return std::nullopt;
  std::string only_headers(header_block);
  only_headers += "\r\n";
  auto message = construct(only_headers);
  if (!message) return std::nullopt;
  ParsedMail mail;
  read_headers(message.get(), mail);
  return mail;
}

}  // namespace connector::email
