#include "SmtpSender.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

namespace connector::email {
namespace {

struct CurlDeleter {
  void operator()(CURL *curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist *list) const { curl_slist_free_all(list); }
};

struct Upload {
  const std::string *data;
  size_t offset = 0;
};

size_t read_upload(char *buffer, size_t size, size_t count, void *user) {
  auto *upload = static_cast<Upload *>(user);
  const size_t room = size * count;
  const size_t left = upload->data->size() - upload->offset;
  const size_t n = left < room ? left : room;
  std::memcpy(buffer, upload->data->data() + upload->offset, n);
  upload->offset += n;
  return n;
}

// What the server answered, kept from libcurl's debug stream: its error replies carry the
// enhanced status codes (e.g. Microsoft's 535 5.7.139) that libcurl's own message leaves out.
// Only incoming lines are kept; outgoing ones carry the credentials.
int keep_server_lines(CURL *, curl_infotype type, char *data, size_t size, void *user) {
  auto *said = static_cast<std::string *>(user);
  if (type == CURLINFO_HEADER_IN && said->size() < 8192) said->append(data, size);
  return 0;
}

void listen_to_server(CURL *c, std::string &said) {
  curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, keep_server_lines);
  curl_easy_setopt(c, CURLOPT_DEBUGDATA, &said);
  curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
}

// Microsoft 365 tenants (or mailboxes) with SMTP AUTH turned off refuse every token with this.
std::optional<MailFailure> smtp_auth_disabled(CURLcode code, const std::string &said) {
  if (code != CURLE_LOGIN_DENIED || said.find("5.7.139") == std::string::npos) return std::nullopt;
  MailFailure failure{FailureKind::kWrongCredentials,
                      "SMTP: Microsoft 365 refused to send because SMTP AUTH is turned off for "
                      "this mailbox or tenant (535 5.7.139). An Exchange admin must enable "
                      "\"Authenticated SMTP\" for the mailbox (or the tenant), or allow sending "
                      "through Microsoft Graph (graph_send), before it can send"};
  failure.smtp_auth_disabled = true;
  return failure;
}

// A 4xx answer to AUTH ("454 4.7.0 Temporary authentication failure", e.g. while the server's
// password backend restarts) says nothing about the password, yet libcurl reports it as a
// denied login: the server's own reply decides.
std::optional<MailFailure> auth_temporarily_failed(CURLcode code, const std::string &said) {
  if (code != CURLE_LOGIN_DENIED) return std::nullopt;
  for (size_t at = 0; at < said.size();) {
    const size_t end = std::min(said.find('\n', at), said.size());
    std::string line = said.substr(at, std::min<size_t>(end - at, 200));
    at = end + 1;
    if (line.size() < 4 || line[0] != '4' || !std::isdigit(static_cast<unsigned char>(line[1])) ||
        !std::isdigit(static_cast<unsigned char>(line[2])) || line[3] != ' ') {
      continue;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return MailFailure{FailureKind::kUnreachable,
                       "SMTP: the server cannot check the password right now (" + line + ")"};
  }
  return std::nullopt;
}

std::unique_ptr<CURL, CurlDeleter> session(const MailServers &servers, long timeout_ms) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  const auto &smtp = servers.smtp;
  const std::string scheme = smtp.security == Security::kImplicitTls ? "smtps://" : "smtp://";
  const std::string url = scheme + smtp.host + ":" + std::to_string(smtp.port);
  CURL *c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (smtp.security == Security::kStartTls) curl_easy_setopt(c, CURLOPT_USE_SSL, CURLUSESSL_ALL);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!servers.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, servers.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_USERNAME, servers.credentials.user.c_str());
  if (!servers.credentials.oauth_token.empty()) {
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, servers.credentials.oauth_token.c_str());
  } else {
    curl_easy_setopt(c, CURLOPT_PASSWORD, servers.credentials.password.c_str());
  }
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  return curl;
}

MailFailure failure_of(CURLcode code, const char *error_buffer, const MailServers &servers) {
  const std::string where = servers.smtp.host + ":" + std::to_string(servers.smtp.port);
  const std::string said = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
  switch (code) {
    case CURLE_LOGIN_DENIED:
      return {FailureKind::kWrongCredentials, "SMTP: the server refused the address or password"};
    case CURLE_PEER_FAILED_VERIFICATION:
      return {FailureKind::kUntrustedCertificate,
              "SMTP: the server's certificate is not trusted (" + said + ")"};
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_CACERT_BADFILE:
      return {FailureKind::kTlsHandshake,
              "SMTP: the TLS handshake with the server failed (" + said + ")"};
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
      return {FailureKind::kUnreachable, "SMTP: cannot reach " + where + " (" + said + ")"};
    case CURLE_OPERATION_TIMEDOUT:
      return {FailureKind::kTimeout, "SMTP: " + where + " did not answer in time"};
    default:
      return {FailureKind::kProtocol, "SMTP: " + said};
  }
}

// One login check; `temporary` tells a 4xx refusal, worth asking again, from a final one.
std::optional<MailFailure> check_login_once(const MailServers &servers, long timeout_ms,
                                            bool &temporary) {
  temporary = false;
  auto curl = session(servers, timeout_ms);
  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_buffer);
  // CONNECT_ONLY stops after greeting, STARTTLS and AUTH: exactly the login check.
  curl_easy_setopt(curl.get(), CURLOPT_CONNECT_ONLY, 1L);
  std::string said;
  listen_to_server(curl.get(), said);
  const CURLcode code = curl_easy_perform(curl.get());
  if (code == CURLE_OK) return std::nullopt;
  if (auto disabled = smtp_auth_disabled(code, said)) return disabled;
  if (auto passing = auth_temporarily_failed(code, said)) {
    temporary = true;
    return passing;
  }
  return failure_of(code, error_buffer, servers);
}

}  // namespace

std::optional<MailFailure> check_smtp_login(const MailServers &servers, long timeout_ms) {
  // A temporary refusal is asked again a few times before it counts: the next connection
  // usually reaches a server process whose password backend answers again.
  bool temporary = false;
  std::optional<MailFailure> failure = check_login_once(servers, timeout_ms, temporary);
  for (int attempt = 1; attempt < 4 && failure && temporary; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250 * attempt));
    failure = check_login_once(servers, timeout_ms, temporary);
  }
  return failure;
}

std::optional<MailFailure> send_smtp(const MailServers &servers,
                                     const std::vector<std::string> &recipients,
                                     const std::string &message, long timeout_ms) {
  auto curl = session(servers, timeout_ms);
  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_buffer);
  const std::string from = "<" + servers.address + ">";
  curl_easy_setopt(curl.get(), CURLOPT_MAIL_FROM, from.c_str());
  curl_slist *list = nullptr;
  for (const auto &to : recipients) list = curl_slist_append(list, ("<" + to + ">").c_str());
  std::unique_ptr<curl_slist, SlistDeleter> rcpt(list);
  curl_easy_setopt(curl.get(), CURLOPT_MAIL_RCPT, rcpt.get());
  Upload upload{&message};
  curl_easy_setopt(curl.get(), CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(curl.get(), CURLOPT_READDATA, &upload);
  curl_easy_setopt(curl.get(), CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
  std::string said;
  listen_to_server(curl.get(), said);
  const CURLcode code = curl_easy_perform(curl.get());
  if (code == CURLE_OK) return std::nullopt;
  if (auto disabled = smtp_auth_disabled(code, said)) return disabled;
  if (auto passing = auth_temporarily_failed(code, said)) return passing;
  return failure_of(code, error_buffer, servers);
}

}  // namespace connector::email
