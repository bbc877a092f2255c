// Where a mailbox lives and how to log in to it: shared by IMAP, SMTP and both e-mail plugins.
#pragma once

#include <cstdint>
#include <string>

namespace connector::email {

enum class Security { kImplicitTls, kStartTls };

struct ServerAddress {
  std::string host;
  uint16_t port = 0;
  Security security = Security::kImplicitTls;
};

// How to authenticate: a password (LOGIN / AUTH PLAIN) or an OAuth access token (XOAUTH2).
struct Credentials {
  std::string user;
  std::string password;     // secret
  std::string oauth_token;  // secret; when set, used instead of the password
};

struct MailServers {
  std::string address;  // the mailbox's own address (From of sent mail)
  ServerAddress imap;
  ServerAddress smtp;
  std::string ca_file;  // extra CA to trust; verification is never turned off
  Credentials credentials;
  bool server_saves_sent = false;  // Gmail files sent mail in Sent by itself
};

// Why talking to a server failed, in categories an attendant can act on.
enum class FailureKind {
  kWrongCredentials,
  kTlsHandshake,
  kUntrustedCertificate,
  kUnreachable,
  kTimeout,
  kProtocol,
  kStopped,
};

struct MailFailure {
  FailureKind kind = FailureKind::kProtocol;
  std::string detail;  // words for the attendant, never a secret
};

// A sentence an attendant understands, e.g. "IMAP: the server refused the address or password".
std::string describe(const MailFailure &failure);

}  // namespace connector::email
