// SMTP through libcurl: STARTTLS or implicit TLS, AUTH, certificate always verified.
// Blocking: call it from a worker thread (the host's verb threads), never the IMAP loop.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "MailServer.hpp"

namespace connector::email {

// Logs in and leaves without sending: the connect check. nullopt means it worked.
std::optional<MailFailure> check_smtp_login(const MailServers &servers, long timeout_ms = 15000);

// Sends `message` (a complete RFC 5322 mail) from servers.address to `recipients`.
std::optional<MailFailure> send_smtp(const MailServers &servers,
                                     const std::vector<std::string> &recipients,
                                     const std::string &message, long timeout_ms = 60000);

}  // namespace connector::email
