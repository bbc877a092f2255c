// Reads raw RFC 5322 mail with GMime 3 into a ParsedMail.
//
// Lenient where real mail needs it: loose RFC 2047 (encoded words split mid-character), RFC 2231
// parameters, unlabelled 8-bit text guessed with uchardet, iso-8859-1 read as windows-1252 (as
// browsers do), TNEF (winmail.dat) unpacked by Debian's `tnef` program (Winmail.hpp).
// Thread-safe: GMime is initialised once and every call works on its own objects.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ParsedMail.hpp"

namespace connector::email {

// Returns nullopt when the bytes are not a mail at all (the caller quarantines them).
std::optional<ParsedMail> parse_mail(std::string_view raw);

// Parses only a header block (for mails over the size limit, fetched without their body).
std::optional<ParsedMail> parse_mail_headers(std::string_view header_block);

// A file name safe to show and store: no path separators, no "..", no control characters, no
// Unicode bidi controls (U+202E and its kind, which make "gpj.exe" look like "exe.jpg"), at
// most `max_bytes` bytes of UTF-8 (cut on a character boundary, the extension kept).
std::string sanitize_file_name(std::string_view name, size_t max_bytes = 120);

// Converts `bytes` in `charset` (may be empty: guessed) to valid UTF-8.
std::string to_utf8(std::string_view bytes, std::string_view charset);

}  // namespace connector::email
