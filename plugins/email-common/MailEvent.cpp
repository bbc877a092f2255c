#include "MailEvent.hpp"

#include <chrono>
#include <ctime>

#include "MailIdentity.hpp"
#include "MailParser.hpp"

namespace connector::email {
namespace {

using sdk::Json;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string join(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

Json quarantined_event(const ReceivedMail &mail, const std::string &raw_id) {
  return {
      {"type", "message"},
      {"direction", "inbound"},
      {"external_id", external_id_for("", mail.raw)},
      {"from", ""},
      {"subject", "(a message that could not be read)"},
      {"text", ""},
      {"timestamp",
       internal_date_ms(mail.internal_date) != 0 ? internal_date_ms(mail.internal_date) : now_ms()},
      // Never opens a case: nobody can tell who sent it.
      {"automatic", true},
      {"link", sdk::LinkKeys{}.to_json()},
      {"details",
       {{"quarantined", true},
        {"raw_attachment_id", raw_id},
        {"imap_uid", mail.uid},
        {"imap_uid_validity", mail.uid_validity}}},
      {"attachments", Json::array()}};
}

}  // namespace

int64_t internal_date_ms(const std::string &text) {
  std::tm tm{};
  char month[4] = {};
  int day = 0, year = 0, hour = 0, minute = 0, second = 0, zone = 0;
  if (std::sscanf(text.c_str(), "%d-%3s-%d %d:%d:%d %d", &day, month, &year, &hour, &minute,
                  &second, &zone) != 7) {
    return 0;
  }
  static const std::string kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const size_t index = kMonths.find(month);
  if (index == std::string::npos) return 0;
  tm.tm_year = year - 1900;
  tm.tm_mon = static_cast<int>(index / 3);
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const int sign = zone < 0 ? -1 : 1;
  const int offset_s = sign * ((std::abs(zone) / 100) * 3600 + (std::abs(zone) % 100) * 60);
  return (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000;
}

std::vector<std::string> case_ids_in(const std::string &subject, const std::regex &pattern) {
  std::vector<std::string> ids;
  for (auto it = std::sregex_iterator(subject.begin(), subject.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    const std::string id = it->size() > 1 ? (*it)[1].str() : (*it)[0].str();
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

std::optional<MessageEvent> build_message_event(const ReceivedMail &mail,
                                                const AttachmentSink &store,
                                                const std::regex &case_id_pattern) {
  auto raw_id = store(mail.raw);
  if (!raw_id) return std::nullopt;

  auto parsed = mail.headers_only ? parse_mail_headers(mail.raw) : parse_mail(mail.raw);
  if (!parsed) return MessageEvent{quarantined_event(mail, *raw_id), true};

  Json attachments = Json::array();
  for (const auto &a : parsed->attachments) {
    auto id = store(a.bytes);
    if (!id) return std::nullopt;
    Json entry = {{"id", *id}, {"name", a.name}, {"mime", a.mime}};
    if (!a.content_id.empty()) entry["content_id"] = a.content_id;
    attachments.push_back(std::move(entry));
  }

  Json details = {{"message_id", parsed->message_id},
                  {"cc", join(parsed->cc)},
                  {"from_name", parsed->from_name},
                  {"raw_attachment_id", *raw_id},
                  {"imap_uid", mail.uid},
                  {"imap_uid_validity", mail.uid_validity},
                  {"quarantined", false}};
  if (parsed->automatic) details["automatic_reason"] = parsed->automatic_reason;
  if (mail.headers_only) {
    details["oversized"] = true;
    details["size"] = mail.size;
  }
  std::string text = parsed->text;
  if (!parsed->truncated.empty()) {
    details["truncated"] = parsed->truncated;
    text += std::string(text.empty() ? "" : "\n\n") + "[Not all of this mail could be read (" +
            parsed->truncated + "); the original mail is kept whole.]";
  }
  int64_t timestamp = parsed->date_ms.value_or(0);
  if (!parsed->date_ms) {
    details["date_unreadable"] = true;
    timestamp = internal_date_ms(mail.internal_date);
    if (timestamp == 0) timestamp = now_ms();
  }

  sdk::LinkKeys keys;
  if (!parsed->from.empty()) keys.emails.push_back(parsed->from);
  keys.subject_case_ids = case_ids_in(parsed->subject, case_id_pattern);
  keys.thread_refs = parsed->thread_refs;

  Json event = {{"type", "message"},
                {"direction", "inbound"},
                {"external_id", external_id_for(parsed->message_id, mail.raw)},
                {"from", parsed->from},
                {"to", join(parsed->to)},
                {"subject", parsed->subject},
                {"text", text},
                {"html", parsed->html},
                {"timestamp", timestamp},
                {"automatic", parsed->automatic},
                {"link", keys.to_json()},
                {"details", std::move(details)},
                {"attachments", std::move(attachments)}};
  return MessageEvent{std::move(event), false};
}

sdk::LinkKeys link_keys_of(const Json &event, const std::regex &case_id_pattern) {
  sdk::LinkKeys keys;
  const std::string from = event.value("from", "");
  if (!from.empty()) keys.emails.push_back(from);
  keys.subject_case_ids = case_ids_in(event.value("subject", ""), case_id_pattern);
  const Json link = event.value("link", Json::object());
  for (const auto &ref : link.value("thread_refs", Json::array())) {
    if (ref.is_string()) keys.thread_refs.push_back(ref.get<std::string>());
  }
  return keys;
}

}  // namespace connector::email
