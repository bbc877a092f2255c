// Messages, cases and the links between them: what the control API lists and the ingest path
// writes. Every list is newest first and paged by id (`before` = the last id of the previous
// page), so a page never shifts when new messages arrive.
#pragma once

#include "common/Expected.hpp"
#include "store/Database.hpp"

#include <nlohmann/json.hpp>

#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace connector::store {

using Json = nlohmann::json;

struct AttachmentRef {
  std::string id;  // SHA-256 of the content
  std::string name;
  std::string mime;
  std::string content_id;
};

// One message as a plugin reports it (inbound) or as the host sent it (outbound).
struct NewMessage {
  std::string account_id;
  std::string channel;    // the plugin id
  std::string direction;  // "inbound" or "outbound"
  std::string external_id;
  std::string sender;
  std::string recipient;
  std::string subject;
  std::string text;
  std::string html;
  std::optional<int64_t> sent_at;
  std::string delivery_status;
  bool automatic = false;
  Json link_keys = Json::object();
  Json details = Json::object();  // channel-specific extras: quoted message, media kind, …
  std::string client_id;          // outbound: the client's idempotency key, empty when none
  std::vector<AttachmentRef> attachments;
};

struct Page {
  std::optional<int64_t> before;
  int limit = 50;
};

class Conversations {
 public:
  explicit Conversations(Database &db) : db_(db) {}

  // Stores a message and its attachments in one transaction. Returns the message id and whether
  // it is new: a message whose (account, external id) is already stored is not stored again.
  struct Stored {
    int64_t id = 0;
    bool inserted = false;
    int64_t stored_at = 0;            // when inserted
    std::optional<int64_t> case_id;   // the case it was linked to in the same transaction
    std::string method;               // and how
  };
  Expected<Stored> insert(const NewMessage &message);
  // The same inside a transaction the caller holds (Casework stores and links a message in one).
  Expected<Stored> insert_in_transaction(const NewMessage &message);

  // A message just inserted as message(id) shows it, built from what was written: no read back
  // and no JSON parsed again (the live message.new event of every message).
  static Json shown(const NewMessage &message, const Stored &stored);

  // Sets the delivery status of a message the account sent; returns its id, or "not_found".
  Expected<int64_t> set_delivery(const std::string &account_id, const std::string &external_id,
                                 const std::string &status);

  // The message the account sent under the client's idempotency key `client_id`, if any.
  Expected<std::optional<int64_t>> by_client_id(const std::string &account_id,
                                                const std::string &client_id);

  // One message as the API shows it, with attachments and its case link.
  Expected<Json> message(int64_t id);

  // Messages of one account, or of every account of an attendant.
  std::vector<Json> account_messages(const std::string &account_id, const Page &page);

  // Cases of an attendant, and the messages linked to one case from every channel.
  std::vector<Json> cases(const std::string &attendant_id, const Page &page);
  Expected<Json> case_summary(int64_t case_id);
  std::vector<Json> case_messages(int64_t case_id, const Page &page);

  // Who owns a case (for access checks): its attendant id, or "not_found".
  Expected<std::string> case_owner(int64_t case_id);
  // Who owns a message: the attendant of its account.
  Expected<std::string> message_owner(int64_t message_id);

  // How many distinct cases have messages linked automatically (not by hand) through the
  // account: the figure shown beside the account's connect button.
  int64_t auto_linked_cases(const std::string &account_id);

 private:
  Database &db_;
};

}  // namespace connector::store
