#include "cases/Casework.hpp"

#include <algorithm>

#include "log/Log.hpp"

namespace connector::cases {
namespace {

constexpr size_t kMaxTitle = 200;

std::string clipped(std::string text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;  // UTF-8
  text.resize(end);
  return text;
}

}  // namespace

Expected<std::unique_ptr<Casework>> Casework::open(store::Database &db, accounts::EventHub &events,
                                                   const config::Matching &settings) {
  auto lookups = MatchLookups::open(db);
  if (!lookups) return lookups.failure();
  return std::unique_ptr<Casework>(new Casework(db, events, settings, std::move(*lookups)));
}

Casework::Casework(store::Database &db, accounts::EventHub &events,
                   const config::Matching &settings, std::unique_ptr<MatchLookups> lookups)
    : db_(db),
      events_(events),
      conversations_(db),
      lookups_(std::move(lookups)),
      matcher_(std::make_unique<CaseMatcher>(settings, *lookups_)),
      contacts_(db) {}

Expected<Ingested> Casework::ingest(const std::string &account_id, const std::string &attendant_id,
                                    store::NewMessage message) {
  std::vector<store::NewMessage> one;
  one.push_back(std::move(message));
  auto filed = ingest_all(account_id, attendant_id, std::move(one));
  if (!filed) return filed.failure();
  return std::move(filed->front());
}

Expected<std::vector<Ingested>> Casework::ingest_all(const std::string &account_id,
                                                     const std::string &attendant_id,
                                                     std::vector<store::NewMessage> messages) {
  for (auto &message : messages) message.account_id = account_id;
  std::lock_guard lock(mutex_);
  const int64_t now = store::now_ms();
  std::vector<Filing> filings(messages.size());
  // Decided inside the write transaction: nothing can change between a decision and the
  // writes it leads to, each message sees the ones before it, and the matcher reads the pages
  // this connection keeps warm.
  auto applied = db_.transaction([&]() -> Outcome {
    for (size_t i = 0; i < messages.size(); ++i) {
      if (auto filed = file(attendant_id, messages[i], now, filings[i]); !filed) return filed;
    }
    return Ok{};
  });
  if (!applied) return applied.failure();

  std::vector<Ingested> out;
  out.reserve(filings.size());
  bool linked = false;
  for (size_t i = 0; i < filings.size(); ++i) {
    Filing &f = filings[i];
    if (f.out.stored.inserted) {
      f.out.stored.case_id = f.out.decision.case_id;
      f.out.stored.method = f.out.decision.method;
      log::debug({messages[i].channel, account_id},
                 "message " + std::to_string(f.out.stored.id) + ": " + f.out.decision.why);
      if (f.out.decision.case_id && (f.opened_case || f.reopened)) {
        if (auto e = case_event(*f.out.decision.case_id)) {
          events_.publish(attendant_id, f.opened_case ? "case.created" : "case.updated",
                          std::move(*e));
        }
      }
      if (f.out.decision.case_id) {
        // One message: its link counts by itself. Several: the count is read back once, as the
        // links of one batch may reach the same new case more than once.
        if (messages.size() == 1) count_new_link(account_id, attendant_id, f.first_for_account);
        linked = true;
      }
    }
    out.push_back(std::move(f.out));
  }
  if (linked && messages.size() > 1) recount(account_id, attendant_id);
  return out;
}

// Inside the write transaction: stores one message and applies the matcher's decision for it.
Outcome Casework::file(const std::string &attendant_id, store::NewMessage &message, int64_t now,
                       Filing &f) {
  Decision &decision = f.out.decision;
  decision = matcher_->decide(attendant_id, message, now);
  auto stored = conversations_.insert_in_transaction(message);
  if (!stored) return stored.failure();
  f.out.stored = *stored;
  if (!stored->inserted) return Ok{};  // a replay: stored and filed the first time

  std::optional<int64_t> contact = decision.contact_id;
  // Automatic mail that goes on no case (a bounce, a newsletter from a stranger) leaves no
  // contact behind either.
  const bool leaves_no_trace =
      message.automatic && decision.verdict == Decision::Verdict::kUnassigned;
  if (!contact && !decision.identities.empty() && !leaves_no_trace) {
    auto created = contacts_.create(attendant_id, decision.identities);
    if (!created) return created.failure();
    contact = *created;
    decision.contact_id = contact;
  } else if (contact) {
    for (int64_t other : decision.merge_into_contact) {
      auto merged = contacts_.merge(*contact, other, "named together by one message", "");
      if (!merged) return merged.failure();
    }
    // Only what no contact has yet: a known identity would be one more statement per message.
    if (auto attached = contacts_.attach(attendant_id, *contact, decision.unknown_identities);
        !attached) {
      return attached;
    }
  }

  if (decision.verdict == Decision::Verdict::kUnassigned) return Ok{};
  if (decision.verdict == Decision::Verdict::kNewCase) {
    auto opened = open_case(attendant_id, contact, title_for(message, decision), std::nullopt);
    if (!opened) return opened.failure();
    decision.case_id = *opened;
    f.opened_case = true;
  } else {
    auto touched = db_.run(
        decision.reopen
            ? "UPDATE cases SET status = 'open', closed_at = NULL, updated_at = ? WHERE id = ?"
            : "UPDATE cases SET updated_at = ? WHERE id = ?",
        {now, *decision.case_id});
    if (!touched) return touched;
    f.reopened = decision.reopen;
  }
  // Whether this is the account's first automatic link to the case (the count beside the
  // channel then grows). CROSS JOIN keeps message_links outside: otherwise the planner may
  // walk every message of the account (messages_account) and probe each link, ~18 ms a
  // message at 20,000 messages.
  f.first_for_account = true;
  if (!f.opened_case) {
    auto read = db_.run(
        "SELECT 1 FROM message_links l CROSS JOIN messages m ON m.id = l.message_id "
        "WHERE l.case_id = ? AND m.account_id = ? AND l.method != 'manual' LIMIT 1",
        {*decision.case_id, message.account_id},
        [&](const store::Row &) { f.first_for_account = false; });
    if (!read) return read;
  }
  return db_.run(
      "INSERT INTO message_links (message_id, case_id, method, linked_by, linked_at) "
      "VALUES (?, ?, ?, '', ?)",
      {f.out.stored.id, *decision.case_id, decision.method, now});
}

Expected<Ingested> Casework::file_sent(const std::string &account_id,
                                       const std::string &attendant_id, store::NewMessage message,
                                       std::optional<int64_t> case_id, const std::string &by) {
  if (!case_id) return ingest(account_id, attendant_id, std::move(message));
  message.account_id = account_id;
  std::lock_guard lock(mutex_);
  const int64_t now = store::now_ms();
  Ingested out;
  auto applied = db_.transaction([&]() -> Outcome {
    auto stored = conversations_.insert_in_transaction(message);
    if (!stored) return stored.failure();
    out.stored = *stored;
    if (!stored->inserted) return Ok{};
    auto linked = db_.run(
        "INSERT INTO message_links (message_id, case_id, method, linked_by, linked_at) "
        "VALUES (?, ?, 'manual', ?, ?)",
        {out.stored.id, *case_id, by, now});
    if (!linked) return linked;
    return db_.run("UPDATE cases SET updated_at = ? WHERE id = ?", {now, *case_id});
  });
  if (!applied) return applied.failure();
  if (!out.stored.inserted) return out;
  out.stored.case_id = case_id;
  out.stored.method = "manual";
  out.decision.verdict = Decision::Verdict::kLink;
  out.decision.case_id = case_id;
  out.decision.method = "manual";
  if (auto e = case_event(*case_id)) events_.publish(attendant_id, "case.updated", std::move(*e));
  return out;
}

std::string Casework::title_for(const store::NewMessage &message, const Decision &decision) const {
  std::string title = matcher_->subjects().without_prefixes(message.subject);
  if (title.empty()) title = message.text.substr(0, message.text.find('\n'));
  if (title.empty() && !decision.identities.empty()) title = decision.identities.front().value;
  return clipped(std::move(title), kMaxTitle);
}

// The host numbers the cases it opens from a counter of its own (host_case_counter): the id after
// the last one it chose, skipping ids already taken. An id the platform gave never moves the
// counter, so the platform's own numbering (5000, 5001, …) does not meet the host's next case.
// Should the counter reach kMaxCaseId: the lowest gap, so no case id ever passes what JavaScript
// holds exactly.
Expected<int64_t> Casework::next_case_id() {
  int64_t last = 0;
  auto read = db_.run("SELECT last_id FROM host_case_counter WHERE only_row = 1", {},
                      [&](const store::Row &row) { last = row.integer(0); });
  if (!read) return read.failure();
  if (last < kMaxCaseId) {
    bool taken = false;
    read = db_.run("SELECT 1 FROM cases WHERE id = ?", {last + 1},
                   [&](const store::Row &) { taken = true; });
    if (!read) return read.failure();
    if (!taken) return last + 1;
    // The end of the run of taken ids that starts there, plus one.
    int64_t after_run = 0;
    read = db_.run(
        "SELECT coalesce(min(c.id), 0) + 1 FROM cases c WHERE c.id > ? AND NOT EXISTS "
        "(SELECT 1 FROM cases d WHERE d.id = c.id + 1)",
        {last}, [&](const store::Row &row) { after_run = row.integer(0); });
    if (!read) return read.failure();
    if (after_run > last + 1 && after_run <= kMaxCaseId) return after_run;
  }
  std::optional<int64_t> free;
  read = db_.run(
      "SELECT min(x) FROM (SELECT 1 AS x WHERE NOT EXISTS (SELECT 1 FROM cases WHERE id = 1) "
      "UNION ALL SELECT c.id + 1 FROM cases c WHERE c.id < ? AND NOT EXISTS "
      "(SELECT 1 FROM cases d WHERE d.id = c.id + 1)) WHERE x IS NOT NULL",
      {kMaxCaseId}, [&](const store::Row &row) {
        if (!row.is_null(0)) free = row.integer(0);
      });
  if (!read) return read.failure();
  if (!free) return failure("storage", "no case id is left below 2^53");
  return *free;
}

Expected<int64_t> Casework::open_case(const std::string &attendant_id,
                                      std::optional<int64_t> contact_id, const std::string &title,
                                      std::optional<int64_t> id) {
  if (id && (*id < 1 || *id > kMaxCaseId)) {
    return failure("invalid_request",
                   "a case id is between 1 and 9007199254740991 (2^53 - 1, exact in JavaScript)");
  }
  const bool numbered_here = !id;
  if (!id) {
    auto next = next_case_id();
    if (!next) return next.failure();
    id = *next;
  }
  const int64_t now = store::now_ms();
  auto inserted = db_.run(
      "INSERT INTO cases (id, attendant_id, contact_id, title, status, created_at, updated_at) "
      "VALUES (?, ?, ?, ?, 'open', ?, ?)",
      {*id, attendant_id,
       contact_id ? store::Value(*contact_id) : store::Value(), title, now, now});
  if (!inserted) {
    // The same answer whoever holds the id: it names no one's case.
    if (inserted.failure().code == "conflict") {
      return failure("case_id_unavailable",
                     "case id " + std::to_string(*id) +
                         " is not available; leave \"id\" out to have the host number the case");
    }
    return inserted.failure();
  }
  if (numbered_here) {
    auto counted = db_.run("UPDATE host_case_counter SET last_id = ? WHERE only_row = 1 AND last_id < ?",
                           {*id, *id});
    if (!counted) return counted.failure();
  }
  return *id;
}

// --- The platform's verbs ---------------------------------------------------------------------

Expected<std::vector<Identity>> Casework::read_identities(const CaseFields &fields) const {
  const IdentityReader &reader = matcher_->identities();
  std::vector<Identity> out;
  const auto add = [&](const std::string &raw, std::optional<Identity> identity,
                       const char *what) -> Outcome {
    if (!identity) {
      return failure("invalid_request", "\"" + raw + "\" is not " + std::string(what));
    }
    if (std::find(out.begin(), out.end(), *identity) == out.end()) out.push_back(*identity);
    return Ok{};
  };
  for (const auto &raw : fields.phones.value_or(std::vector<std::string>{})) {
    if (auto done = add(raw, reader.phone(raw), "a phone number"); !done) return done.failure();
  }
  for (const auto &raw : fields.whatsapp_ids.value_or(std::vector<std::string>{})) {
    auto done = add(raw, reader.whatsapp_id(raw), "a WhatsApp id of a person");
    if (!done) return done.failure();
  }
  for (const auto &raw : fields.addresses.value_or(std::vector<std::string>{})) {
    if (auto done = add(raw, reader.email(raw), "an e-mail address"); !done) {
      return done.failure();
    }
  }
  return out;
}

// Only `owner`'s contacts are looked at, so naming a customer another attendant also serves
// makes (or joins) a contact of this attendant and never touches the other's.
Expected<std::optional<int64_t>> Casework::join(const std::string &owner,
                                                const std::vector<Identity> &identities,
                                                std::optional<int64_t> current,
                                                const std::string &reason, const std::string &by) {
  std::vector<int64_t> found;
  if (current) found.push_back(*current);
  for (const auto &identity : identities) {
    auto contact = contacts_.contact_of(owner, identity);
    if (contact && std::find(found.begin(), found.end(), *contact) == found.end()) {
      found.push_back(*contact);
    }
  }
  if (found.empty()) {
    if (identities.empty()) return std::optional<int64_t>();
    auto created = contacts_.create(owner, identities);
    if (!created) return created.failure();
    return std::optional<int64_t>(*created);
  }
  // The platform said these belong together: that is stronger than an earlier undo, so no
  // undone-merge check here (unlike the matcher's).
  const int64_t kept = current ? *current : *std::min_element(found.begin(), found.end());
  for (int64_t other : found) {
    if (other == kept) continue;
    if (auto merged = contacts_.merge(kept, other, reason, by); !merged) return merged.failure();
  }
  if (auto attached = contacts_.attach(owner, kept, identities); !attached) {
    return attached.failure();
  }
  return std::optional<int64_t>(kept);
}

Expected<int64_t> Casework::create_case(const std::string &attendant_id, const CaseFields &fields,
                                        const std::string &by) {
  auto identities = read_identities(fields);
  if (!identities) return identities.failure();
  if (fields.status && *fields.status != "open" && *fields.status != "closed") {
    return failure("invalid_request", "\"status\" is \"open\" or \"closed\"");
  }
  if (fields.id && (*fields.id < 1 || *fields.id > kMaxCaseId)) {
    return failure("invalid_request",
                   "\"id\" must be between 1 and 9007199254740991 (2^53 - 1, exact in JavaScript)");
  }
  std::lock_guard lock(mutex_);
  int64_t case_id = 0;
  auto done = db_.transaction([&]() -> Outcome {
    auto contact = join(attendant_id, *identities, std::nullopt, "given together on a new case", by);
    if (!contact) return contact.failure();
    auto opened =
        open_case(attendant_id, *contact, clipped(fields.title.value_or(""), kMaxTitle), fields.id);
    if (!opened) return opened.failure();
    case_id = *opened;
    if (fields.status == "closed") {
      return db_.run("UPDATE cases SET status = 'closed', closed_at = ? WHERE id = ?",
                     {store::now_ms(), case_id});
    }
    return Ok{};
  });
  if (!done) return done.failure();
  if (auto e = case_event(case_id)) events_.publish(attendant_id, "case.created", std::move(*e));
  return case_id;
}

// A list given replaces that kind of identity of the contact; messages already filed stay where
// they are (an identity taken away only stops future matching through it).
Outcome Casework::replace_identities(int64_t contact_id, const CaseFields &fields,
                                     const std::vector<Identity> &given) {
  std::vector<std::pair<const char *, bool>> kinds = {
      {"phone", fields.phones.has_value()},
      {"email", fields.addresses.has_value()},
      {"whatsapp", fields.whatsapp_ids.has_value()}};
  for (const auto &[kind, replaced] : kinds) {
    if (!replaced) continue;
    if (auto kept = contacts_.keep_only(contact_id, kind, given); !kept) return kept;
  }
  return Ok{};
}

Outcome Casework::update_case(int64_t case_id, const CaseFields &fields, const std::string &by) {
  auto identities = read_identities(fields);
  if (!identities) return identities.failure();
  if (fields.status && *fields.status != "open" && *fields.status != "closed") {
    return failure("invalid_request", "\"status\" is \"open\" or \"closed\"");
  }
  std::lock_guard lock(mutex_);
  std::optional<int64_t> contact;
  std::string owner;
  auto done = db_.transaction([&]() -> Outcome {
    bool exists = false;
    auto read = db_.run("SELECT contact_id, attendant_id FROM cases WHERE id = ?", {case_id},
                        [&](const store::Row &row) {
                          exists = true;
                          contact = row.optional_integer(0);
                          owner = row.text(1);
                        });
    if (!read) return read;
    if (!exists) return failure("not_found", "no case " + std::to_string(case_id));

    const int64_t now = store::now_ms();
    if (!identities->empty()) {
      auto joined =
          join(owner, *identities, contact, "given to case " + std::to_string(case_id), by);
      if (!joined) return joined.failure();
      if (*joined != contact) {
        auto set = db_.run("UPDATE cases SET contact_id = ? WHERE id = ?", {**joined, case_id});
        if (!set) return set;
      }
      contact = *joined;
    }
    if (contact) {
      if (auto replaced = replace_identities(*contact, fields, *identities); !replaced) {
        return replaced;
      }
    }
    if (fields.title) {
      auto set = db_.run("UPDATE cases SET title = ? WHERE id = ?",
                         {clipped(*fields.title, kMaxTitle), case_id});
      if (!set) return set;
    }
    if (fields.status == "closed") {
      auto set = db_.run(
          "UPDATE cases SET status = 'closed', closed_at = ? WHERE id = ? AND status = 'open'",
          {now, case_id});
      if (!set) return set;
    } else if (fields.status == "open") {
      auto set =
          db_.run("UPDATE cases SET status = 'open', closed_at = NULL WHERE id = ?", {case_id});
      if (!set) return set;
    }
    return db_.run("UPDATE cases SET updated_at = ? WHERE id = ?", {now, case_id});
  });
  if (!done) return done;

  // The contact every case of this contact shows changed too.
  std::vector<int64_t> changed = {case_id};
  if (contact && (fields.phones || fields.addresses || fields.whatsapp_ids)) {
    (void)db_.run(
        "SELECT id FROM cases WHERE contact_id = ? AND attendant_id = ? AND id != ? "
        "ORDER BY id DESC LIMIT 99",
        {*contact, owner, case_id}, [&](const store::Row &row) { changed.push_back(row.integer(0)); });
  }
  for (int64_t id : changed) {
    if (auto e = case_event(id)) events_.publish(owner, "case.updated", std::move(*e));
  }
  return Ok{};
}

Outcome Casework::move_message(int64_t message_id, std::optional<int64_t> case_id,
                               const std::string &by) {
  std::string account_id, attendant_id;
  auto read = db_.run(
      "SELECT m.account_id, a.attendant_id FROM messages m JOIN accounts a ON a.id = m.account_id "
      "WHERE m.id = ?",
      {message_id}, [&](const store::Row &row) {
        account_id = row.text(0);
        attendant_id = row.text(1);
      });
  if (!read) return read;
  if (account_id.empty()) return failure("not_found", "no message " + std::to_string(message_id));

  std::lock_guard lock(mutex_);
  std::optional<int64_t> previous;
  std::string previous_owner, new_owner;
  auto done = db_.transaction([&]() -> Outcome {
    auto read = db_.run(
        "SELECT l.case_id, c.attendant_id FROM message_links l JOIN cases c ON c.id = l.case_id "
        "WHERE l.message_id = ?",
        {message_id}, [&](const store::Row &row) {
          previous = row.integer(0);
          previous_owner = row.text(1);
        });
    if (!read) return read;
    if (!case_id) return db_.run("DELETE FROM message_links WHERE message_id = ?", {message_id});
    auto owner = conversations_.case_owner(*case_id);
    if (!owner) return owner.failure();
    new_owner = *owner;
    const int64_t now = store::now_ms();
    auto linked = db_.run(
        "INSERT INTO message_links (message_id, case_id, method, linked_by, linked_at) "
        "VALUES (?, ?, 'manual', ?, ?) ON CONFLICT (message_id) DO UPDATE SET "
        "case_id = excluded.case_id, method = 'manual', linked_by = excluded.linked_by, "
        "linked_at = excluded.linked_at",
        {message_id, *case_id, by, now});
    if (!linked) return linked;
    return db_.run("UPDATE cases SET updated_at = ? WHERE id = ?", {now, *case_id});
  });
  if (!done) return done;

  // The message's attendant, and the attendant of the case it went to (an admin may file it on
  // another attendant's case, where that attendant sees it), each hear of the move; a case id
  // is named only to its own attendant. The attendant of the case it left sees only that case
  // change: the message is no longer theirs to see.
  if (auto shown = conversations_.message(message_id)) {
    std::vector<std::string> told = {attendant_id};
    if (case_id && new_owner != attendant_id) told.push_back(new_owner);
    for (const auto &who : told) {
      Json message = *shown;
      if (case_id && new_owner != who) message["case"]["id"] = nullptr;
      events_.publish(who, "message.linked",
                      {{"message", std::move(message)},
                       {"previous_case_id",
                        previous && previous_owner == who ? Json(*previous) : Json(nullptr)}});
    }
  }
  if (previous && previous != case_id) {
    if (auto e = case_event(*previous)) events_.publish(previous_owner, "case.updated", std::move(*e));
  }
  if (case_id) {
    if (auto e = case_event(*case_id)) events_.publish(new_owner, "case.updated", std::move(*e));
  }
  // The case the message left may have lost its last automatic link from this account.
  recount(account_id, attendant_id);
  return Ok{};
}

Outcome Casework::undo_merge(int64_t merge_id, const std::string &by) {
  std::lock_guard lock(mutex_);
  auto done = db_.transaction([&] { return contacts_.undo_merge(merge_id, by); });
  if (!done) return done;
  // The cases of both contacts show another contact now (up to 100, newest first).
  std::vector<std::pair<int64_t, std::string>> changed;
  (void)db_.run(
      "SELECT c.id, c.attendant_id FROM contact_merges g JOIN cases c "
      "ON c.contact_id IN (g.kept_id, g.merged_id) WHERE g.id = ? ORDER BY c.id DESC LIMIT 100",
      {merge_id},
      [&](const store::Row &row) { changed.emplace_back(row.integer(0), row.text(1)); });
  for (const auto &[id, owner] : changed) {
    if (auto e = case_event(id)) events_.publish(owner, "case.updated", std::move(*e));
  }
  return Ok{};
}

Expected<Json> Casework::case_json(int64_t case_id) {
  auto summary = conversations_.case_summary(case_id);
  if (!summary) return summary.failure();
  std::optional<int64_t> contact;
  if ((*summary)["contact_id"].is_number_integer()) contact = (*summary)["contact_id"];
  (*summary)["contact"] = contacts_.contact_json(contact);
  return *summary;
}

// --- The live count beside each channel -------------------------------------------------------

// Called under mutex_ after an automatic link is committed; `first_for_account`: the account
// had no automatic link to that case before.
void Casework::count_new_link(const std::string &account_id, const std::string &attendant_id,
                              bool first_for_account) {
  auto known = auto_linked_.find(account_id);
  if (known == auto_linked_.end()) {
    // First time this run: the stored figure already includes this link.
    const int64_t cases = lookups_->auto_linked_cases(account_id);
    auto_linked_[account_id] = cases;
    publish_count(account_id, attendant_id, cases);
    return;
  }
  if (first_for_account) publish_count(account_id, attendant_id, ++known->second);
}

// Called under mutex_.
void Casework::recount(const std::string &account_id, const std::string &attendant_id) {
  const int64_t cases = lookups_->auto_linked_cases(account_id);
  auto known = auto_linked_.find(account_id);
  if (known != auto_linked_.end() && known->second == cases) return;
  auto_linked_[account_id] = cases;
  publish_count(account_id, attendant_id, cases);
}

// {"case": …} for a case.* event, published after the change is committed to the case's
// attendant (and admins) only: EventHub never hands it to another attendant.
std::optional<Json> Casework::case_event(int64_t case_id) {
  auto shown = case_json(case_id);
  if (!shown) return std::nullopt;
  return Json{{"case", std::move(*shown)}};
}

void Casework::publish_count(const std::string &account_id, const std::string &attendant_id,
                             int64_t cases) {
  events_.publish(attendant_id, "account.auto_linked",
                  {{"account_id", account_id}, {"cases", cases}});
}

}  // namespace connector::cases
