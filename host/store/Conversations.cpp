#include "store/Conversations.hpp"

namespace connector::store {
namespace {

constexpr const char *kMessageColumns =
    "SELECT m.id, m.account_id, m.channel, m.direction, m.external_id, m.sender, m.recipient, "
    "m.subject, m.text_body, m.html_body, m.sent_at, m.stored_at, m.delivery_status, m.automatic, "
    "m.link_keys, m.details, l.case_id, l.method, l.linked_by, m.client_id FROM messages m "
    "LEFT JOIN message_links l ON l.message_id = m.id ";

Json parse_or_empty(const std::string &text) {
  Json json = Json::parse(text, nullptr, false);
  return json.is_discarded() ? Json::object() : json;
}

Json message_from(const Row &row) {
  Json message = {{"id", row.integer(0)},
                  {"account_id", row.text(1)},
                  {"channel", row.text(2)},
                  {"direction", row.text(3)},
                  {"external_id", row.text(4)},
                  {"from", row.text(5)},
                  {"to", row.text(6)},
                  {"subject", row.text(7)},
                  {"text", row.text(8)},
                  {"html", row.text(9)},
                  {"sent_at", row.is_null(10) ? Json() : Json(row.integer(10))},
                  {"stored_at", row.integer(11)},
                  {"delivery_status", row.text(12)},
                  {"automatic", row.integer(13) != 0},
                  {"link_keys", parse_or_empty(row.text(14))},
                  {"details", parse_or_empty(row.text(15))},
                  {"attachments", Json::array()}};
  if (row.is_null(16)) {
    message["case"] = nullptr;
  } else {
    message["case"] = {{"id", row.integer(16)}, {"method", row.text(17)}, {"by", row.text(18)}};
  }
  if (!row.is_null(19)) message["client_id"] = row.text(19);
  return message;
}

Value page_before(const Page &page) {
  return page.before ? Value(*page.before) : Value(std::numeric_limits<int64_t>::max());
}

}  // namespace

Expected<Conversations::Stored> Conversations::insert(const NewMessage &m) {
  Expected<Stored> stored = failure("storage", "not stored");
  auto done = db_.transaction([&]() -> Outcome {
    stored = insert_in_transaction(m);
    return stored ? Outcome(Ok{}) : Outcome(stored.failure());
  });
  if (!done) return done.failure();
  return stored;
}

Expected<Conversations::Stored> Conversations::insert_in_transaction(const NewMessage &m) {
  Stored stored;
  stored.stored_at = now_ms();
  auto done = [&]() -> Outcome {
    auto inserted = db_.run(
        "INSERT INTO messages (account_id, channel, direction, external_id, sender, recipient, "
        "subject, text_body, html_body, sent_at, stored_at, delivery_status, automatic, "
        "link_keys, details, client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (account_id, external_id) DO NOTHING",
        {m.account_id, m.channel, m.direction, m.external_id, m.sender, m.recipient, m.subject,
         m.text, m.html, m.sent_at ? Value(*m.sent_at) : Value(), stored.stored_at, m.delivery_status,
         int64_t{m.automatic ? 1 : 0}, m.link_keys.dump(), m.details.dump(),
         m.client_id.empty() ? Value() : Value(m.client_id)});
    if (!inserted) return inserted;
    if (db_.changes() == 0) {
      return db_.run("SELECT id FROM messages WHERE account_id = ? AND external_id = ?",
                     {m.account_id, m.external_id},
                     [&](const Row &row) { stored.id = row.integer(0); });
    }
    stored.id = db_.last_insert_id();
    stored.inserted = true;
    for (size_t i = 0; i < m.attachments.size(); ++i) {
      const auto &a = m.attachments[i];
      auto attached = db_.run(
          "INSERT INTO message_attachments (message_id, position, attachment_id, name, mime, "
          "content_id) VALUES (?, ?, ?, ?, ?, ?)",
          {stored.id, static_cast<int64_t>(i), a.id, a.name, a.mime, a.content_id});
      if (!attached) return attached;
    }
    return Ok{};
  }();
  if (!done) return done.failure();
  return stored;
}

Json Conversations::shown(const NewMessage &m, const Stored &stored) {
  Json message = Json::object();
  message["id"] = stored.id;
  message["account_id"] = m.account_id;
  message["channel"] = m.channel;
  message["direction"] = m.direction;
  message["external_id"] = m.external_id;
  message["from"] = m.sender;
  message["to"] = m.recipient;
  message["subject"] = m.subject;
  message["text"] = m.text;
  message["html"] = m.html;
  message["sent_at"] = m.sent_at ? Json(*m.sent_at) : Json();
  message["stored_at"] = stored.stored_at;
  message["delivery_status"] = m.delivery_status;
  message["automatic"] = m.automatic;
  message["link_keys"] = m.link_keys;
  message["details"] = m.details;
  Json &attachments = message["attachments"] = Json::array();
  for (const auto &a : m.attachments) {
    attachments.push_back(
        {{"id", a.id}, {"name", a.name}, {"mime", a.mime}, {"content_id", a.content_id}});
  }
  if (stored.case_id) {
    message["case"] = {{"id", *stored.case_id}, {"method", stored.method}, {"by", ""}};
  } else {
    message["case"] = nullptr;
  }
  if (!m.client_id.empty()) message["client_id"] = m.client_id;
  return message;
}

Expected<int64_t> Conversations::set_delivery(const std::string &account_id,
                                              const std::string &external_id,
                                              const std::string &status) {
  std::optional<int64_t> id;
  auto done = db_.run(
      "UPDATE messages SET delivery_status = ? WHERE account_id = ? AND external_id = ? "
      "RETURNING id",
      {status, account_id, external_id}, [&](const Row &row) { id = row.integer(0); });
  if (!done) return done.failure();
  if (!id) return failure("not_found", "no message " + external_id + " on this account");
  return *id;
}

Expected<std::optional<int64_t>> Conversations::by_client_id(const std::string &account_id,
                                                             const std::string &client_id) {
  std::optional<int64_t> id;
  auto read = db_.run("SELECT id FROM messages WHERE account_id = ? AND client_id = ?",
                      {account_id, client_id}, [&](const Row &row) { id = row.integer(0); });
  if (!read) return read.failure();
  return id;
}

Expected<Json> Conversations::message(int64_t id) {
  std::optional<Json> found;
  auto read = db_.run(std::string(kMessageColumns) + "WHERE m.id = ?", {id},
                      [&](const Row &row) { found = message_from(row); });
  if (!read) return read.failure();
  if (!found) return failure("not_found", "no message " + std::to_string(id));
  (void)db_.run(
      "SELECT attachment_id, name, mime, content_id FROM message_attachments WHERE message_id = ? "
      "ORDER BY position",
      {id}, [&](const Row &row) {
        (*found)["attachments"].push_back({{"id", row.text(0)},
                                           {"name", row.text(1)},
                                           {"mime", row.text(2)},
                                           {"content_id", row.text(3)}});
      });
  return *found;
}

std::vector<Json> Conversations::account_messages(const std::string &account_id,
                                                  const Page &page) {
  std::vector<int64_t> ids;
  (void)db_.run("SELECT id FROM messages WHERE account_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                {account_id, page_before(page), int64_t{page.limit}},
                [&](const Row &row) { ids.push_back(row.integer(0)); });
  std::vector<Json> out;
  for (int64_t id : ids) {
    if (auto m = message(id)) out.push_back(std::move(*m));
  }
  return out;
}

std::vector<Json> Conversations::cases(const std::string &attendant_id, const Page &page) {
  std::vector<int64_t> ids;
  // Newest first by when each case was opened (a platform's own ids need not grow with time);
  // `before` names the last case of the previous page, whose place in that order never changes.
  if (page.before) {
    (void)db_.run(
        "SELECT c.id FROM cases c, (SELECT created_at, id FROM cases WHERE id = ?2 AND "
        "attendant_id = ?1) b "
        "WHERE c.attendant_id = ?1 AND (c.created_at < b.created_at OR "
        "(c.created_at = b.created_at AND c.id < b.id)) "
        "ORDER BY c.created_at DESC, c.id DESC LIMIT ?3",
        {attendant_id, *page.before, int64_t{page.limit}},
        [&](const Row &row) { ids.push_back(row.integer(0)); });
  } else {
    (void)db_.run(
        "SELECT id FROM cases WHERE attendant_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
        {attendant_id, int64_t{page.limit}},
        [&](const Row &row) { ids.push_back(row.integer(0)); });
  }
  std::vector<Json> out;
  for (int64_t id : ids) {
    if (auto c = case_summary(id)) out.push_back(std::move(*c));
  }
  return out;
}

Expected<Json> Conversations::case_summary(int64_t case_id) {
  std::optional<Json> found;
  auto read = db_.run(
      "SELECT c.id, c.attendant_id, c.contact_id, c.title, c.status, c.created_at, c.updated_at, "
      "c.closed_at, (SELECT COUNT(*) FROM message_links l WHERE l.case_id = c.id) "
      "FROM cases c WHERE c.id = ?",
      {case_id}, [&](const Row &row) {
        found = Json{{"id", row.integer(0)},
                     {"attendant_id", row.text(1)},
                     {"contact_id", row.is_null(2) ? Json() : Json(row.integer(2))},
                     {"title", row.text(3)},
                     {"status", row.text(4)},
                     {"created_at", row.integer(5)},
                     {"updated_at", row.integer(6)},
                     {"closed_at", row.is_null(7) ? Json() : Json(row.integer(7))},
                     {"message_count", row.integer(8)}};
      });
  if (!read) return read.failure();
  if (!found) return failure("not_found", "no case " + std::to_string(case_id));
  return *found;
}

std::vector<Json> Conversations::case_messages(int64_t case_id, const Page &page) {
  std::vector<int64_t> ids;
  (void)db_.run(
      "SELECT message_id FROM message_links WHERE case_id = ? AND message_id < ? "
      "ORDER BY message_id DESC LIMIT ?",
      {case_id, page_before(page), int64_t{page.limit}},
      [&](const Row &row) { ids.push_back(row.integer(0)); });
  std::vector<Json> out;
  for (int64_t id : ids) {
    if (auto m = message(id)) out.push_back(std::move(*m));
  }
  return out;
}

Expected<std::string> Conversations::case_owner(int64_t case_id) {
  std::optional<std::string> owner;
  auto read = db_.run("SELECT attendant_id FROM cases WHERE id = ?", {case_id},
                      [&](const Row &row) { owner = row.text(0); });
  if (!read) return read.failure();
  if (!owner) return failure("not_found", "no case " + std::to_string(case_id));
  return *owner;
}

Expected<std::string> Conversations::message_owner(int64_t message_id) {
  std::optional<std::string> owner;
  auto read = db_.run(
      "SELECT a.attendant_id FROM messages m JOIN accounts a ON a.id = m.account_id "
      "WHERE m.id = ?",
      {message_id}, [&](const Row &row) { owner = row.text(0); });
  if (!read) return read.failure();
  if (!owner) return failure("not_found", "no message " + std::to_string(message_id));
  return *owner;
}

int64_t Conversations::auto_linked_cases(const std::string &account_id) {
  int64_t count = 0;
  (void)db_.run(
      "SELECT COUNT(DISTINCT l.case_id) FROM message_links l "
      "JOIN messages m ON m.id = l.message_id WHERE m.account_id = ? AND l.method != 'manual'",
      {account_id}, [&](const Row &row) { count = row.integer(0); });
  return count;
}

}  // namespace connector::store
