#include "cases/CaseMatcher.hpp"

#include <algorithm>
#include <charconv>

namespace connector::cases {
namespace {

constexpr int64_t kDayMs = 24LL * 60 * 60 * 1000;

// "<abc@host>" and " abc@host " are the same Message-ID as stored: without brackets or blanks.
std::string bare_message_id(std::string id) {
  const auto blank = [](char c) { return c == ' ' || c == '<' || c == '>' || c == '\t'; };
  while (!id.empty() && blank(id.back())) id.pop_back();
  size_t start = 0;
  while (start < id.size() && blank(id[start])) ++start;
  return id.substr(start);
}

bool contains(const std::vector<int64_t> &ids, int64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

CaseMatcher::CaseMatcher(const config::Matching &settings, MatchLookups &lookups)
    : settings_(settings),
      lookups_(lookups),
      identities_(settings.default_region, settings.fold_plus_addressing),
      subjects_(settings.subject_patterns, settings.reply_prefixes) {}

Decision CaseMatcher::decide(const std::string &attendant_id, const store::NewMessage &message,
                             int64_t now_ms) const {
  Decision decision;
  decision.identities = identities_.of_message(message);
  MatchLookups::Snapshot snapshot(lookups_);
  resolve_contact(attendant_id, decision);

  const bool outbound = message.direction == "outbound";
  const bool mail = is_mail(message, decision.identities);
  const auto &rules = mail ? settings_.email_rules : settings_.whatsapp_rules;
  for (const std::string &rule : rules) {
    std::optional<CaseRow> found;
    std::string method = rule;
    if (rule == "thread") {
      found = by_thread(attendant_id, message);
    } else if (rule == "subject") {
      found = by_subject(attendant_id, message, decision);
    } else if (rule == "contact") {
      found = by_contact(attendant_id, decision, outbound);
      method = contact_method(decision);
    }
    if (!found) continue;
    decision.verdict = Decision::Verdict::kLink;
    decision.case_id = found->id;
    decision.method = method;
    decision.why +=
        (decision.why.empty() ? "" : "; ") + rule + " rule found case " + std::to_string(found->id);
    if (!found->open) settle_closed(*found, message, now_ms, decision);
    return decision;
  }

  if (outbound) {
    decision.why += (decision.why.empty() ? "" : "; ") +
                    std::string("no case found, and an outbound message never opens one");
  } else if (message.automatic) {
    decision.why += (decision.why.empty() ? "" : "; ") +
                    std::string("no case found, and automatic mail never opens one");
  } else if (decision.identities.empty()) {
    // Nobody to open it for (a group message kept off cases, a sender the plugin could not
    // read): a case without a contact would never be found again.
    decision.why += (decision.why.empty() ? "" : "; ") +
                    std::string("no case found, and the message names no one to open one for");
  } else if (settings_.no_match == "new_case") {
    decision.verdict = Decision::Verdict::kNewCase;
    decision.method = "new_case";
    decision.why += (decision.why.empty() ? "" : "; ") + std::string("no case found: a new case");
  } else {
    decision.why += (decision.why.empty() ? "" : "; ") + std::string("no case found: unassigned");
  }
  return decision;
}

bool CaseMatcher::is_mail(const store::NewMessage &message,
                          const std::vector<Identity> &identities) const {
  if (!strings_of(message.link_keys, "thread_refs").empty()) return true;
  return std::any_of(identities.begin(), identities.end(),
                     [](const Identity &i) { return i.kind == "email"; });
}

// The contacts the identities belong to: the oldest is kept and the others merge into it,
// except one whose merge with it was undone by hand.
void CaseMatcher::resolve_contact(const std::string &attendant_id, Decision &decision) const {
  std::vector<int64_t> found;
  for (const auto &identity : decision.identities) {
    auto contact = lookups_.contact_of(attendant_id, identity.kind, identity.value);
    if (!contact) decision.unknown_identities.push_back(identity);
    if (contact && !contains(found, *contact)) found.push_back(*contact);
  }
  if (found.empty()) return;
  const int64_t kept = *std::min_element(found.begin(), found.end());
  decision.contact_id = kept;
  for (int64_t other : found) {
    if (other != kept && !lookups_.merge_was_undone(kept, other)) {
      decision.merge_into_contact.push_back(other);
    }
  }
}

std::optional<CaseRow> CaseMatcher::by_thread(const std::string &attendant_id,
                                              const store::NewMessage &message) const {
  for (const auto &ref : strings_of(message.link_keys, "thread_refs")) {
    auto case_id = lookups_.case_of_message_id(bare_message_id(ref), attendant_id);
    if (!case_id) continue;
    auto row = lookups_.case_row(*case_id);
    if (row && row->attendant_id == attendant_id) return row;
  }
  return std::nullopt;
}

std::optional<CaseRow> CaseMatcher::by_subject(const std::string &attendant_id,
                                               const store::NewMessage &message,
                                               Decision &decision) const {
  std::vector<int64_t> ids = subjects_.case_ids(message.subject);
  for (const auto &text : strings_of(message.link_keys, "subject_case_ids")) {
    int64_t id = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (error == std::errc() && end == text.data() + text.size() && id > 0 && !contains(ids, id)) {
      ids.push_back(id);
    }
  }
  for (int64_t id : ids) {
    auto row = lookups_.case_row(id);
    if (!row || row->attendant_id != attendant_id) continue;
    if (settings_.subject_requires_case_contact) {
      const bool sender_is_contact = row->contact_id && decision.contact_id &&
                                     (*row->contact_id == *decision.contact_id ||
                                      contains(decision.merge_into_contact, *row->contact_id));
      if (!sender_is_contact) {
        decision.why += (decision.why.empty() ? "" : "; ") + std::string("subject names case ") +
                        std::to_string(id) + " but the sender is not its contact";
        continue;
      }
    }
    return row;
  }
  return std::nullopt;
}

std::optional<CaseRow> CaseMatcher::by_contact(const std::string &attendant_id,
                                               const Decision &decision, bool open_only) const {
  if (!decision.contact_id) return std::nullopt;
  std::vector<int64_t> contacts = decision.merge_into_contact;
  contacts.push_back(*decision.contact_id);

  // Newest open case over every contact that is about to become one; else (unless only open
  // ones count) the newest case.
  for (bool open : {true, false}) {
    if (!open && open_only) break;
    std::optional<CaseRow> best;
    for (int64_t contact : contacts) {
      auto row = lookups_.newest_case(contact, attendant_id, open);
      if (row && (!best || row->id > best->id)) best = std::move(row);
    }
    if (best) return best;
  }
  return std::nullopt;
}

void CaseMatcher::settle_closed(const CaseRow &found, const store::NewMessage &message,
                                int64_t now_ms, Decision &decision) const {
  if (message.direction == "outbound") {
    decision.why += ", closed: filed there, and an outbound message never reopens it";
    return;
  }
  if (message.automatic) {
    decision.why += ", closed: automatic mail never reopens it";
    return;
  }
  bool reopen = settings_.closed_case == "reopen";
  if (settings_.closed_case == "reopen_within") {
    reopen = found.closed_at && now_ms - *found.closed_at <= settings_.reopen_within_days * kDayMs;
  }
  if (reopen) {
    decision.reopen = true;
    decision.why += ", closed: reopened";
    return;
  }
  // The conversation already went on in a newer case of the same person (a new case opened by
  // an earlier message of this thread or with this subject): it goes there, not into one more.
  if (decision.contact_id) {
    if (auto open = lookups_.newest_case(*decision.contact_id, found.attendant_id, true)) {
      decision.case_id = open->id;
      decision.method = contact_method(decision);
      decision.why += ", closed: the contact's open case " + std::to_string(open->id) + " instead";
      return;
    }
  }
  decision.verdict = Decision::Verdict::kNewCase;
  decision.case_id.reset();
  decision.method = "new_case";
  decision.why += ", closed: a new case instead";
}

std::string CaseMatcher::contact_method(const Decision &decision) const {
  if (decision.identities.empty()) return "address";
  const std::string &kind = decision.identities.front().kind;
  if (kind == "phone") return "phone";
  if (kind == "whatsapp") return "whatsapp_id";
  return "address";
}

}  // namespace connector::cases
