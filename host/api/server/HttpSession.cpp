#include "api/server/Sessions.hpp"

#include "api/server/StaticFiles.hpp"
#include "log/Log.hpp"

namespace connector::api {
namespace {

http::response<http::string_body> to_beast(const Response &response, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> out{static_cast<http::status>(response.status), version};
  out.set(http::field::server, "connector-host");
  out.set(http::field::content_type, response.content_type);
  out.set("X-Content-Type-Options", "nosniff");
  for (const auto &[name, value] : response.headers) out.set(name, value);
  out.keep_alive(keep_alive);
  out.body() = response.body;
  out.prepare_payload();
  return out;
}

Request to_request(const http::request<http::string_body> &in,
                   std::pair<std::string, std::map<std::string, std::string>> target) {
  Request request;
  request.method = std::string(in.method_string());
  request.path = std::move(target.first);
  request.query = std::move(target.second);
  request.content_type = std::string(to_std(in[http::field::content_type]));
  request.accept_language = std::string(to_std(in[http::field::accept_language]));
  request.cookie = std::string(to_std(in[http::field::cookie]));
  request.body = in.body();
  // Only the Authorization header counts here; the subprotocol form is for WebSockets.
  if (in[http::field::sec_websocket_protocol].empty()) request.bearer_token = bearer_token(in);
  return request;
}

}  // namespace

HttpSession::HttpSession(tcp::socket &&socket, Server::Impl &server)
    : stream_(std::move(socket)), server_(server) {}

void HttpSession::run() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
}

void HttpSession::read() {
  // A fresh parser per request, each with the configured limits.
  parser_.emplace();
  parser_->body_limit(server_.settings.max_body_bytes);
  parser_->header_limit(static_cast<uint32_t>(server_.settings.max_header_bytes));

  // Read the next request, or give up on a client that is too slow to send it.
  stream_.expires_after(std::chrono::milliseconds(server_.settings.request_timeout_ms));
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
}

void HttpSession::on_read(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
      ec == net::error::operation_aborted || server_.stopping) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    return;
  }
  if (ec == http::error::body_limit) {
    return fail_and_close(http::status::payload_too_large, "body_too_large",
                          "the request body exceeds " +
                              std::to_string(server_.settings.max_body_bytes) + " bytes");
  }
  if (ec == http::error::header_limit) {
    return fail_and_close(http::status::request_header_fields_too_large, "headers_too_large",
                          "the request headers exceed " +
                              std::to_string(server_.settings.max_header_bytes) + " bytes");
  }
  if (ec) {
    return fail_and_close(http::status::bad_request, "bad_request",
                          "the request is not valid HTTP/1.1");
  }
  answer(parser_->release());
}

void HttpSession::answer(http::request<http::string_body> &&request) {
  const auto header_count = static_cast<size_t>(std::distance(request.begin(), request.end()));
  if (header_count > server_.settings.max_header_count) {
    return fail_and_close(http::status::request_header_fields_too_large, "headers_too_large",
                          "the request has " + std::to_string(header_count) +
                              " headers; at most " +
                              std::to_string(server_.settings.max_header_count) + " are taken");
  }
  auto target = split_target(to_std(request.target()));
  if (!target) {
    return fail_and_close(http::status::bad_request, "bad_request", "malformed request target");
  }

  // The WebSocket of live events: authenticate first, then hand the connection over.
  if (websocket::is_upgrade(request)) {
    if (target->first != "/api/v1/events") {
      return fail_and_close(http::status::not_found, "not_found", "no WebSocket at this path");
    }
    const std::string token = bearer_token(request);
    auto who = server_.api.authenticate(token);
    if (!who) {
      return fail_and_close(http::status::unauthorized, "unauthorized",
                            "a valid bearer token is required");
    }
    stream_.expires_never();
    std::make_shared<WebSocketSession>(std::move(stream_), server_, *who, token)
        ->run(std::move(request));
    return;
  }

  const unsigned version = request.version();
  const bool keep_alive = request.keep_alive();

  // Anything outside /api/ is the connection screen's files.
  if (target->first.rfind("/api/", 0) != 0) {
    Response response = serve_static(server_.settings.static_dir,
                                     to_std(request.method_string()), target->first);
    return write(to_beast(response, version, keep_alive));
  }

  // Answer on a worker thread: the API may wait on SQLite or a plugin verb.
  net::post(server_.workers, [self = shared_from_this(), request = std::move(request),
                              parts = std::move(*target), version, keep_alive]() mutable {
    Response response;
    try {
      response = self->server_.api.handle(to_request(request, std::move(parts)));
    } catch (const std::exception &e) {
      log::error({"api"}, std::string("request failed: ") + e.what());
      response = Response::error(500, "internal", "the host could not complete this request");
    }
    auto out = to_beast(response, version, keep_alive);
    net::post(self->stream_.get_executor(), [self, out = std::move(out)]() mutable {
      self->write(std::move(out));
    });
  });
}

void HttpSession::write(http::response<http::string_body> &&response) {
  const bool keep_alive = response.keep_alive();
  auto message = std::make_shared<http::response<http::string_body>>(std::move(response));

  // Send the answer, bounded by the same timeout as reading.
  stream_.expires_after(std::chrono::milliseconds(server_.settings.request_timeout_ms));
  http::async_write(stream_, *message,
                    [self = shared_from_this(), message, keep_alive](beast::error_code ec, size_t) {
                      self->on_write(keep_alive, ec);
                    });
}

void HttpSession::on_write(bool keep_alive, beast::error_code ec) {
  if (ec || !keep_alive || server_.stopping) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    return;
  }
  read();
}

void HttpSession::fail_and_close(http::status status, const std::string &code,
                                 const std::string &message) {
  Response response = Response::error(static_cast<int>(status), code, message);
  if (status == http::status::unauthorized) response.headers.emplace_back("WWW-Authenticate", "Bearer");
  write(to_beast(response, 11, false));
}

}  // namespace connector::api
