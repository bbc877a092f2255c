#include "cases/Identities.hpp"

#include <phonenumbers/phonenumberutil.h>

#include <algorithm>
#include <cctype>

namespace connector::cases {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// NUL, other C0 controls and DEL: never part of a number, an address or a WhatsApp id.
bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

void add_unique(std::vector<Identity> &out, std::optional<Identity> identity) {
  if (identity && std::find(out.begin(), out.end(), *identity) == out.end()) {
    out.push_back(std::move(*identity));
  }
}

// True for ids of WhatsApp's own servers: people, LIDs, groups, broadcasts, channels.
bool is_whatsapp_server(std::string_view id) {
  const size_t at = id.rfind('@');
  if (at == std::string_view::npos) return false;
  const std::string server = lower(id.substr(at + 1));
  return server == "s.whatsapp.net" || server == "c.us" || server == "lid" || server == "g.us" ||
         server == "broadcast" || server == "newsletter";
}

}  // namespace

std::string with_brazilian_ninth_digit(std::string e164) {
  // +55, a two-digit area code (11–99), then the subscriber number.
  if (e164.size() != 13 || e164.compare(0, 3, "+55") != 0 || e164[3] == '0') return e164;
  const char first = e164[5];
  // Eight-digit mobiles started with 6–9 before the ninth digit was added; 2–5 are landlines.
  if (first >= '6' && first <= '9') e164.insert(5, "9");
  return e164;
}

IdentityReader::IdentityReader(std::string default_region, bool fold_plus_addressing)
    : default_region_(std::move(default_region)), fold_plus_addressing_(fold_plus_addressing) {}

std::optional<Identity> IdentityReader::phone(std::string_view raw) const {
  raw = trimmed(raw);
  if (raw.empty() || has_control(raw)) return std::nullopt;
  // Also E.164 as channels give it is checked by libphonenumber, as "+" and digits alone may name
  // no country ("+0000000", "+999…") or have a length no number of that country has. Parsing it
  // would cost more than the whole match, so its country code is looked up directly (calling
  // codes are prefix-free: at most one of its first one to three digits is one) and the length
  // checked against that country's. A national number starting with 0 (Italy's) is parsed.
  const PhoneNumberUtil &util = *PhoneNumberUtil::GetInstance();
  if (raw.size() >= 4 && raw.size() <= 16 && raw[0] == '+' && all_digits(raw.substr(1))) {
    std::string region;
    for (size_t digits = 1; digits <= 3 && 1 + digits < raw.size(); ++digits) {
      const int code = std::stoi(std::string(raw.substr(1, digits)));
      util.GetRegionCodeForCountryCode(code, &region);
      if (region == "ZZ") continue;
      if (raw[1 + digits] == '0') break;
      PhoneNumber number;
      number.set_country_code(code);
      number.set_national_number(std::stoull(std::string(raw.substr(1 + digits))));
      const std::string e164 = with_brazilian_ninth_digit(std::string(raw));
      if (!util.IsPossibleNumber(number) && e164 == raw) return std::nullopt;
      return Identity{"phone", e164};
    }
  }
  PhoneNumber number;
  if (util.Parse(std::string(raw), default_region_, &number) != PhoneNumberUtil::NO_PARSING_ERROR) {
    return std::nullopt;
  }
  // Not IsValidNumber: an old eight-digit Brazilian mobile is invalid today, yet it is exactly
  // what the ninth-digit rule must accept.
  std::string e164;
  util.Format(number, PhoneNumberUtil::E164, &e164);
  if (!util.IsPossibleNumber(number) && with_brazilian_ninth_digit(e164) == e164) {
    return std::nullopt;
  }
  return Identity{"phone", with_brazilian_ninth_digit(std::move(e164))};
}

std::optional<Identity> IdentityReader::whatsapp_id(std::string_view jid) const {
  jid = trimmed(jid);
  if (has_control(jid)) return std::nullopt;
  const size_t at = jid.find('@');
  if (at == std::string_view::npos) {
    // A bare number, as some bridges give it.
    if (all_digits(jid)) return phone("+" + std::string(jid));
    return std::nullopt;
  }
  std::string_view user = jid.substr(0, at);
  const std::string server = lower(jid.substr(at + 1));
  if (const size_t colon = user.find(':'); colon != std::string_view::npos) {
    user = user.substr(0, colon);  // the device part names a phone of the same person
  }
  if (user.empty()) return std::nullopt;
  if (server == "s.whatsapp.net" || server == "c.us") {
    if (!all_digits(user)) return std::nullopt;
    return phone("+" + std::string(user));
  }
  // A LID is digits too; groups, broadcasts, channels and any other server name no person.
  if (server != "lid" || !all_digits(user)) return std::nullopt;
  return Identity{"whatsapp", std::string(user) + "@lid"};
}

std::optional<Identity> IdentityReader::email(std::string_view raw) const {
  raw = trimmed(raw);
  if (has_control(raw)) return std::nullopt;
  if (const size_t open = raw.rfind('<'); open != std::string_view::npos) {
    const size_t close = raw.find('>', open);
    if (close == std::string_view::npos) return std::nullopt;
    raw = trimmed(raw.substr(open + 1, close - open - 1));
  }
  const size_t at = raw.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == raw.size()) return std::nullopt;
  if (raw.find_first_of(" \t\r\n<>,;") != std::string_view::npos) return std::nullopt;
  std::string local = lower(raw.substr(0, at));
  if (fold_plus_addressing_) {
    if (const size_t plus = local.find('+'); plus != std::string::npos && plus > 0) {
      local.resize(plus);
    }
  }
  return Identity{"email", local + "@" + lower(raw.substr(at + 1))};
}

std::vector<Identity> IdentityReader::of_message(const store::NewMessage &message) const {
  std::vector<Identity> out;
  const store::Json &keys = message.link_keys;
  for (const auto &raw : strings_of(keys, "phones")) add_unique(out, phone(raw));
  for (const auto &raw : strings_of(keys, "whatsapp_ids")) add_unique(out, whatsapp_id(raw));
  for (const auto &raw : strings_of(keys, "emails")) add_unique(out, email(raw));
  // The sender stands in only when the plugin stated no identity lists at all. A plugin that
  // states them has said whom to link, also when they are empty (a group message it keeps off
  // cases) or name no person (a group or broadcast id): then no one.
  const bool stated = keys.is_object() &&
                      (keys.contains("phones") || keys.contains("whatsapp_ids") ||
                       keys.contains("emails"));
  // An outbound message names the person written to: its recipient stands in instead.
  const std::string &sender = message.direction == "outbound" ? message.recipient : message.sender;
  if (out.empty() && !sender.empty() && !stated) {
    if (is_whatsapp_server(sender)) {
      add_unique(out, whatsapp_id(sender));
    } else if (sender.find('@') != std::string::npos) {
      add_unique(out, email(sender));
    } else {
      add_unique(out, phone(sender));
    }
  }
  return out;
}

std::vector<std::string> strings_of(const store::Json &keys, const char *name) {
  std::vector<std::string> out;
  if (!keys.is_object() || !keys.contains(name) || !keys[name].is_array()) return out;
  for (const auto &item : keys[name]) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace connector::cases
