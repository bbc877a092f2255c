#include "api/ControlApi.hpp"

#include "api/RequestReaders.hpp"

#include "log/Log.hpp"
#include "qr/QrImage.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <set>

namespace connector::embedded {
extern const char kOpenApi[];
}

namespace connector::api {

namespace {

std::vector<std::string> split_path(const std::string &path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

Json attendant_json(const auth::Attendant &a) {
  return {{"id", a.id}, {"name", a.name}, {"role", auth::to_string(a.role)},
          {"created_at", a.created_at}};
}

Json token_json(const auth::TokenInfo &t) {
  return {{"id", t.id},
          {"attendant_id", t.attendant_id},
          {"label", t.label},
          {"created_at", t.created_at},
          {"last_used_at", t.last_used_at ? Json(*t.last_used_at) : Json()},
          {"revoked_at", t.revoked_at ? Json(*t.revoked_at) : Json()}};
}

}  // namespace

int status_for(const Failure &failure) {
  static const std::map<std::string, int> kStatus = {
      {"not_found", 404},          {"invalid_request", 400},     {"invalid_argument", 400},
      {"unknown_field", 400},      {"missing_field", 400},       {"invalid_json", 400},
      {"unauthorized", 401},       {"invalid_login_link", 401},  {"forbidden", 403},
      {"conflict", 409},           {"state", 409},               {"unknown_plugin", 422},
      {"auth", 422},               {"unsupported", 422},         {"network", 502},
      {"plugin_unavailable", 503}, {"storage", 503},          {"invalid_oauth_state", 400},
      {"storage_full", 507},      {"attachment_missing", 410},
      {"oauth_other_browser", 400},
      {"invalid_choice", 400},     {"case_id_unavailable", 409}};
  auto it = kStatus.find(failure.code);
  return it == kStatus.end() ? 500 : it->second;
}

ControlApi::ControlApi(ApiSettings settings, accounts::AccountService &accounts,
                       auth::Attendants &people, store::Conversations &conversations,
                       std::function<Json()> plugins)
    : settings_(std::move(settings)),
      accounts_(accounts),
      people_(people),
      conversations_(conversations),
      plugins_(std::move(plugins)) {}

Response ControlApi::handle(const Request &request) {
  const std::string prefix = "/api/v1";
  if (request.path.rfind(prefix, 0) != 0 ||
      (request.path.size() > prefix.size() && request.path[prefix.size()] != '/')) {
    return not_found();
  }
  Call call{request, split_path(request.path.substr(prefix.size())), std::nullopt};

  // Public: the API's own description, and turning a login link into a token.
  if (call.size() == 1 && call.at(0) == "openapi.yaml" && call.is("GET")) {
    Response doc;
    doc.content_type = "application/yaml";
    doc.body = embedded::kOpenApi;
    return doc;
  }

  // Public: the OAuth provider's redirect carries no bearer token; its state authorises it.
  if (call.size() == 2 && call.at(0) == "oauth" && call.at(1) == "callback") {
    return call.is("GET") ? oauth_callback(call) : method_not_allowed();
  }

  if (!request.body.empty()) {
    // JSON text never holds a raw NUL byte, and the parser would stop reading at one and accept
    // what came before it.
    if (request.body.find('\0') != std::string::npos) {
      return Response::error(400, "invalid_json", "the body is not valid JSON (it holds a NUL byte)");
    }
    if (!json_depth_within(request.body, settings_.max_json_depth)) {
      return Response::error(400, "invalid_json", "the JSON body nests too deeply");
    }
    call.body = Json::parse(request.body, nullptr, false);
    if (call.body.is_discarded()) {
      return Response::error(400, "invalid_json", "the body is not valid JSON");
    }
    if (!call.body.is_object()) {
      return Response::error(400, "invalid_json", "the body must be a JSON object");
    }
  }
  if (call.size() == 2 && call.at(0) == "auth" && call.at(1) == "login-link") {
    return call.is("POST") ? redeem_login_link(call) : method_not_allowed();
  }

  call.principal = people_.authenticate(request.bearer_token);
  if (!call.principal) {
    Response response = Response::error(401, "unauthorized", "a valid bearer token is required");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }
  try {
    return route(call);
  } catch (const std::exception &e) {
    log::error({"api"}, std::string("request failed: ") + e.what());
    return Response::error(500, "internal", "the host could not complete this request");
  }
}

Response ControlApi::route(Call &call) {
  if (call.size() == 0) return not_found();
  const std::string &head = call.at(0);
  if (head == "me" && call.size() == 1) {
    if (!call.is("GET")) return method_not_allowed();
    return Response::json(200, {{"attendant_id", call.who().attendant_id},
                                 {"name", call.who().name},
                                 {"role", auth::to_string(call.who().role)}});
  }
  if (head == "plugins" && call.size() == 1) {
    if (!call.is("GET")) return method_not_allowed();
    Json items = plugins_();
    // Where the libraries sit on the server is for admins only, also inside a refusal's reason.
    for (auto &item : items) {
      if (!call.who().admin()) {
        item.erase("path");
        if (item.contains("attendant_reason")) item["reason"] = item["attendant_reason"];
      }
      item.erase("attendant_reason");
    }
    return Response::json(200, {{"items", items}});
  }
  if (head == "accounts") return accounts_route(call);
  if (head == "cases" || head == "messages" || head == "merges") return cases_route(call);
  if (head == "attendants" || head == "tokens") return attendants_route(call);
  return not_found();
}

// --- Accounts -----------------------------------------------------------------------------------

Response ControlApi::accounts_route(Call &call) {
  if (call.size() == 1) {
    if (call.is("POST")) return create_account(call);
    if (!call.is("GET")) return method_not_allowed();
    std::optional<std::string> owner = call.who().attendant_id;
    if (call.who().admin()) {
      auto it = call.request.query.find("attendant_id");
      owner = it == call.request.query.end() ? std::nullopt
                                             : std::optional<std::string>(it->second);
    }
    Json items = Json::array();
    for (const auto &account : accounts_.list(owner)) items.push_back(account_json(account));
    return Response::json(200, {{"items", items}});
  }
  auto account = visible_account(call, call.at(1));
  if (!account) return not_found();
  return account_route(call, *account);
}

Response ControlApi::create_account(Call &call) {
  if (auto bad = only_fields(call.body, {"plugin", "label", "attendant_id"})) return *bad;
  if (auto bad = string_field(call.body, "plugin", true, 100)) return *bad;
  if (auto bad = string_field(call.body, "label", false, 200)) return *bad;
  if (auto bad = string_field(call.body, "attendant_id", false, 100)) return *bad;

  std::string owner = call.who().attendant_id;
  if (call.body.contains("attendant_id")) {
    if (!call.who().admin()) {
      return Response::error(403, "forbidden", "only admins create accounts for others");
    }
    owner = call.body["attendant_id"];
    if (auto exists = people_.find(owner); !exists) return fail(exists.failure());
  }
  auto account = accounts_.create(owner, call.body["plugin"], call.body.value("label", ""));
  if (!account) return fail(account.failure());
  return Response::json(201, account_json(*account));
}

Response ControlApi::account_route(Call &call, const accounts::Account &account) {
  const std::string id = account.id;
  if (call.size() == 2) {
    if (call.is("GET")) return Response::json(200, account_json(account));
    if (call.is("DELETE")) {
      auto removed = accounts_.remove(id);
      return removed ? Response::json(200, {{"removed", id}}) : fail(removed.failure());
    }
    return method_not_allowed();
  }
  const std::string &verb = call.at(2);
  const bool post = call.is("POST");
  const bool get = call.is("GET");

  if (verb == "connect" && call.size() == 3) {
    if (!post) return method_not_allowed();
    if (auto bad = only_fields(call.body, {"values"})) return *bad;
    auto done = accounts_.connect(id, call.body.value("values", Json::object()));
    if (!done) return fail(done.failure());
    return Response::json(202, account_json(*accounts_.get(id)));
  }
  if (verb == "disconnect" && call.size() == 3) {
    if (!post) return method_not_allowed();
    if (auto bad = only_fields(call.body, {})) return *bad;
    auto done = accounts_.disconnect(id);
    if (!done) return fail(done.failure());
    return Response::json(200, account_json(*accounts_.get(id)));
  }
  if (verb == "qr" && call.size() == 4 && call.at(3) == "refresh") {
    if (!post) return method_not_allowed();
    auto done = accounts_.refresh_qr(id);
    if (!done) return fail(done.failure());
    return Response::json(202, account_json(*accounts_.get(id)));
  }
  if ((verb == "qr" || verb == "qr.png" || verb == "qr.svg") && call.size() == 3) {
    if (!get) return method_not_allowed();
    if (verb == "qr") {
      auto code = accounts_.qr(id);
      if (!code) return Response::error(404, "no_qr", "there is no QR code to scan right now");
      return Response::json(200, {{"payload", code->payload}, {"expires_at", code->expires_at}});
    }
    return qr_image(account, verb == "qr.png" ? "png" : "svg");
  }
  if (verb == "oauth" && call.size() == 4 && call.at(3) == "start") {
    return post ? oauth_start(call, account) : method_not_allowed();
  }
  if (verb == "log" && call.size() == 3) {
    if (!get) return method_not_allowed();
    auto page = page_of(call.request);
    if (!page) return bad_page();
    return Response::json(200, page_json(accounts_.log_entries(id, *page), *page));
  }
  if (verb == "messages" && call.size() == 3) {
    if (post) return send_message(call, account);
    if (!get) return method_not_allowed();
    auto page = page_of(call.request);
    if (!page) return bad_page();
    return Response::json(200, page_json(conversations_.account_messages(id, *page), *page));
  }
  return not_found();
}

Response ControlApi::send_message(Call &call, const accounts::Account &account) {
  const Json &body = call.body;
  if (auto bad = only_fields(body, {"to", "cc", "bcc", "text", "html", "subject", "case_id",
                                    "attachments", "reply_to_message_id", "client_id"})) {
    return *bad;
  }
  // The client's idempotency key: a retry under the same key never sends twice.
  if (auto bad = string_field(body, "client_id", false, 200)) return *bad;
  if (body.contains("client_id")) {
    const std::string &key = body["client_id"].get_ref<const std::string &>();
    if (key.empty() || std::any_of(key.begin(), key.end(),
                                   [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
      return Response::error(400, "invalid_request",
                             "\"client_id\" must be 1 to 200 characters without control characters");
    }
  }
  if (auto bad = string_field(body, "to", true, 1000)) return *bad;
  for (const char *name : {"cc", "bcc"}) {
    if (auto bad = string_field(body, name, false, 4000)) return *bad;
  }
  if (auto bad = string_field(body, "text", false, 1 << 20)) return *bad;
  if (auto bad = string_field(body, "html", false, 1 << 20)) return *bad;
  if (auto bad = string_field(body, "subject", false, 1000)) return *bad;
  for (const char *name : {"case_id", "reply_to_message_id"}) {
    if (body.contains(name) && !body[name].is_number_integer()) {
      return Response::error(400, "invalid_request",
                             std::string("\"") + name + "\" must be an integer id");
    }
  }

  // Header injection guard: no recipient or subject may carry a line break into any channel.
  for (const char *name : {"to", "cc", "bcc", "subject"}) {
    if (body.contains(name) && body[name].get<std::string>().find_first_of("\r\n") !=
                                   std::string::npos) {
      return Response::error(400, "invalid_request",
                             std::string("\"") + name + "\" must not contain line breaks");
    }
  }

  Json message = {{"to", body["to"]}};
  for (const char *name : {"cc", "bcc", "text", "html", "subject", "client_id"}) {
    if (body.contains(name)) message[name] = body[name];
  }
  if (body.contains("attachments")) {
    if (!body["attachments"].is_array()) {
      return Response::error(400, "invalid_request", "\"attachments\" must be an array");
    }
    message["attachments"] = body["attachments"];
  }
  std::optional<int64_t> case_id;
  if (body.contains("case_id")) {
    case_id = body["case_id"].get<int64_t>();
    auto owner = conversations_.case_owner(*case_id);
    if (!owner || *owner != account.attendant_id) return not_found();
    message["case_id"] = *case_id;
  }
  auto answered = answered_message(account, body, case_id);
  if (!answered) return fail(answered.failure());
  if (!answered->is_null()) message["reply_to"] = std::move(*answered);

  auto sent = accounts_.send(account.id, message, case_id, call.who().attendant_id);
  if (!sent) return fail(sent.failure());
  return Response::json(201, *sent);
}

// The message a send answers, as the plugin needs it to thread the reply (an e-mail's
// In-Reply-To and References, a WhatsApp quote): the one named by reply_to_message_id, or else
// the newest message the customer sent through this account on the case. Null when there is none.
Expected<Json> ControlApi::answered_message(const accounts::Account &account, const Json &body,
                                            std::optional<int64_t> case_id) {
  std::optional<Json> answered;
  if (body.contains("reply_to_message_id")) {
    auto named = conversations_.message(body["reply_to_message_id"].get<int64_t>());
    if (!named || (*named)["account_id"] != account.id) {
      return failure("not_found", "the message to reply to is not one of this account's");
    }
    answered = std::move(*named);
  } else if (case_id) {
    for (auto &candidate : conversations_.case_messages(*case_id, store::Page{std::nullopt, 200})) {
      if (candidate["account_id"] == account.id && candidate["direction"] == "inbound") {
        answered = std::move(candidate);
        break;
      }
    }
  }
  if (!answered) return Json(nullptr);
  return Json{{"external_id", (*answered)["external_id"]},
              {"from", (*answered)["from"]},
              {"subject", (*answered)["subject"]},
              {"link_keys", (*answered)["link_keys"]},
              {"named", body.contains("reply_to_message_id")}};
}

Response ControlApi::qr_image(const accounts::Account &account, const std::string &format) {
  auto code = accounts_.qr(account.id);
  if (!code) return Response::error(404, "no_qr", "there is no QR code to scan right now");
  auto image = format == "png" ? qr::render_png(code->payload) : qr::render_svg(code->payload);
  if (!image) return fail(image.failure());
  Response response;
  response.content_type = format == "png" ? "image/png" : "image/svg+xml";
  response.body = std::move(*image);
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

std::optional<accounts::Account> ControlApi::visible_account(const Call &call,
                                                             const std::string &id) {
  auto account = accounts_.get(id);
  if (!account) return std::nullopt;
  if (!call.who().admin() && account->attendant_id != call.who().attendant_id) return std::nullopt;
  return *account;
}

Json ControlApi::account_json(const accounts::Account &account) {
  Json json = accounts::to_json(account);
  json["auto_linked_cases"] = conversations_.auto_linked_cases(account.id);
  if (auto code = accounts_.qr(account.id)) {
    json["qr"] = {{"expires_at", code->expires_at},
                  {"png", "/api/v1/accounts/" + account.id + "/qr.png"},
                  {"svg", "/api/v1/accounts/" + account.id + "/qr.svg"}};
  } else {
    json["qr"] = nullptr;
  }
  return json;
}

// --- OAuth sign-in --------------------------------------------------------------------------------

namespace {

std::string html_escaped(const std::string &text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// The language of the page a browser shows directly (the OAuth return): the screen's own choice
// (its "connector_lang" cookie) when it made one, else the browser's first of Portuguese or
// English in Accept-Language, else Brazilian Portuguese, the screen's default.
bool wants_english(const Request &request) {
  const std::string &cookie = request.cookie;
  for (size_t at = cookie.find("connector_lang="); at != std::string::npos;
       at = cookie.find("connector_lang=", at + 1)) {
    if (at != 0 && cookie[at - 1] != ' ' && cookie[at - 1] != ';') continue;
    const std::string value = cookie.substr(at + 15, cookie.find(';', at) - at - 15);
    if (value == "en") return true;
    if (value == "pt-BR") return false;
  }
  std::string lower;
  for (char c : request.accept_language) {
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const size_t en = lower.find("en");
  const size_t pt = lower.find("pt");
  return en != std::string::npos && (pt == std::string::npos || en < pt);
}

// The small page the attendant's browser shows after the provider sent it back.
Response oauth_page(int status, bool english, const std::string &title, const std::string &text) {
  Response page;
  page.status = status;
  page.content_type = "text/html; charset=utf-8";
  page.body = std::string("<!doctype html>\n<html lang=\"") + (english ? "en" : "pt-BR") +
              "\"><head><meta charset=\"utf-8\"><title>" + html_escaped(title) +
              "</title></head><body><h1>" + html_escaped(title) + "</h1><p>" +
              html_escaped(text) + "</p></body></html>\n";
  page.headers.emplace_back("Cache-Control", "no-store");
  page.headers.emplace_back("Referrer-Policy", "no-referrer");
  page.headers.emplace_back("Content-Language", english ? "en" : "pt-BR");
  page.headers.emplace_back("Vary", "Accept-Language, Cookie");
  return page;
}

// Why a sign-in was not completed, in the page's language. The host's own reasons are known by
// their stable codes; a plugin's or the provider's own words are not ours to translate and are
// kept as they are, after a sentence in the page's language.
std::string oauth_failure_text(const Failure &failure, bool english) {
  if (english) return failure.message;
  if (failure.code == "invalid_oauth_state") {
    return "Este retorno de login é desconhecido, expirou ou já foi usado. Comece o login de "
           "novo pela tela de conexão.";
  }
  if (failure.code == "oauth_other_browser") {
    return "Esta resposta de login não pertence a um login iniciado neste navegador. Comece o "
           "login de novo pela tela de conexão, no navegador que quer usar.";
  }
  if (failure.code == "not_found") return "A conta deste login não existe mais.";
  return "Não foi possível concluir o login: " + failure.message;
}

std::string query_value(const Request &request, const char *name) {
  auto it = request.query.find(name);
  return it == request.query.end() ? std::string() : it->second.substr(0, 8192);
}

// The browser that started a sign-in gets a cookie bound to its state; the callback wants it
// back, so an answer opened in another browser (a link sent to someone) completes nothing. Name
// and value are a keyed hash of the state, the key random for this run of the host (sign-ins in
// flight end with it anyway): one cookie per attempt, so two open tabs both work.
std::pair<std::string, std::string> oauth_binding(const std::string &state) {
  static const std::array<unsigned char, crypto_generichash_KEYBYTES> key = [] {
    std::array<unsigned char, crypto_generichash_KEYBYTES> k{};
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not start");
    randombytes_buf(k.data(), k.size());
    return k;
  }();
  std::array<unsigned char, 24> hash{};
  crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char *>(state.data()),
                     state.size(), key.data(), key.size());
  std::array<char, 2 * 24 + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), hash.data(), hash.size());
  const std::string text(hex.data());
  return {"connector_oauth_" + text.substr(0, 16), text.substr(16)};
}

bool has_cookie(const std::string &cookie, const std::string &name, const std::string &value) {
  const std::string wanted = name + "=" + value;
  for (size_t at = cookie.find(wanted); at != std::string::npos; at = cookie.find(wanted, at + 1)) {
    const bool starts = at == 0 || cookie[at - 1] == ' ' || cookie[at - 1] == ';';
    const size_t end = at + wanted.size();
    const bool ends = end == cookie.size() || cookie[end] == ';' || cookie[end] == ' ';
    if (starts && ends) return true;
  }
  return false;
}

}  // namespace

std::string ControlApi::oauth_redirect_uri() const {
  return settings_.public_url + "/api/v1/oauth/callback";
}

Response ControlApi::oauth_start(Call &call, const accounts::Account &account) {
  if (auto bad = only_fields(call.body, {"values"})) return *bad;
  if (call.body.contains("values") && !call.body["values"].is_object()) {
    return Response::error(400, "invalid_request", "\"values\" must be an object");
  }
  auto started = accounts_.oauth_start(account.id, call.body.value("values", Json::object()),
                                       oauth_redirect_uri());
  if (!started) return fail(started.failure());
  Json answer = *started;
  const std::string state = answer.value("state", "");
  answer.erase("state");
  Response response = Response::json(200, answer);
  const auto [name, value] = oauth_binding(state);
  const bool https = settings_.public_url.rfind("https://", 0) == 0;
  response.headers.emplace_back("Set-Cookie", name + "=" + value +
                                                  "; Path=/api/v1/oauth/callback; Max-Age=900; "
                                                  "HttpOnly; SameSite=Lax" +
                                                  (https ? "; Secure" : ""));
  return response;
}

Response ControlApi::oauth_callback(Call &call) {
  accounts::AccountService::OAuthReturn answer;
  answer.state = query_value(call.request, "state");
  answer.code = query_value(call.request, "code");
  answer.error = query_value(call.request, "error");
  answer.error_description = query_value(call.request, "error_description");
  answer.redirect_uri = oauth_redirect_uri();
  const auto binding = oauth_binding(answer.state);
  answer.same_browser =
      !answer.state.empty() && has_cookie(call.request.cookie, binding.first, binding.second);
  Expected<accounts::Account> done = failure("internal", "the sign-in could not be completed");
  try {
    done = accounts_.oauth_finish(answer);
  } catch (const std::exception &e) {
    log::error({"api"}, std::string("OAuth callback failed: ") + e.what());
  }
  const bool english = wants_english(call.request);
  if (!done) {
    return oauth_page(status_for(done.failure()), english,
                      english ? "Sign-in not completed" : "Login não concluído",
                      oauth_failure_text(done.failure(), english));
  }
  const std::string name = done->account_name.empty() ? done->label : done->account_name;
  return oauth_page(200, english, english ? "Signed in" : "Login concluído",
                    english ? "The mailbox " + name + " is connecting. You can close this window."
                            : "A caixa de e-mail " + name +
                                  " está conectando. Você pode fechar esta janela.");
}

// Cases, messages and merges: CasesRoutes.cpp.

// --- Attendants and tokens -----------------------------------------------------------------------

Response ControlApi::redeem_login_link(Call &call) {
  if (auto bad = only_fields(call.body, {"code"})) return *bad;
  if (auto bad = string_field(call.body, "code", true, 200)) return *bad;
  auto token = people_.redeem_login_code(call.body["code"].get<std::string>());
  if (!token) return fail(token.failure());
  auto who = people_.find(token->info.attendant_id);
  return Response::json(201, {{"token", token->secret},
                              {"token_id", token->info.id},
                              {"attendant", who ? attendant_json(*who) : Json()}});
}

Response ControlApi::attendants_route(Call &call) {
  const auth::Principal &who = call.who();

  // Anyone may revoke their own tokens; admins may revoke any. "current" is the token of the
  // request itself: signing out. Either way its open WebSockets are closed at once.
  if (call.at(0) == "tokens") {
    if (call.size() != 2) return not_found();
    if (!call.is("DELETE")) return method_not_allowed();
    const std::string token_id = call.at(1) == "current" ? who.token_id : call.at(1);
    auto done = people_.revoke_token(token_id, who.admin() ? std::nullopt
                                                           : std::optional(who.attendant_id));
    if (!done) return fail(done.failure());
    log::info({"api"}, "token " + token_id + " revoked");
    if (token_revoked_) token_revoked_(token_id);
    return Response::json(200, {{"revoked", token_id}});
  }
  if (!who.admin()) return Response::error(403, "forbidden", "only admins manage attendants");

  if (call.size() == 1) {
    if (call.is("GET")) {
      Json items = Json::array();
      for (const auto &a : people_.list()) items.push_back(attendant_json(a));
      return Response::json(200, {{"items", items}});
    }
    if (!call.is("POST")) return method_not_allowed();
    if (auto bad = only_fields(call.body, {"name", "role"})) return *bad;
    if (auto bad = string_field(call.body, "name", true, 200)) return *bad;
    if (auto bad = string_field(call.body, "role", false, 20)) return *bad;
    auto role = auth::role_from_string(call.body.value("role", "attendant"));
    if (!role) {
      return Response::error(400, "invalid_request", "\"role\" is \"admin\" or \"attendant\"");
    }
    auto created = people_.create(call.body["name"], *role);
    return created ? Response::json(201, attendant_json(*created)) : fail(created.failure());
  }

  auto attendant = people_.find(call.at(1));
  if (!attendant) return not_found();
  if (call.size() == 2) {
    return call.is("GET") ? Response::json(200, attendant_json(*attendant)) : method_not_allowed();
  }
  if (call.size() == 3 && call.at(2) == "tokens") {
    if (call.is("GET")) {
      Json items = Json::array();
      for (const auto &t : people_.tokens(attendant->id)) items.push_back(token_json(t));
      return Response::json(200, {{"items", items}});
    }
    if (!call.is("POST")) return method_not_allowed();
    if (auto bad = only_fields(call.body, {"label"})) return *bad;
    if (auto bad = string_field(call.body, "label", false, 200)) return *bad;
    auto token = people_.issue_token(attendant->id, call.body.value("label", ""));
    if (!token) return fail(token.failure());
    Json json = token_json(token->info);
    json["token"] = token->secret;  // shown this once
    return Response::json(201, json);
  }
  if (call.size() == 3 && call.at(2) == "login-link") {
    if (!call.is("POST")) return method_not_allowed();
    auto code = people_.create_login_code(attendant->id, settings_.login_link_ttl_minutes);
    if (!code) return fail(code.failure());
    return Response::json(201, {{"url", settings_.public_url + "/#login=" + *code},
                                {"expires_in_minutes", settings_.login_link_ttl_minutes}});
  }
  return not_found();
}

}  // namespace connector::api
