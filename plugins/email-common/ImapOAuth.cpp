// IMAP AUTHENTICATE with an OAuth access token: OAUTHBEARER (RFC 7628) where the server offers
// it, XOAUTH2 (what Google and Microsoft document) otherwise.
//
// A refused token is not a plain tagged NO: the server first sends a continuation carrying a
// JSON error, and the client must answer it (XOAUTH2: an empty line, OAUTHBEARER: %x01) before
// the tagged NO arrives. Without that answer the login would hang until the deadline.
#include <openssl/evp.h>

#include "ImapConnection.hpp"

namespace connector::email {
namespace {

std::string base64_of(const std::string &bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                reinterpret_cast<const unsigned char *>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace

boost::asio::awaitable<ImapReply> ImapConnection::authenticate_oauth(
    const Credentials &credentials) {
  const bool bearer = has_capability("AUTH=OAUTHBEARER");
  const std::string mechanism = bearer ? "OAUTHBEARER" : "XOAUTH2";
  const std::string token = credentials.oauth_token;
  // kSep stands alone: in "\x01auth" the compiler would read \x01a as one hex escape.
  const std::string kSep = "\x01";
  const std::string sasl =
      bearer ? "n,a=" + credentials.user + "," + kSep + "host=" + host_ + kSep + "auth=Bearer " +
                   token + kSep + kSep
             : "user=" + credentials.user + kSep + "auth=Bearer " + token + kSep + kSep;
  const std::string tag = next_tag();
  if (has_capability("SASL-IR")) {
    co_await write(tag + " AUTHENTICATE " + mechanism + " " + base64_of(sasl) + "\r\n");
  } else {
    co_await write(tag + " AUTHENTICATE " + mechanism + "\r\n");
    ImapLine ready = co_await read_line();
    if (ready.text.rfind("+", 0) != 0) {
      throw MailError({FailureKind::kProtocol, "IMAP: the server did not accept " + mechanism});
    }
    co_await write(base64_of(sasl) + "\r\n");
  }
  ImapReply reply;
  for (;;) {
    ImapLine line = co_await read_line();
    if (line.text.rfind("+", 0) == 0) {
      // The server's error challenge (base64 JSON, e.g. {"status":"401",...}): acknowledge it.
      co_await write(bearer ? "AQ==\r\n" : "\r\n");
      continue;
    }
    if (line.text.rfind(tag + " ", 0) == 0) {
      const std::string rest = line.text.substr(tag.size() + 1);
      const size_t space = rest.find(' ');
      reply.status = rest.substr(0, space);
      reply.text = space == std::string::npos ? "" : rest.substr(space + 1);
      co_return reply;
    }
    if (line.text.rfind("* BYE", 0) == 0) {
      throw MailError({FailureKind::kUnreachable, "IMAP: the server closed the session"});
    }
    reply.untagged.push_back(std::move(line));
  }
}

}  // namespace connector::email
