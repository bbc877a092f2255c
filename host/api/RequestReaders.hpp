// Small readers and answers shared by the control API's route files: paging, field checks and
// the common error answers.
#pragma once

#include "api/Http.hpp"
#include "common/Expected.hpp"
#include "store/Conversations.hpp"

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace connector::api {

Response not_found();
Response method_not_allowed();
// The error answer for a Failure, with the HTTP status its code maps to.
Response fail(const Failure &failure);

// Refuses members other than `allowed`, naming the valid ones.
std::optional<Response> only_fields(const Json &body, std::initializer_list<const char *> allowed);
// Checks that `name` (if present, or always when `required`) is a string of at most `max_size`.
std::optional<Response> string_field(const Json &body, const char *name, bool required,
                                     size_t max_size = 10000);

std::optional<int64_t> parse_int(const std::string &text);
// ?before=<id>&limit=<1..200>; nullopt when either is malformed (answer with bad_page()).
std::optional<store::Page> page_of(const Request &request);
Response bad_page();
// {"items": [...], "next_before": <id of the last item when the page is full, else null>}
Json page_json(std::vector<Json> items, const store::Page &page);

}  // namespace connector::api
