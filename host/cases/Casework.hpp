// The case side of the host: every inbound message goes through here to its case, and the
// platform creates, updates and re-files cases and messages through here.
//
//   ingest()        matches a stored inbound message (CaseMatcher) and applies the decision in
//                   one transaction: new contact or merged contacts, new or reopened case, link.
//   create_case(), update_case(), move_message(), undo_merge()   the control API's verbs.
//
// Live events (EventHub: to the case's attendant and to admins, never to another attendant):
//   case.created    {"case": <case as GET /cases/{id} shows it>}  a case made through the API or
//                   opened by an inbound message
//   case.updated    {"case": …}  title, status (close, reopen, and a reopen by a new message),
//                   identities of its contact, or its messages changed by a manual move. An
//                   identity change pushes every case of that contact (up to 100, newest first),
//                   an undone merge every case of both contacts.
//   message.linked  {"message": <message as GET /messages/{id} shows it, with its "case">,
//                   "previous_case_id": N | null}  a message filed (or unfiled) by hand; to the
//                   message's attendant and to the attendant of the case it went to. A case id
//                   of another attendant is given as null.
//   account.auto_linked {"account_id": …, "cases": N}  the account's count of automatically
//                   linked cases changed
//
// Threading: thread-safe. Writes are serialised by one lock, so two messages of one new contact
// arriving at once on two threads still make one contact.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "accounts/EventHub.hpp"
#include "cases/CaseMatcher.hpp"
#include "cases/ContactDirectory.hpp"
#include "cases/MatchLookups.hpp"
#include "common/Expected.hpp"
#include "config/Config.hpp"
#include "store/Conversations.hpp"
#include "store/Database.hpp"

namespace connector::cases {

// The highest case id the platform may give: 2^53 - 1, the largest integer a JavaScript number
// holds exactly (the UI and most platforms read ids as such numbers).
constexpr int64_t kMaxCaseId = 9007199254740991;

// What the platform may set on a case. On create, the identities given make or join the case's
// contact. On update, a list that is given replaces that kind of identity of the case's contact
// (phones: its phone numbers; addresses: its e-mail addresses; whatsapp_ids: its LIDs, while a
// phone JID in it counts as a phone); a list left out changes nothing.
struct CaseFields {
  std::optional<int64_t> id;  // create only: the platform's own case number, 1..kMaxCaseId
  std::optional<std::string> title;
  std::optional<std::string> status;  // open or closed
  std::optional<std::vector<std::string>> phones;
  std::optional<std::vector<std::string>> addresses;
  std::optional<std::vector<std::string>> whatsapp_ids;
};

// What ingest() did: the stored message (inserted false: it was stored before, a replay, and
// nothing was done) and the decision applied to it.
struct Ingested {
  store::Conversations::Stored stored;  // with the case it was linked to
  Decision decision;
};

class Casework {
 public:
  static Expected<std::unique_ptr<Casework>> open(store::Database &db, accounts::EventHub &events,
                                                  const config::Matching &settings);

  // Stores a message a plugin reported (inbound, or outbound sent outside the host; see
  // CaseMatcher.hpp for how those are matched) and files it on its case, in one transaction:
  // the message, a new or merged contact, a new or reopened case and the link are all written or
  // none is. A message already stored (same account and external id) is left as it is.
  Expected<Ingested> ingest(const std::string &account_id, const std::string &attendant_id,
                            store::NewMessage message);

  // ingest() for several messages of one account, in one transaction: all are stored and filed,
  // in their order (each one matched with the ones before it in place), or none is. One commit
  // for a whole batch is what makes a mailbox's first sync fast. The results are in the
  // messages' order.
  Expected<std::vector<Ingested>> ingest_all(const std::string &account_id,
                                             const std::string &attendant_id,
                                             std::vector<store::NewMessage> messages);

  // Stores a message the host itself sent through an account (POST .../messages) and files it,
  // in one transaction: on `case_id` by hand (recorded as by `by`; the case's updated_at moves
  // and case.updated is published), or without one as ingest() files an outbound message, on
  // the recipient's case. Only stores and links: message.new is the caller's to publish.
  Expected<Ingested> file_sent(const std::string &account_id, const std::string &attendant_id,
                               store::NewMessage message, std::optional<int64_t> case_id,
                               const std::string &by);

  // A new case of `attendant_id`; returns its id. "case_id_unavailable" when the id is taken,
  // "invalid_request" for an id outside 1..kMaxCaseId or a phone or address that cannot be read
  // (nothing is written then).
  Expected<int64_t> create_case(const std::string &attendant_id, const CaseFields &fields,
                                const std::string &by);
  Outcome update_case(int64_t case_id, const CaseFields &fields, const std::string &by);

  // Files a message on a case by hand (or takes it off any case, with nullopt), recording who.
  Outcome move_message(int64_t message_id, std::optional<int64_t> case_id, const std::string &by);

  Outcome undo_merge(int64_t merge_id, const std::string &by);

  // The case as the API shows it: Conversations::case_summary plus its contact.
  Expected<Json> case_json(int64_t case_id);
  ContactDirectory &contacts() { return contacts_; }
  const CaseMatcher &matcher() const { return *matcher_; }

 private:
  Casework(store::Database &db, accounts::EventHub &events, const config::Matching &settings,
           std::unique_ptr<MatchLookups> lookups);

  // What filing one message did, for the events published once it is committed.
  struct Filing {
    Ingested out;
    bool opened_case = false;
    bool reopened = false;
    bool first_for_account = false;  // the account's first automatic link to the case
  };
  Outcome file(const std::string &attendant_id, store::NewMessage &message, int64_t now,
               Filing &filing);
  Expected<int64_t> open_case(const std::string &attendant_id, std::optional<int64_t> contact_id,
                              const std::string &title, std::optional<int64_t> id);
  Expected<int64_t> next_case_id();
  Outcome replace_identities(int64_t contact_id, const CaseFields &fields,
                             const std::vector<Identity> &given);
  Expected<std::vector<Identity>> read_identities(const CaseFields &fields) const;
  // The one contact these identities (and `current`, when given) belong to, created or merged
  // as needed. Inside a transaction.
  Expected<std::optional<int64_t>> join(const std::string &owner,
                                        const std::vector<Identity> &identities,
                                        std::optional<int64_t> current, const std::string &reason,
                                        const std::string &by);
  std::string title_for(const store::NewMessage &message, const Decision &decision) const;
  void count_new_link(const std::string &account_id, const std::string &attendant_id,
                      bool first_for_account);
  void recount(const std::string &account_id, const std::string &attendant_id);
  std::optional<Json> case_event(int64_t case_id);
  void publish_count(const std::string &account_id, const std::string &attendant_id, int64_t cases);

  store::Database &db_;
  accounts::EventHub &events_;
  store::Conversations conversations_;
  std::unique_ptr<MatchLookups> lookups_;
  std::unique_ptr<CaseMatcher> matcher_;
  ContactDirectory contacts_;

  std::mutex mutex_;  // serialises every write, and guards auto_linked_
  // Per account: the count of automatically linked cases as last published. Filled on first
  // use from the store, then kept up to date, so a message never recounts a whole account.
  std::map<std::string, int64_t> auto_linked_;
};

}  // namespace connector::cases
