#include "MailIdentity.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace connector::email {
namespace {

// Headers a delivery adds or rewrites: they differ between two copies of the same mail.
bool is_trace_header(std::string_view line) {
  static const std::array<std::string_view, 8> kTrace = {
      "received:",       "return-path:",   "delivered-to:", "x-original-to:",
      "x-delivered-to:", "x-envelope-to:", "envelope-to:",  "x-spam-"};
  std::string start(line.substr(0, 20));
  std::transform(start.begin(), start.end(), start.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::any_of(kTrace.begin(), kTrace.end(),
                     [&](std::string_view name) { return start.rfind(name, 0) == 0; });
}

std::string hex(const unsigned char *bytes, size_t size) {
  static const char *kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

}  // namespace

std::string content_hash(std::string_view raw) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  auto feed = [&](std::string_view part) {
    // Normalise CRLF to LF so a copy stored with other line endings still matches: the runs
    // between the CRs of CRLFs go to the digest as they are, without a copy.
    size_t from = 0;
    for (size_t cr = part.find("\r\n"); cr != std::string_view::npos;
         cr = part.find("\r\n", cr + 2)) {
      EVP_DigestUpdate(ctx, part.data() + from, cr - from);
      from = cr + 1;
    }
    EVP_DigestUpdate(ctx, part.data() + from, part.size() - from);
  };

  // Walk the header block field by field (a field is its first line plus continuation lines).
  size_t at = 0;
  bool skipping = false;
  while (at < raw.size()) {
    size_t end = raw.find('\n', at);
    end = end == std::string_view::npos ? raw.size() : end + 1;
    std::string_view line = raw.substr(at, end - at);
    if (line == "\n" || line == "\r\n") break;  // end of the headers
    const bool continuation = line[0] == ' ' || line[0] == '\t';
    if (!continuation) skipping = is_trace_header(line);
    if (!skipping) feed(line);
    at = end;
  }
  feed(raw.substr(std::min(at, raw.size())));

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  return hex(digest, size);
}

std::string external_id_for(std::string_view message_id, std::string_view raw) {
  const std::string hash = content_hash(raw);
  if (message_id.empty()) return "sha256:" + hash;
  std::string id(message_id.substr(0, 400));
  return id + "#" + hash.substr(0, 16);
}

}  // namespace connector::email
