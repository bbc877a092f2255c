#include "TestServer.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace connector::test {

namespace {

std::string read_line(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1) {
    if (c == '\n') return line;
    line += c;
  }
  throw std::runtime_error("the WhatsApp test server did not start (did npm ci run in " +
                           std::string(CONNECTOR_WA_SERVER_DIR) + "?)");
}

}  // namespace

WhatsAppTestServer::WhatsAppTestServer(int refs) {
  int in_pipe[2];
  int out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  const std::string script = std::string(CONNECTOR_WA_SERVER_DIR) + "/main.mjs";
  const std::string refs_text = std::to_string(refs);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::execlp("node", "node", script.c_str(), "--refs", refs_text.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  stdin_fd_ = in_pipe[1];
  const Json hello = Json::parse(read_line(out_pipe[0]));
  ::close(out_pipe[0]);
  ws_url_ = hello["ws_url"];
  root_key_ = hello["root_key"];
  media_ca_file_ = hello.value("media_ca", "");
  const std::string control = hello["control_url"];
  control_port_ = static_cast<uint16_t>(std::stoi(control.substr(control.rfind(':') + 1)));
}

WhatsAppTestServer::~WhatsAppTestServer() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);  // end of input: the server stops
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

Json WhatsAppTestServer::call(const std::string &method, const std::string &path,
                              const Json &body) const {
  return call_raw(method, path, body.is_null() ? std::string() : body.dump());
}

Json WhatsAppTestServer::call_raw(const std::string &method, const std::string &path,
                                  const std::string &body) const {
  ApiClient client(control_port_);
  HttpResult result = client.request(method, path, body);
  if (result.status != 200) {
    throw std::runtime_error("test server " + path + ": " + std::to_string(result.status) + " " +
                             result.body);
  }
  return result.json();
}

Json WhatsAppTestServer::scan(const std::string &qr, const std::string &phone) const {
  return call("POST", "/scan", {{"qr", qr}, {"phone", phone}});
}

Json WhatsAppTestServer::send(const Json &message) const { return call("POST", "/send", message); }

Json WhatsAppTestServer::devices() const {
  // By value: a range-for over a member of the temporary answer would dangle.
  Json answer = info();
  return answer["devices"];
}

bool WhatsAppTestServer::device_connected(const std::string &phone) const {
  for (const auto &device : devices()) {
    if (device["phone"] == phone && device["connected"].get<bool>()) return true;
  }
  return false;
}

int WhatsAppTestServer::kick(const std::string &phone, int code) const {
  return call("POST", "/kick", {{"phone", phone}, {"code", code}})["kicked"].get<int>();
}

std::string whatsapp_plugin_yaml(const WhatsAppTestServer &server, int qr_timeout_ms,
                                 const std::string &extra_settings) {
  std::string yaml = "plugins:\n"
                     "  whatsapp:\n"
                     "    library: " CONNECTOR_PLUGIN_DIR "/libconnector_whatsapp.so\n"
                     "    settings:\n"
                     "      ws_url: " + server.ws_url() + "\n" +
                     "      test_root_key: \"" + server.root_key() + "\"\n" +
                     "      test_media_ca_file: \"" + server.media_ca_file() + "\"\n";
  if (qr_timeout_ms > 0) yaml += "      qr_timeout_ms: " + std::to_string(qr_timeout_ms) + "\n";
  return yaml + extra_settings;
}

std::vector<pid_t> own_children_running(const std::string &needle) {
  std::vector<pid_t> found;
  const pid_t self = ::getpid();
  for (const auto &entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 2, "%c %d", &state, &ppid) != 2 || ppid != self) {
      continue;
    }
    if (state == 'Z') continue;
    std::ifstream cmdline(entry.path() / "cmdline");
    std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    if (args.find(needle) != std::string::npos) found.push_back(std::stoi(name));
  }
  return found;
}

}  // namespace connector::test
