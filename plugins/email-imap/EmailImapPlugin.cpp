// The e-mail channel over IMAP and SMTP with a password or app password.
//
// Everything mail-specific lives in the shared engine (plugins/email-common), which the OAuth
// plugin links too; this file is the connect form, the stored credentials and the SDK verbs.
#include <connector/sdk.hpp>
#include <algorithm>
#include <filesystem>
#include <memory>
#include <regex>

#include "MailEngine.hpp"

namespace {

using connector::email::MailEngine;
using connector::email::MailServers;
using connector::email::Security;
using connector::email::ServerAddress;
using connector::email::SyncSettings;
using connector::sdk::fail;
using connector::sdk::Host;
using connector::sdk::Json;
using connector::sdk::LinkKeys;
using connector::sdk::Result;
using connector::sdk::Status;

const char *kServersKey = "servers";
const char *kPasswordKey = "password";

Json label(const char *en, const char *pt) { return {{"en", en}, {"pt-BR", pt}}; }

Json field(const char *name, const char *type, Json text, bool required, bool secret = false) {
  return {{"name", name},
          {"type", type},
          {"label", std::move(text)},
          {"required", required},
          {"secret", secret}};
}

Json port_field(const char *name, Json text) {
  Json f = field(name, "number", std::move(text), false);
  f["min"] = 1;
  f["max"] = 65535;
  return f;
}

Json security_field(const char *name, Json text) {
  Json f = field(name, "select", std::move(text), false);
  f["default"] = "tls";
  f["choices"] = {{{"value", "tls"}, {"label", label("Implicit TLS", "TLS implícito")}},
                  {{"value", "starttls"}, {"label", label("STARTTLS", "STARTTLS")}}};
  return f;
}

Json setting(const char *key, const char *type, Json value, const char *description) {
  return {
      {"key", key}, {"type", type}, {"default", std::move(value)}, {"description", description}};
}

std::string text_value(const Json &values, const char *name) {
  auto it = values.find(name);
  if (it == values.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return {};
}

// The CA file an attendant named in the form. Opening any path on the host would let an
// attendant probe the host's files, so it must be a regular file inside the folder the admin
// named in the plugin's `ca_dir` setting (a plain name is taken inside it; links are resolved
// before the check). Without `ca_dir` only the admin's own `ca_file` setting applies.
Result<std::string> attendant_ca_file(const std::string &named, const std::string &ca_dir) {
  namespace fs = std::filesystem;
  if (ca_dir.empty()) {
    return fail(CN_ERR_INVALID_ARGUMENT,
                "an extra CA file cannot be chosen here: the admin has not named a folder of CA "
                "files (the plugin's ca_dir setting)");
  }
  std::error_code ec;
  const fs::path base = fs::canonical(ca_dir, ec);
  if (ec) return fail(CN_ERR_INVALID_ARGUMENT, "the admin's folder of CA files does not exist");
  const fs::path wanted = fs::path(named).is_absolute() ? fs::path(named) : base / named;
  const fs::path file = fs::weakly_canonical(wanted, ec);
  const auto [end, unused] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
  (void)unused;
  if (ec || end != base.end() || !fs::is_regular_file(file, ec)) {
    return fail(CN_ERR_INVALID_ARGUMENT,
                "the extra CA file must be a file in the folder the admin allows (" +
                    base.string() + ")");
  }
  return file.string();
}

// Reads the form (or the stored copy of it) into server settings. Presets fill in the servers
// of Gmail and Outlook; "imap" takes them from the form.
Result<MailServers> servers_from(const Json &values, const std::string &default_ca_file,
                                 const std::string &ca_dir) {
  MailServers servers;
  servers.address = text_value(values, "address");
  if (servers.address.find('@') == std::string::npos) {
    return fail(CN_ERR_INVALID_ARGUMENT, "the e-mail address is missing or malformed");
  }
  servers.credentials.user = servers.address;
  const std::string provider = text_value(values, "provider");
  if (provider == "gmail") {
    servers.imap = {"imap.gmail.com", 993, Security::kImplicitTls};
    servers.smtp = {"smtp.gmail.com", 465, Security::kImplicitTls};
    servers.server_saves_sent = true;
  } else if (provider == "outlook") {
    servers.imap = {"outlook.office365.com", 993, Security::kImplicitTls};
    servers.smtp = {"smtp.office365.com", 587, Security::kStartTls};
    servers.server_saves_sent = true;
  } else if (provider == "imap") {
    auto security = [&](const char *name) {
      return text_value(values, name) == "starttls" ? Security::kStartTls : Security::kImplicitTls;
    };
    // A port is a whole number from 1 to 65535; 0 stands for anything else.
    auto port = [&](const char *name, int fallback) -> uint16_t {
      const std::string text = text_value(values, name);
      if (text.empty()) return static_cast<uint16_t>(fallback);
      if (text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) return 0;
      const int value = std::stoi(text);
      return static_cast<uint16_t>(value >= 1 && value <= 65535 ? value : 0);
    };
    const Security imap_security = security("imap_security");
    const Security smtp_security = security("smtp_security");
    servers.imap = {text_value(values, "imap_host"),
                    port("imap_port", imap_security == Security::kImplicitTls ? 993 : 143),
                    imap_security};
    servers.smtp = {text_value(values, "smtp_host"),
                    port("smtp_port", smtp_security == Security::kImplicitTls ? 465 : 587),
                    smtp_security};
    if (servers.imap.host.empty()) return fail(CN_ERR_INVALID_ARGUMENT, "the IMAP server is required");
    if (servers.smtp.host.empty()) return fail(CN_ERR_INVALID_ARGUMENT, "the SMTP server is required");
    if (servers.imap.port == 0) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "the IMAP port must be a whole number from 1 to 65535 (\"" +
                      text_value(values, "imap_port") + "\" is not)");
    }
    if (servers.smtp.port == 0) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "the SMTP port must be a whole number from 1 to 65535 (\"" +
                      text_value(values, "smtp_port") + "\" is not)");
    }
  } else {
    return fail(CN_ERR_INVALID_ARGUMENT, "unknown provider \"" + provider + "\"");
  }
  servers.ca_file = default_ca_file;
  if (const std::string named = text_value(values, "ca_file"); !named.empty()) {
    auto allowed = attendant_ca_file(named, ca_dir);
    if (!allowed) return allowed.error();
    servers.ca_file = allowed.value();
  }
  return servers;
}

class EmailImapPlugin final : public connector::sdk::Plugin {
 public:
  explicit EmailImapPlugin(Host host) : Plugin(host) {}

  Json descriptor() const override {
    Json provider = field("provider", "select", label("Provider", "Provedor"), true);
    provider["default"] = "imap";
    provider["choices"] = {{{"value", "gmail"}, {"label", label("Gmail", "Gmail")}},
                           {{"value", "outlook"}, {"label", label("Outlook", "Outlook")}},
                           {{"value", "imap"}, {"label", label("Other (IMAP)", "Outro (IMAP)")}}};
    return {
        {"id", "email-imap"},
        {"name", label("E-mail (IMAP/SMTP)", "E-mail (IMAP/SMTP)")},
        {"version", "0.1.0"},
        {"capabilities", {"form_login", "send", "media", "receive"}},
        {"connect_fields",
         {provider, field("address", "email", label("E-mail address", "Endereço de e-mail"), true),
          field("password", "password", label("Password or app password", "Senha ou senha de app"),
                true, true),
          field("imap_host", "text", label("IMAP server", "Servidor IMAP"), false),
          port_field("imap_port", label("IMAP port", "Porta IMAP")),
          security_field("imap_security", label("IMAP security", "Segurança IMAP")),
          field("smtp_host", "text", label("SMTP server", "Servidor SMTP"), false),
          port_field("smtp_port", label("SMTP port", "Porta SMTP")),
          security_field("smtp_security", label("SMTP security", "Segurança SMTP")),
          field("ca_file", "text",
                label("Extra CA file to trust (in the admin's CA folder)",
                      "Arquivo de CA adicional (na pasta de CAs do administrador)"),
                false)}},
        {"settings",
         {setting("initial_sync_days", "integer", 30,
                  "How many days back the first sync reaches (0: the whole inbox)."),
          setting("max_message_mb", "integer", 50,
                  "Mails larger than this are recorded with their headers only."),
          setting("idle_restart_s", "integer", 600,
                  "IMAP IDLE is renewed this often (also the liveness check)."),
          setting("poll_interval_s", "integer", 30, "Polling interval for servers without IDLE."),
          setting("timeout_s", "integer", 30, "Deadline of one network step."),
          setting("case_id_pattern", "string", R"(\[#(\d+)\])",
                  "Regular expression of the case id in a subject; its first group is the id."),
          setting("subject_case_format", "string", "[#{id}]",
                  "How a case id is added to the subject of a mail sent on a case ({id}: the id)."),
          setting("ca_file", "string", "",
                  "A CA file every account trusts in addition to the system's."),
          setting("ca_dir", "string", "",
                  "A folder of CA files attendants may choose from in the connect form "
                  "(ca_file); without it the form's ca_file is refused.")}}};
  }

  Status configure(const Json &s) override {
    SyncSettings settings;
    settings.initial_sync_days = s.value("initial_sync_days", 30);
    settings.max_message_bytes = static_cast<uint64_t>(s.value("max_message_mb", 50)) << 20;
    settings.idle_restart = std::chrono::seconds(s.value("idle_restart_s", 600));
    settings.poll_interval = std::chrono::seconds(s.value("poll_interval_s", 30));
    settings.timeout = std::chrono::seconds(s.value("timeout_s", 30));
    settings.case_id_pattern = s.value("case_id_pattern", std::string(R"(\[#(\d+)\])"));
    settings.subject_case_format = s.value("subject_case_format", std::string("[#{id}]"));
    if (settings.subject_case_format.find("{id}") == std::string::npos ||
        settings.subject_case_format.find_first_of("\r\n") != std::string::npos) {
      return fail(CN_ERR_INVALID_ARGUMENT,
                  "subject_case_format must contain {id} and no line break");
    }
    try {
      std::regex check(settings.case_id_pattern);
    } catch (const std::regex_error &) {
      return fail(CN_ERR_INVALID_ARGUMENT, "case_id_pattern is not a valid regular expression");
    }
    default_ca_file_ = s.value("ca_file", std::string());
    ca_dir_ = s.value("ca_dir", std::string());
    engine_ = std::make_unique<MailEngine>(host(), settings);
    return connector::sdk::ok();
  }

  Status connect(const std::string &id, const Json &params) override {
    if (!engine_) return fail(CN_ERR_STATE, "the plugin is not configured");
    if (params.value("resume", false)) return resume(id);
    Json values = params.value("values", Json::object());
    auto servers = servers_from(values, default_ca_file_, ca_dir_);
    if (!servers) return servers.error();
    servers.value().credentials.password = text_value(values, "password");
    if (servers.value().credentials.password.empty()) {
      return fail(CN_ERR_INVALID_ARGUMENT, "the password is required");
    }

    // The form minus the password is kept in the clear; the password only as a secret.
    values.erase("password");
    if (host().put(id, kServersKey, values.dump()) != CN_OK ||
        host().put(id, kPasswordKey, servers.value().credentials.password, true) != CN_OK) {
      return fail(CN_ERR_STORAGE, "could not store the account's settings");
    }
    engine_->start(id, servers.value(), true);
    return connector::sdk::ok();
  }

  Status disconnect(const std::string &id, bool forget) override {
    if (engine_) engine_->stop(id);
    if (forget) {
      host().erase(id, kServersKey);
      host().erase(id, kPasswordKey);
      host().erase(id, "sync.inbox");
    }
    host().emit_status(id, "disconnected");
    return connector::sdk::ok();
  }

  Result<Json> status(const std::string &id) override {
    if (!engine_) return Json{{"type", "status"}, {"state", "disconnected"}};
    return engine_->status(id);
  }

  Result<Json> send(const std::string &id, const Json &message) override {
    if (!engine_) return fail(CN_ERR_STATE, "the plugin is not configured");
    return engine_->send(id, message);
  }

  Result<LinkKeys> link(const Json &message) override {
    if (!engine_) return fail(CN_ERR_STATE, "the plugin is not configured");
    return engine_->link_keys(message);
  }

 private:
  Status resume(const std::string &id) {
    auto stored = host().get(id, kServersKey);
    auto password = host().get(id, kPasswordKey);
    if (!stored || !password) {
      host().emit_status(id, "error", "", "no stored credentials: connect again",
                         "credentials_missing");
      return fail(CN_ERR_AUTH, "no stored credentials: connect again");
    }
    Json values = Json::parse(*stored, nullptr, false);
    auto servers = servers_from(values.is_object() ? values : Json::object(), default_ca_file_,
                                ca_dir_);
    if (!servers) return servers.error();
    servers.value().credentials.password = *password;
    engine_->start(id, servers.value(), false);
    return connector::sdk::ok();
  }

  std::string default_ca_file_;
  std::string ca_dir_;
  std::unique_ptr<MailEngine> engine_;  // last: stopped before the rest goes away
};

}  // namespace

CONNECTOR_PLUGIN(EmailImapPlugin)
