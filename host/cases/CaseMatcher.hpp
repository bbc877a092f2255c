// The rules that decide which case an inbound message belongs to. Deciding only reads (through
// MatchLookups); Casework applies the decision in one transaction.
//
// E-mail runs `email_rules` in order (default: thread, subject, contact); every other channel
// runs `whatsapp_rules` (contact). The first rule that finds a case wins:
//   thread   In-Reply-To, then References right-most first (the order plugins report
//            link.thread_refs in), against the Message-IDs of stored and sent messages.
//   subject  A case id in the subject (configured patterns, or link.subject_case_ids), accepted
//            only when the sender is one of the case's contact's identities, unless
//            subject_requires_case_contact is false.
//   contact  The contact's newest open case, else their newest case (then the closed-case
//            choice applies).
// Cases of other attendants are never matched, and only the contacts of the attendant who owns
// the account are looked at (contacts are per attendant). A case found closed is reopened,
// replaced by a new case, or reopened only within reopen_within_days, per closed_case. With no
// match a new case is opened or the message stays unassigned, per no_match. Automatic mail
// (auto-replies, bounces, lists) is linked to the case it matches but never opens or reopens one.
//
// Outbound messages a plugin reports itself (the attendant wrote on the phone or in another mail
// client) run the same rules with the recipient in the sender's place: their link keys name the
// person written to. They never open or reopen a case: the contact rule looks at open cases
// only, a thread or subject that names a closed case files the message there without reopening
// it, and with no match the message stays unassigned. Why: the attendant, not the customer,
// decides when a conversation starts or resumes; a note typed on the phone to a customer whose
// case is closed must not put that case back in the queue, nor open a case nobody asked for.
// (Messages sent through the host's own API are filed by the sender and never come here.)
//
// Threading: decide() is const and thread-safe (MatchLookups locks itself).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cases/Identities.hpp"
#include "cases/MatchLookups.hpp"
#include "cases/SubjectIds.hpp"
#include "config/Config.hpp"
#include "store/Conversations.hpp"

namespace connector::cases {

struct Decision {
  enum class Verdict { kLink, kNewCase, kUnassigned };

  Verdict verdict = Verdict::kUnassigned;
  std::optional<int64_t> case_id;  // kLink: the case
  bool reopen = false;             // kLink: the case is closed and opens again
  // How the link is recorded (message_links.method): thread, subject, phone, whatsapp_id,
  // address or new_case. Empty when unassigned.
  std::string method;
  std::string why;  // one line for the debug log and the tests

  // The sender as the store knows them: the identities the message names, the contact they
  // resolve to (none yet: a new contact), and other contacts to merge into it.
  std::vector<Identity> identities;
  std::vector<Identity> unknown_identities;  // those no contact of the attendant has yet
  std::optional<int64_t> contact_id;
  std::vector<int64_t> merge_into_contact;
};

class CaseMatcher {
 public:
  CaseMatcher(const config::Matching &settings, MatchLookups &lookups);

  // `attendant_id` owns the account the message came through; `now_ms` is the time the
  // reopen window is measured against.
  Decision decide(const std::string &attendant_id, const store::NewMessage &message,
                  int64_t now_ms) const;

  const IdentityReader &identities() const { return identities_; }
  const SubjectReader &subjects() const { return subjects_; }

 private:
  bool is_mail(const store::NewMessage &message, const std::vector<Identity> &identities) const;
  void resolve_contact(const std::string &attendant_id, Decision &decision) const;
  std::optional<CaseRow> by_thread(const std::string &attendant_id,
                                   const store::NewMessage &message) const;
  std::optional<CaseRow> by_subject(const std::string &attendant_id,
                                    const store::NewMessage &message, Decision &decision) const;
  std::optional<CaseRow> by_contact(const std::string &attendant_id, const Decision &decision,
                                    bool open_only) const;
  void settle_closed(const CaseRow &found, const store::NewMessage &message, int64_t now_ms,
                     Decision &decision) const;
  std::string contact_method(const Decision &decision) const;

  config::Matching settings_;
  MatchLookups &lookups_;
  IdentityReader identities_;
  SubjectReader subjects_;
};

}  // namespace connector::cases
