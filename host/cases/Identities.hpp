// The ways to reach a contact, normalised so that two spellings of one phone number or address
// compare equal: phones in E.164 (with the Brazilian ninth digit settled), WhatsApp LIDs, and
// e-mail addresses in lower case (optionally without their +tag).
//
// Threading: an IdentityReader is immutable after construction and may be shared.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/Conversations.hpp"

namespace connector::cases {

// One row of contact_identities: kind "phone" (E.164), "whatsapp" (a LID or another non-phone
// WhatsApp id) or "email".
struct Identity {
  std::string kind;
  std::string value;

  bool operator==(const Identity &) const = default;
};

// The identity key of a Brazilian number: mobiles written without the ninth digit
// (+55 AA 8xxx-xxxx, as many old WhatsApp ids are) get it back, so both forms are one key.
// Landlines (subscriber numbers starting 2 to 5) and numbers of other countries are returned
// unchanged. Takes and returns E.164 ("+55…").
std::string with_brazilian_ninth_digit(std::string e164);

class IdentityReader {
 public:
  IdentityReader(std::string default_region, bool fold_plus_addressing);

  // A phone number as written by a person or a channel ("+55 11 98765-4321", "(11) 8765-4321"),
  // read in the default region when it has no country code. nullopt when libphonenumber does not
  // take it as a possible number of a real country (old eight-digit Brazilian mobiles excepted).
  std::optional<Identity> phone(std::string_view raw) const;

  // A WhatsApp id: a phone JID (5511987654321@s.whatsapp.net, …@c.us, with or without a
  // ":device" part) is the phone; a LID (digits@lid) is kept as a "whatsapp" identity. Group,
  // broadcast and channel ids name no person, and ids of any other server, with a user that is
  // not digits, or with a control character are not WhatsApp ids: nullopt.
  std::optional<Identity> whatsapp_id(std::string_view jid) const;

  // An address, bare or as "Name <addr>": lower case, and without its +tag when folding is on.
  std::optional<Identity> email(std::string_view raw) const;

  // Every identity a message's link keys name (phones, whatsapp_ids, emails), in that order and
  // without repeats; the sender field (the recipient, for an outbound message) stands in when
  // the link keys name nobody.
  std::vector<Identity> of_message(const store::NewMessage &message) const;

 private:
  std::string default_region_;
  bool fold_plus_addressing_;
};

// The string members of the array `name` in a message's link keys; empty when absent or not an
// array. Other kinds of member are skipped.
std::vector<std::string> strings_of(const store::Json &keys, const char *name);

}  // namespace connector::cases
