// Stable identities of received mail, for deduplication that survives UIDVALIDITY changes.
#pragma once

#include <string>
#include <string_view>

namespace connector::email {

// SHA-256 of the mail with its trace headers (Received, Return-Path, Delivered-To, …) left out
// and line endings normalised: the same mail delivered twice, or found again after the server
// renumbered its UIDs, hashes the same; two different mails sharing a Message-ID do not.
std::string content_hash(std::string_view raw);

// The external_id the host deduplicates on: "<message-id>#<first 16 hex of content hash>",
// or "sha256:<hash>" for a mail without a Message-ID. At most 512 bytes.
std::string external_id_for(std::string_view message_id, std::string_view raw);

}  // namespace connector::email
