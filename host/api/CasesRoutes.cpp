// The control API's case routes:
//
//   GET   /cases[?attendant_id=&before=&limit=]   cases, newest first, with their contact
//   POST  /cases                                  {id?, title?, status?, phones?, addresses?,
//                                                  whatsapp_ids?, attendant_id? (admins)}
//   GET   /cases/{id}                             one case with its contact
//   PATCH /cases/{id}                             {title?, status?, phones?, addresses?,
//                                                  whatsapp_ids?}; a list given replaces that
//                                                  kind of identity of the case's contact
//   GET   /cases/{id}/messages                    its messages from every channel, newest first
//   GET   /messages/{id}                          one message with its link
//   POST  /messages/{id}/link                     {"case_id": N | null}: filed by hand
//   GET   /merges[?contact_id=&limit=]            contact merges, newest first (admins)
//   GET   /merges/{id}, POST /merges/{id}/undo    (admins)
//
// An attendant sees and moves only their own cases and messages: anything else answers 404, as
// if it did not exist. Contacts belong to one attendant, so a case shows only its attendant's
// contact. Merges are an admin's tool (an attendant's undo would need a screen of its own).
#include "api/ControlApi.hpp"
#include "api/RequestReaders.hpp"
#include "cases/Casework.hpp"

namespace connector::api {
namespace {

Response no_casework() {
  return Response::error(503, "unavailable", "the case engine is not running");
}

Response bad_field(const std::string &message) {
  return Response::error(400, "invalid_request", message);
}

// Reads the case fields of a POST or PATCH body; `creating` allows "id" and "attendant_id".
std::variant<cases::CaseFields, Response> case_fields(const Json &body, bool creating) {
  static const std::vector<std::string> kCreate = {
      "id", "title", "status", "phones", "addresses", "whatsapp_ids", "attendant_id"};
  static const std::vector<std::string> kUpdate = {"title", "status", "phones", "addresses",
                                                   "whatsapp_ids"};
  const auto &allowed = creating ? kCreate : kUpdate;
  for (const auto &[key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string valid;
    for (const auto &a : allowed) valid += (valid.empty() ? "" : ", ") + a;
    return Response::error(400, "unknown_field",
                           "unknown field \"" + key + "\"; valid fields: " + valid);
  }

  cases::CaseFields fields;
  if (body.contains("id")) {
    // Read as unsigned too: a JSON number above 2^63 would wrap to a negative int64_t.
    const Json &id = body["id"];
    const bool in_range =
        id.is_number_unsigned()
            ? id.get<uint64_t>() >= 1 && id.get<uint64_t>() <= uint64_t{cases::kMaxCaseId}
            : id.is_number_integer() && id.get<int64_t>() >= 1 &&
                  id.get<int64_t>() <= cases::kMaxCaseId;
    if (!in_range) {
      return bad_field(
          "\"id\" must be an integer from 1 to 9007199254740991 (2^53 - 1, the largest a "
          "JavaScript number holds exactly)");
    }
    fields.id = id.get<int64_t>();
  }
  if (body.contains("title")) {
    if (!body["title"].is_string()) return bad_field("\"title\" must be a string");
    fields.title = body["title"].get<std::string>();
  }
  if (body.contains("status")) {
    if (!body["status"].is_string() || (body["status"] != "open" && body["status"] != "closed")) {
      return bad_field("\"status\" is \"open\" or \"closed\"");
    }
    fields.status = body["status"].get<std::string>();
  }
  const auto list = [&](const char *name,
                        std::optional<std::vector<std::string>> &out) -> std::optional<Response> {
    if (!body.contains(name)) return std::nullopt;
    const Json &items = body[name];
    const bool strings = items.is_array() && items.size() <= 50 &&
                         std::all_of(items.begin(), items.end(), [](const Json &i) {
                           return i.is_string() && i.get<std::string>().size() <= 320;
                         });
    if (!strings) {
      return bad_field(std::string("\"") + name + "\" must be a list of at most 50 strings");
    }
    out.emplace();
    for (const auto &item : items) out->push_back(item.get<std::string>());
    return std::nullopt;
  };
  if (auto bad = list("phones", fields.phones)) return *bad;
  if (auto bad = list("addresses", fields.addresses)) return *bad;
  if (auto bad = list("whatsapp_ids", fields.whatsapp_ids)) return *bad;
  return fields;
}

}  // namespace

bool ControlApi::may_see_case(const Call &call, int64_t case_id) {
  auto owner = conversations_.case_owner(case_id);
  return owner && (call.who().admin() || *owner == call.who().attendant_id);
}

Response ControlApi::cases_route(Call &call) {
  const std::string &head = call.at(0);
  if (head == "merges") return merges_route(call);
  const bool cases = head == "cases";
  if (cases && call.size() == 1 && call.is("POST")) return create_case(call);
  if (cases && call.size() == 2 && call.is("PATCH")) {
    auto id = parse_int(call.at(1));
    if (!id || !may_see_case(call, *id)) return not_found();
    return update_case(call, *id);
  }
  if (!cases && call.size() == 3 && call.at(2) == "link") {
    auto id = parse_int(call.at(1));
    auto owner = id ? conversations_.message_owner(*id) : Expected<std::string>(Failure{});
    if (!owner || (!call.who().admin() && *owner != call.who().attendant_id)) return not_found();
    return call.is("POST") ? link_message(call, *id) : method_not_allowed();
  }
  if (!call.is("GET")) return method_not_allowed();
  auto page = page_of(call.request);
  if (!page) return bad_page();

  if (cases && call.size() == 1) {
    std::string owner = call.who().attendant_id;
    if (auto it = call.request.query.find("attendant_id");
        it != call.request.query.end() && call.who().admin()) {
      owner = it->second;
    }
    std::vector<Json> items = conversations_.cases(owner, *page);
    if (casework_ != nullptr) {
      for (auto &item : items) {
        if (auto full = casework_->case_json(item["id"])) item = std::move(*full);
      }
    }
    return Response::json(200, page_json(std::move(items), *page));
  }
  if (call.size() < 2) return not_found();
  auto id = parse_int(call.at(1));
  if (!id) return not_found();
  auto owner = cases ? conversations_.case_owner(*id) : conversations_.message_owner(*id);
  if (!owner || (!call.who().admin() && *owner != call.who().attendant_id)) return not_found();

  if (!cases && call.size() == 2) {
    auto message = conversations_.message(*id);
    if (!message) return fail(message.failure());
    // Filed by an admin on another attendant's case: the case is not the caller's to know, as
    // in the message.linked event they got.
    Json &linked = (*message)["case"];
    if (!call.who().admin() && linked.is_object() && linked["id"].is_number_integer() &&
        !may_see_case(call, linked["id"].get<int64_t>())) {
      linked["id"] = nullptr;
    }
    return Response::json(200, *message);
  }
  if (cases && call.size() == 2) {
    auto summary =
        casework_ != nullptr ? casework_->case_json(*id) : conversations_.case_summary(*id);
    return summary ? Response::json(200, *summary) : fail(summary.failure());
  }
  if (cases && call.size() == 3 && call.at(2) == "messages") {
    return Response::json(200, page_json(conversations_.case_messages(*id, *page), *page));
  }
  return not_found();
}

Response ControlApi::create_case(Call &call) {
  if (casework_ == nullptr) return no_casework();
  auto read = case_fields(call.body, true);
  if (auto *bad = std::get_if<Response>(&read)) return *bad;
  const auto &fields = std::get<cases::CaseFields>(read);

  std::string owner = call.who().attendant_id;
  if (call.body.contains("attendant_id")) {
    if (!call.body["attendant_id"].is_string()) return bad_field("\"attendant_id\" is a string");
    if (!call.who().admin()) {
      return Response::error(403, "forbidden", "only admins create cases for others");
    }
    owner = call.body["attendant_id"];
    if (auto exists = people_.find(owner); !exists) return fail(exists.failure());
  }
  auto created = casework_->create_case(owner, fields, call.who().attendant_id);
  if (!created) return fail(created.failure());
  auto shown = casework_->case_json(*created);
  return shown ? Response::json(201, *shown) : fail(shown.failure());
}

Response ControlApi::update_case(Call &call, int64_t case_id) {
  if (casework_ == nullptr) return no_casework();
  auto read = case_fields(call.body, false);
  if (auto *bad = std::get_if<Response>(&read)) return *bad;
  auto updated =
      casework_->update_case(case_id, std::get<cases::CaseFields>(read), call.who().attendant_id);
  if (!updated) return fail(updated.failure());
  auto shown = casework_->case_json(case_id);
  return shown ? Response::json(200, *shown) : fail(shown.failure());
}

Response ControlApi::link_message(Call &call, int64_t message_id) {
  if (casework_ == nullptr) return no_casework();
  for (const auto &[key, value] : call.body.items()) {
    if (key != "case_id") {
      return Response::error(400, "unknown_field",
                             "unknown field \"" + key + "\"; valid fields: case_id");
    }
  }
  if (!call.body.contains("case_id")) {
    return Response::error(400, "missing_field", "\"case_id\" is required (null unlinks)");
  }
  const Json &target = call.body["case_id"];
  std::optional<int64_t> case_id;
  if (!target.is_null()) {
    if (!target.is_number_integer()) return bad_field("\"case_id\" must be a case id or null");
    case_id = target.get<int64_t>();
    if (!may_see_case(call, *case_id)) return not_found();
  }
  auto moved = casework_->move_message(message_id, case_id, call.who().attendant_id);
  if (!moved) return fail(moved.failure());
  auto shown = conversations_.message(message_id);
  return shown ? Response::json(200, *shown) : fail(shown.failure());
}

Response ControlApi::merges_route(Call &call) {
  if (casework_ == nullptr) return no_casework();
  if (!call.who().admin()) return not_found();
  auto &contacts = casework_->contacts();
  if (call.size() == 1) {
    if (!call.is("GET")) return method_not_allowed();
    auto page = page_of(call.request);
    if (!page) return bad_page();
    std::optional<int64_t> contact;
    if (auto it = call.request.query.find("contact_id"); it != call.request.query.end()) {
      contact = parse_int(it->second);
      if (!contact) return bad_field("\"contact_id\" must be a contact id");
    }
    return Response::json(200, {{"items", contacts.merges(contact, page->limit)}});
  }
  auto id = parse_int(call.at(1));
  if (!id) return not_found();
  if (call.size() == 2) {
    if (!call.is("GET")) return method_not_allowed();
    auto merge = contacts.merge_json(*id);
    return merge ? Response::json(200, *merge) : fail(merge.failure());
  }
  if (call.size() == 3 && call.at(2) == "undo") {
    if (!call.is("POST")) return method_not_allowed();
    auto undone = casework_->undo_merge(*id, call.who().attendant_id);
    if (!undone) return fail(undone.failure());
    auto merge = contacts.merge_json(*id);
    return merge ? Response::json(200, *merge) : fail(merge.failure());
  }
  return not_found();
}

}  // namespace connector::api
