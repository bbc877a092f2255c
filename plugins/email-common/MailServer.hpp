// Where a mailbox lives and how to log in to it: shared by IMAP, SMTP and both e-mail plugins.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

namespace connector::email {

enum class Security { kImplicitTls, kStartTls };

struct ServerAddress {
  std::string host;
  uint16_t port = 0;
  Security security = Security::kImplicitTls;
};

struct MailFailure;

// How an OAuth account gets its access token: the engine asks right before every IMAP or SMTP
// login and every send, so the plugin can refresh the token shortly before it expires and no
// login uses a stale one. Returns a current token or why there is none; blocking (it may call
// the provider), so the engine runs it on a worker, never on its loop thread. A failure of kind
// kReauthorisationNeeded puts the account in "reauth_needed".
using AccessTokenSource = std::function<std::variant<std::string, MailFailure>()>;

// Another way to send, for mailboxes whose SMTP server refuses AUTH altogether (Microsoft 365
// tenants without SMTP AUTH answer 535 5.7.139): the OAuth plugin's Microsoft Graph sendMail.
// Gets the complete composed mail with a Bcc header added when there are Bcc recipients (Graph
// reads every recipient from the headers and takes Bcc out before delivery). Returns nullopt
// when the mail went out. Blocking: called from a verb thread.
using AlternateSender = std::function<std::optional<MailFailure>(const std::string &mime)>;

// How to authenticate: a password (LOGIN / AUTH PLAIN) or an OAuth access token (OAUTHBEARER or
// XOAUTH2).
struct Credentials {
  std::string user;
  std::string password;     // secret
  std::string oauth_token;  // secret; when set, used instead of the password
  AccessTokenSource access_token_source;  // OAuth accounts: fills oauth_token before each login
};

struct MailServers {
  std::string address;  // the mailbox's own address (From of sent mail)
  ServerAddress imap;
  ServerAddress smtp;
  std::string ca_file;  // extra CA to trust; verification is never turned off
  Credentials credentials;
  bool server_saves_sent = false;  // Gmail files sent mail in Sent by itself
  // Used when SMTP refuses AUTH for the mailbox (see AlternateSender); the mail it sends is
  // filed in Sent by the provider.
  AlternateSender alternate_sender;
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
  kReauthorisationNeeded,  // OAuth: the provider no longer honours the grant; sign in again
};

struct MailFailure {
  FailureKind kind = FailureKind::kProtocol;
  std::string detail;  // words for the attendant, never a secret
  // The SMTP server refuses AUTH for this whole mailbox or tenant (535 5.7.139), whatever the
  // credentials: only another way of sending (MailServers::alternate_sender) can help.
  bool smtp_auth_disabled = false;
};

// A sentence an attendant understands, e.g. "IMAP: the server refused the address or password".
std::string describe(const MailFailure &failure);

}  // namespace connector::email
