#include "HostProcess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <sstream>

#include "ApiClient.hpp"
#include "TempDir.hpp"

namespace connector::test {

HostProcess::HostProcess(const std::filesystem::path &config, const std::filesystem::path &output,
                         rlim_t soft_file_limit, rlim_t hard_file_limit)
    : output_(output) {
  pid_ = fork();
  if (pid_ == 0) {
    if (soft_file_limit != 0) {
      rlimit files{};
      getrlimit(RLIMIT_NOFILE, &files);
      files.rlim_cur = soft_file_limit;
      if (hard_file_limit != 0) files.rlim_max = hard_file_limit;
      setrlimit(RLIMIT_NOFILE, &files);
    }
    const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(CONNECTOR_HOST_BINARY, CONNECTOR_HOST_BINARY, "--config", config.c_str(), nullptr);
    _exit(127);
  }
}

HostProcess::~HostProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string HostProcess::wait_for(const std::string &pattern,
                                  std::chrono::milliseconds timeout) const {
  std::string found;
  const std::regex expression(pattern);
  eventually(
      [&] {
        std::smatch match;
        const std::string text = read_file(output_);
        if (!std::regex_search(text, match, expression)) return false;
        found = match.size() > 1 ? match[1].str() : match[0].str();
        return true;
      },
      timeout);
  return found;
}

uint16_t HostProcess::wait_until_running(std::chrono::milliseconds timeout) const {
  const std::string url = wait_for("running at (http://127\\.0\\.0\\.1:[0-9]+)", timeout);
  if (url.empty()) return 0;
  return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

std::optional<HostProcess::Admin> HostProcess::sign_in() const {
  Admin admin;
  admin.port = wait_until_running();
  const std::string code = wait_for("#login=([A-Za-z0-9_-]+)");
  if (admin.port == 0 || code.empty()) return std::nullopt;
  auto redeemed = ApiClient(admin.port).post("/api/v1/auth/login-link", {{"code", code}});
  if (redeemed.status != 201) return std::nullopt;
  admin.token = redeemed.json()["token"];
  return admin;
}

double HostProcess::cpu_seconds() const {
  const std::string stat = read_file("/proc/" + std::to_string(pid_) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    if (i == 15) break;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int HostProcess::stop(int signal) {
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace connector::test
