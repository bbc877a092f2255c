// The connector-host binary started as its own process, as an admin or a service manager runs
// it, with its output captured to a file; stopped with any signal, SIGKILL included.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace connector::test {

class HostProcess {
 public:
  // Starts `connector-host --config config`, its stdout and stderr written to `output`.
  // `soft_file_limit` and `hard_file_limit`, when set, are the open-file limits the host starts
  // with, as a service manager could give them.
  HostProcess(const std::filesystem::path &config, const std::filesystem::path &output,
              rlim_t soft_file_limit = 0, rlim_t hard_file_limit = 0);
  ~HostProcess();  // kills the host (SIGKILL) when it still runs
  HostProcess(const HostProcess &) = delete;
  HostProcess &operator=(const HostProcess &) = delete;

  // Waits until the output matches; returns the first capture group (the whole match when the
  // pattern has none), or "" when nothing matched within `timeout`.
  std::string wait_for(const std::string &pattern,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

  // The port of the running host, from its "running at" line; 0 when it did not start in time.
  uint16_t wait_until_running(std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

  // Waits for the host to run and turns its first-start login link into an admin token.
  struct Admin {
    uint16_t port = 0;
    std::string token;
  };
  std::optional<Admin> sign_in() const;

  // CPU seconds the process has used so far (user and system), from /proc.
  double cpu_seconds() const;

  // Sends `signal`, waits for the process and returns its exit code (-1 when a signal ended it).
  int stop(int signal);

  pid_t pid() const { return pid_; }

 private:
  std::filesystem::path output_;
  pid_t pid_ = -1;
};

}  // namespace connector::test
