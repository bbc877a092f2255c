// connector-host: runs the host, checks a configuration, or does an admin task on its store.
#include "app/Host.hpp"
#include "auth/Attendants.hpp"
#include "config/Config.hpp"
#include "log/Log.hpp"
#include "store/AccountValues.hpp"
#include "store/Database.hpp"
#include "store/SecretBox.hpp"

#include <connector/sdk.h>

#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace connector;

constexpr const char *kDefaultConfig = "config/connector-host.yaml";

constexpr const char *kUsage = R"(Usage: connector-host [--config FILE] [COMMAND]

Runs the connector host: loads the channel plugins the configuration enables, resumes the
accounts that were connected, and serves the control API and connection screen.

Options:
  --config FILE         the configuration (default: config/connector-host.yaml)
  --check-config FILE   check a configuration file, print what is wrong, and exit
  --version             print the version and exit
  --help                print this help and exit

Admin commands (they work on the store whether or not the host is running):
  attendants list                    list attendants and admins
  attendants add NAME [--admin]      add an attendant (or an admin)
  tokens list ATTENDANT_ID           list an attendant's API tokens
  tokens issue ATTENDANT_ID [LABEL]  issue an API token (shown once)
  tokens revoke TOKEN_ID             revoke an API token
  login-link [ATTENDANT_ID]          a one-time sign-in link (default: the first admin)
  secrets forget                     delete every stored credential (when the secret key is
                                     lost): accounts must then be connected again

Exit status: 0 on success, 1 when the host fails, 2 for bad usage or configuration.
)";

int usage_error(const std::string &message) {
  std::cerr << "connector-host: " << message << "\nTry 'connector-host --help'.\n";
  return 2;
}

std::optional<config::Config> read_config(const std::string &path) {
  auto config = config::load_config(path);
  if (!config) {
    std::cerr << config.failure().message << "\n";
    return std::nullopt;
  }
  return std::move(*config);
}

// Blocks until SIGINT or SIGTERM. The signals are blocked in every thread (set before any
// thread starts), so this is the only place they are received.
int wait_for_stop_signal(const sigset_t &signals) {
  int received = 0;
  sigwait(&signals, &received);
  return received;
}

// Every WebSocket client holds a file descriptor, and distributions start processes with a soft
// limit of 1024: take what the hard limit allows, as servers do.
void raise_open_file_limit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur >= files.rlim_max) return;
  files.rlim_cur = files.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &files) != 0) {
    log::warn({}, "cannot raise the open-file limit: " + std::string(std::strerror(errno)));
  }
}

int run_host(const config::Config &config, const sigset_t &signals) {
  log::init(config.log.level, config.log.file ? config.log.file->string() : "");
  raise_open_file_limit();
  auto host = app::Host::start(config);
  if (!host) {
    log::error({}, "cannot start: " + host.failure().message);
    return 1;
  }
  std::cout << "Connector host running at " << (*host)->public_url() << "\n";
  if (!(*host)->first_login_link().empty()) {
    std::cout << "First start: sign in as admin with this one-time link (valid "
              << config.auth.login_link_ttl_minutes << " minutes):\n  "
              << (*host)->first_login_link() << "\n";
  } else {
    std::cout << "Sign in with a token, or get a new login link with:\n  connector-host --config "
                 "<file> login-link\n";
  }
  std::cout.flush();

  const int received = wait_for_stop_signal(signals);
  log::info({}, std::string("received ") + (received == SIGINT ? "SIGINT" : "SIGTERM"));
  host->reset();
  return 0;
}

int admin_command(const config::Config &config, const std::vector<std::string> &args) {
  log::init("warn");
  if (auto present = app::Host::check_database_present(config.data_dir); !present) {
    std::cerr << present.failure().message << "\n";
    return 1;
  }
  auto db = store::Database::open(config.data_dir / "connector-host.db");
  if (!db) {
    std::cerr << db.failure().message << "\n";
    return 1;
  }
  auth::Attendants people(**db);
  auto done = [](const Failure &failure) {
    std::cerr << failure.message << "\n";
    return 1;
  };
  const std::string &what = args[0];
  const std::string verb = args.size() > 1 ? args[1] : "";

  if (what == "attendants" && verb == "list" && args.size() == 2) {
    for (const auto &a : people.list()) {
      std::cout << a.id << "\t" << auth::to_string(a.role) << "\t" << a.name << "\n";
    }
    return 0;
  }
  if (what == "attendants" && verb == "add" && (args.size() == 3 || args.size() == 4)) {
    if (args.size() == 4 && args[3] != "--admin") return usage_error("unexpected " + args[3]);
    auto created = people.create(args[2], args.size() == 4 ? auth::Role::kAdmin
                                                           : auth::Role::kAttendant);
    if (!created) return done(created.failure());
    std::cout << created->id << "\n";
    return 0;
  }
  if (what == "tokens" && verb == "list" && args.size() == 3) {
    for (const auto &t : people.tokens(args[2])) {
      std::cout << t.id << "\t" << (t.revoked_at ? "revoked" : "active") << "\t" << t.label
                << "\n";
    }
    return 0;
  }
  if (what == "tokens" && verb == "issue" && (args.size() == 3 || args.size() == 4)) {
    auto token = people.issue_token(args[2], args.size() == 4 ? args[3] : "command line");
    if (!token) return done(token.failure());
    std::cout << token->secret << "\n";
    return 0;
  }
  if (what == "tokens" && verb == "revoke" && args.size() == 3) {
    auto revoked = people.revoke_token(args[2], std::nullopt);
    return revoked ? 0 : done(revoked.failure());
  }
  if (what == "login-link" && args.size() <= 2) {
    std::string attendant_id = args.size() == 2 ? args[1] : "";
    if (attendant_id.empty()) {
      for (const auto &a : people.list()) {
        if (a.role == auth::Role::kAdmin) {
          attendant_id = a.id;
          break;
        }
      }
      if (attendant_id.empty()) {
        std::cerr << "there is no admin yet: start the host once, it creates one\n";
        return 1;
      }
    }
    auto code = people.create_login_code(attendant_id,
                                         static_cast<int>(config.auth.login_link_ttl_minutes));
    if (!code) return done(code.failure());
    std::cout << config.public_url << "/#login=" << *code << "\n";
    return 0;
  }
  if (what == "secrets" && verb == "forget" && args.size() == 2) {
    // The key is not needed to delete what it sealed.
    store::SecretBox unused{store::SecretBox::Key{}};
    auto forgotten = store::AccountValues(**db, unused).forget_secrets();
    if (!forgotten) return done(forgotten.failure());
    std::cout << "deleted " << *forgotten
              << " stored credentials; connect the accounts again from the screen\n";
    return 0;
  }
  return usage_error("unknown command: " + what + (verb.empty() ? "" : " " + verb));
}

}  // namespace

int main(int argc, char **argv) {
  std::string config_path = kDefaultConfig;
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << "connector-host " << CONNECTOR_HOST_VERSION << " (connector SDK "
                << CN_SDK_ABI_MAJOR << "." << CN_SDK_ABI_MINOR << ")\n";
      return 0;
    }
    if (arg == "--check-config") {
      if (i + 1 >= argc) return usage_error("--check-config needs a file");
      if (!read_config(argv[i + 1])) return 2;
      std::cout << argv[i + 1] << ": configuration is valid\n";
      return 0;
    }
    if (arg == "--config") {
      if (i + 1 >= argc) return usage_error("--config needs a file");
      config_path = argv[++i];
      continue;
    }
    if (arg.rfind("--", 0) == 0 && command.empty()) return usage_error("unknown option " + arg);
    command.push_back(arg);
  }

  auto config = read_config(config_path);
  if (!config) return 2;
  if (!command.empty()) return admin_command(*config, command);

  // Block the stop signals before any thread starts, so only sigwait receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return run_host(*config, signals);
}
