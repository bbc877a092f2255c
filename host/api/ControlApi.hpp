// The control API's routes: what the platform's UI (and any integrator) can ask of the host.
// Every route but login-link redemption and the OpenAPI document needs a bearer token; an
// attendant sees only their own accounts, messages and cases (others' answer 404, as if they
// did not exist), and admins see everything and manage attendants and tokens.
//
// Threading: handle() is thread-safe and may block (it calls plugin verbs and SQLite), so the
// server runs it on worker threads, never on its network thread.
#pragma once

#include "accounts/AccountService.hpp"
#include "api/Http.hpp"
#include "auth/Attendants.hpp"
#include "store/Conversations.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace connector::cases {
class Casework;
}

namespace connector::api {

struct ApiSettings {
  std::string public_url;  // e.g. http://127.0.0.1:8080, for login links
  int login_link_ttl_minutes = 60;
  int max_json_depth = 32;
};

class ControlApi {
 public:
  // `plugins` lists the enabled plugins, loaded or refused, as the API shows them.
  ControlApi(ApiSettings settings, accounts::AccountService &accounts, auth::Attendants &people,
             store::Conversations &conversations, std::function<Json()> plugins);

  Response handle(const Request &request);

  // Known only once the server has bound its port (which may have been chosen for it).
  void set_public_url(std::string url) { settings_.public_url = std::move(url); }

  // The case engine behind POST/PATCH /cases, POST /messages/{id}/link and /merges; without it
  // those answer 503. Must be set before the server starts.
  void set_casework(cases::Casework *casework) { casework_ = casework; }

  // Called with a token's id once it is revoked through the API (signing out, DELETE
  // /tokens/{id}), so the server can close that token's open WebSockets at once. Must be set
  // before the server starts.
  void on_token_revoked(std::function<void(const std::string &token_id)> listener) {
    token_revoked_ = std::move(listener);
  }

  // The principal of a token, for the WebSocket upgrade (which does not go through handle()).
  std::optional<auth::Principal> authenticate(const std::string &token) {
    return people_.authenticate(token);
  }

 private:
  // One request on its way through the routes: its principal, path segments and parsed body.
  // Defined here so that routes kept in other files (CasesRoutes.cpp) can read it.
  struct Call {
    const Request &request;
    std::vector<std::string> segments;  // the path after /api/v1, split on '/'
    std::optional<auth::Principal> principal;
    Json body = Json::object();

    const auth::Principal &who() const { return *principal; }
    bool is(const char *method) const { return request.method == method; }
    size_t size() const { return segments.size(); }
    const std::string &at(size_t i) const { return segments[i]; }
  };

  Response route(Call &call);
  Response accounts_route(Call &call);
  Response account_route(Call &call, const accounts::Account &account);
  // Cases, messages and contact merges: CasesRoutes.cpp.
  Response cases_route(Call &call);
  Response create_case(Call &call);
  Response update_case(Call &call, int64_t case_id);
  Response link_message(Call &call, int64_t message_id);
  Response merges_route(Call &call);
  bool may_see_case(const Call &call, int64_t case_id);
  Response attendants_route(Call &call);

  Response redeem_login_link(Call &call);
  // GET /oauth/callback: the provider's redirect, authorised by its single-use state alone.
  Response oauth_callback(Call &call);
  Response oauth_start(Call &call, const accounts::Account &account);
  std::string oauth_redirect_uri() const;
  Response create_account(Call &call);
  Response send_message(Call &call, const accounts::Account &account);
  Expected<Json> answered_message(const accounts::Account &account, const Json &body,
                                  std::optional<int64_t> case_id);
  Response qr_image(const accounts::Account &account, const std::string &format);

  // The account if the caller may see it.
  std::optional<accounts::Account> visible_account(const Call &call, const std::string &id);
  Json account_json(const accounts::Account &account);

  ApiSettings settings_;
  accounts::AccountService &accounts_;
  auth::Attendants &people_;
  store::Conversations &conversations_;
  std::function<Json()> plugins_;
  cases::Casework *casework_ = nullptr;
  std::function<void(const std::string &)> token_revoked_;
};

// The HTTP status that goes with a Failure's code.
int status_for(const Failure &failure);

}  // namespace connector::api
