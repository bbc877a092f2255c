// Case ids written in mail subjects ("[#123]", "Ticket#123"), and subjects without their reply
// and forward prefixes.
//
// Patterns are literal text around "{id}" (digits), compared ignoring ASCII case, found anywhere
// in the subject: a prefix such as "RES:", "ENC:" or "AW: WG:" can never hide an id.
// Threading: immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace connector::cases {

class SubjectReader {
 public:
  SubjectReader(const std::vector<std::string> &patterns, std::vector<std::string> reply_prefixes);

  // Every case id the subject holds, in order of appearance, without repeats.
  std::vector<int64_t> case_ids(std::string_view subject) const;

  // The subject without leading reply/forward prefixes ("RE: ENC: Fwd: Pedido" → "Pedido"),
  // also in their bracketed and counted forms ("Re[2]:", "[Fwd:" is left alone).
  std::string without_prefixes(std::string_view subject) const;

 private:
  struct Pattern {
    std::string before;  // lower case
    std::string after;   // lower case
  };
  std::vector<Pattern> patterns_;
  std::vector<std::string> reply_prefixes_;  // lower case
};

}  // namespace connector::cases
