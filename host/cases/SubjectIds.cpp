#include "cases/SubjectIds.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace connector::cases {
namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string lowered(std::string_view text) {
  std::string out(text);
  for (char &c : out) c = lower(c);
  return out;
}

// True when `text` at `at` starts with `word` (already lower case), ignoring case.
bool starts_with_at(std::string_view text, size_t at, std::string_view word) {
  if (text.size() - at < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (lower(text[at + i]) != word[i]) return false;
  }
  return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

SubjectReader::SubjectReader(const std::vector<std::string> &patterns,
                             std::vector<std::string> reply_prefixes) {
  for (const auto &pattern : patterns) {
    const size_t at = pattern.find("{id}");
    if (at == std::string::npos) continue;  // the configuration refuses these already
    patterns_.push_back({lowered(pattern.substr(0, at)), lowered(pattern.substr(at + 4))});
  }
  for (auto &prefix : reply_prefixes) reply_prefixes_.push_back(lowered(prefix));
}

std::vector<int64_t> SubjectReader::case_ids(std::string_view subject) const {
  std::vector<int64_t> ids;
  for (size_t at = 0; at < subject.size(); ++at) {
    for (const Pattern &p : patterns_) {
      if (!starts_with_at(subject, at, p.before)) continue;
      const size_t first = at + p.before.size();
      size_t end = first;
      while (end < subject.size() && is_digit(subject[end])) ++end;
      // An empty "before" would match in the middle of a longer number: only at its start.
      if (end == first || end - first > 18) continue;
      if (p.before.empty() && at > 0 && is_digit(subject[at - 1])) continue;
      if (!starts_with_at(subject, end, p.after)) continue;
      if (p.after.empty() && end < subject.size() && is_digit(subject[end])) continue;
      int64_t id = 0;
      std::from_chars(subject.data() + first, subject.data() + end, id);
      if (id > 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
  }
  return ids;
}

std::string SubjectReader::without_prefixes(std::string_view subject) const {
  for (bool stripped = true; stripped;) {
    stripped = false;
    while (!subject.empty() && std::isspace(static_cast<unsigned char>(subject.front()))) {
      subject.remove_prefix(1);
    }
    for (const auto &prefix : reply_prefixes_) {
      if (!starts_with_at(subject, 0, prefix)) continue;
      size_t end = prefix.size();
      // "Re[2]:" and "Re(2):" as some clients count replies.
      if (end < subject.size() && (subject[end] == '[' || subject[end] == '(')) {
        size_t close = end + 1;
        while (close < subject.size() && is_digit(subject[close])) ++close;
        if (close < subject.size() && (subject[close] == ']' || subject[close] == ')')) {
          end = close + 1;
        }
      }
      while (end < subject.size() && subject[end] == ' ') ++end;
      if (end < subject.size() && (subject[end] == ':' || subject[end] == '\xef')) {
        // ':' or the full-width colon U+FF1A (EF BC 9A) used by CJK clients.
        if (subject[end] == ':') {
          subject.remove_prefix(end + 1);
          stripped = true;
        } else if (subject.substr(end, 3) == "\xef\xbc\x9a") {
          subject.remove_prefix(end + 3);
          stripped = true;
        }
      }
      if (stripped) break;
    }
  }
  return std::string(subject);
}

}  // namespace connector::cases
