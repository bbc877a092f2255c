#include "MailServerFixture.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace connector::test {
namespace {

std::filesystem::path script(const char *name) {
  return std::filesystem::path(CONNECTOR_SOURCE_DIR) / "tests/support/mail" / name;
}

struct Upload {
  const std::string *data;
  size_t offset;
};

size_t read_upload(char *buffer, size_t size, size_t count, void *user) {
  auto *upload = static_cast<Upload *>(user);
  const size_t n = std::min(size * count, upload->data->size() - upload->offset);
  std::memcpy(buffer, upload->data->data() + upload->offset, n);
  upload->offset += n;
  return n;
}

}  // namespace

std::string run_command(const std::string &command) {
  std::string output;
  FILE *pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  std::array<char, 4096> chunk{};
  while (size_t n = fread(chunk.data(), 1, chunk.size(), pipe)) output.append(chunk.data(), n);
  const int status = pclose(pipe);
  if (status != 0) throw std::runtime_error(command + " failed:\n" + output);
  return output;
}

namespace {

// Whether nothing listens on 127.0.0.1:`port` now (another test process may take it later).
bool port_is_free(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool free = bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) == 0;
  close(fd);
  return free;
}

}  // namespace

MailServerFixture::MailServerFixture() {
  // Test binaries run side by side, each with its own servers on ten ports of its own. A base
  // whose ports are taken, or that another process takes before Dovecot and Postfix bind them,
  // is given up for another one.
  std::mt19937 pick(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
  std::string failures;
  for (int attempt = 0; attempt < 5; ++attempt) {
    base_ = static_cast<uint16_t>(21000 + (pick() % 400) * 10);
    bool all_free = true;
    for (uint16_t port = base_; port < base_ + 10; ++port) all_free = all_free && port_is_free(port);
    if (!all_free) continue;
    char pattern[] = "/tmp/connector-mail-XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    try {
      run_command(script("start-mail-servers.sh").string() + " " + dir_.string() + " " +
                  std::to_string(base_));
      return;
    } catch (const std::exception &e) {
      failures += e.what();
      failures += "\n";
      stop_and_remove();
    }
  }
  throw std::runtime_error("Dovecot and Postfix did not start on five port bases:\n" + failures);
}

void MailServerFixture::stop_and_remove() {
  try {
    run_command(script("stop-mail-servers.sh").string() + " " + dir_.string());
  } catch (...) {
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

MailServerFixture::~MailServerFixture() { stop_and_remove(); }

void MailServerFixture::deliver(const std::string &from, const std::string &to,
                                const std::string &raw) const {
  CURL *curl = curl_easy_init();
  const std::string url = "smtp://127.0.0.1:" + std::to_string(smtp_mx_port());
  const std::string mail_from = "<" + from + ">";
  curl_slist *rcpt = curl_slist_append(nullptr, ("<" + to + ">").c_str());
  Upload upload{&raw, 0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, mail_from.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK) {
    throw std::runtime_error(std::string("Postfix refused the mail: ") + curl_easy_strerror(code));
  }
}

void MailServerFixture::wait_for_queue_empty() const {
  const auto queue = dir_ / "postfix/queue";
  for (int i = 0; i < 100; ++i) {
    bool empty = true;
    for (const char *sub : {"incoming", "active", "deferred", "maildrop"}) {
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(queue / sub, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); ++it) {
        if (it->is_regular_file()) empty = false;
      }
    }
    if (empty) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("Postfix did not deliver its queue within 10 s");
}

std::vector<std::string> MailServerFixture::mailbox(const std::string &user,
                                                    const std::string &folder) const {
  std::vector<std::string> mails;
  const auto base = dir_ / "mail" / user / "Maildir" / folder;
  for (const char *sub : {"new", "cur"}) {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(base / sub, ec);
         !ec && it != std::filesystem::directory_iterator(); ++it) {
      std::ifstream file(it->path(), std::ios::binary);
      std::ostringstream content;
      content << file.rdbuf();
      mails.push_back(content.str());
    }
  }
  return mails;
}

void MailServerFixture::stop_dovecot() const {
  run_command("doveadm -c " + (dir_ / "dovecot/dovecot.conf").string() + " stop");
  // doveadm returns before the listeners are gone; wait for the master to exit.
  for (int i = 0; i < 100 && std::filesystem::exists(dir_ / "dovecot/run/master.pid"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void MailServerFixture::start_dovecot() const {
  // Dovecot's master keeps its stdout: point it at a file so run_command sees the end.
  run_command("dovecot -c " + (dir_ / "dovecot/dovecot.conf").string() + " </dev/null >>" +
              (dir_ / "start.log").string());
}

void MailServerFixture::restart_dovecot_with(const std::string &settings) const {
  stop_dovecot();
  std::ofstream(dir_ / "dovecot/extra.conf", std::ios::trunc) << settings << "\n";
  start_dovecot();
}

}  // namespace connector::test
