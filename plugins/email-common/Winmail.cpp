#include "Winmail.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "MailParser.hpp"

extern char **environ;

namespace connector::email {
namespace {

namespace fs = std::filesystem;

constexpr auto kTnefDeadline = std::chrono::seconds(10);

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A scratch folder removed when it goes out of scope.
class ScratchFolder {
 public:
  ScratchFolder() {
    std::string pattern = (fs::temp_directory_path() / "connector-tnef-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchFolder() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder &) = delete;
  ScratchFolder &operator=(const ScratchFolder &) = delete;
  const fs::path &path() const { return path_; }

 private:
  fs::path path_;
};

// Runs `tnef` on `archive`, unpacking into `out`; true when it exited with 0 in time.
bool run_tnef(const fs::path &archive, const fs::path &out, size_t max_bytes) {
  const std::string input = archive.string();
  const std::string folder = out.string();
  const std::string limit = std::to_string(max_bytes);
  // Paths inside the archive are ignored (tnef's default): every file lands in `out`.
  std::vector<std::string> args = {"tnef", "--file=" + input, "--directory=" + folder,
                                   "--maxsize=" + limit, "--overwrite"};
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t child = 0;
  const int spawned = posix_spawnp(&child, "tnef", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return false;  // not installed

  // A hostile archive must not hold the sync up: kill the reader after the deadline.
  const auto deadline = std::chrono::steady_clock::now() + kTnefDeadline;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) break;
    if (done < 0) return false;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string mime_for(const std::string &name) {
  static const std::pair<const char *, const char *> kTypes[] = {
      {".pdf", "application/pdf"},
      {".txt", "text/plain"},
      {".html", "text/html"},
      {".htm", "text/html"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".rtf", "application/rtf"},
      {".csv", "text/csv"},
      {".zip", "application/zip"},
      {".xml", "application/xml"},
      {".doc", "application/msword"},
      {".xls", "application/vnd.ms-excel"},
      {".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}};
  const size_t dot = name.rfind('.');
  if (dot != std::string::npos) {
    const std::string extension = lower(name.substr(dot));
    for (const auto &[suffix, type] : kTypes) {
      if (extension == suffix) return type;
    }
  }
  return "application/octet-stream";
}

}  // namespace

bool is_winmail(std::string_view mime, std::string_view file_name) {
  const std::string type = lower(mime);
  return type == "application/ms-tnef" || type == "application/vnd.ms-tnef" ||
         lower(file_name) == "winmail.dat";
}

std::optional<std::vector<MailAttachment>> unpack_winmail(std::string_view tnef, size_t max_bytes) {
  ScratchFolder scratch;
  if (scratch.path().empty()) return std::nullopt;
  const fs::path archive = scratch.path() / "winmail.dat";
  const fs::path out = scratch.path() / "files";
  std::error_code ec;
  fs::create_directory(out, ec);
  if (ec) return std::nullopt;
  {
    std::ofstream file(archive, std::ios::binary);
    file.write(tnef.data(), static_cast<std::streamsize>(tnef.size()));
    if (!file) return std::nullopt;
  }
  if (!run_tnef(archive, out, max_bytes)) return std::nullopt;

  std::vector<fs::path> paths;
  for (auto it = fs::directory_iterator(out, ec); !ec && it != fs::directory_iterator(); ++it) {
    if (it->is_regular_file()) paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());  // tnef writes in archive order; keep it stable
  std::vector<MailAttachment> files;
  for (const auto &path : paths) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream content;
    content << file.rdbuf();
    MailAttachment a;
    a.name = sanitize_file_name(path.filename().string());
    if (a.name.empty()) a.name = "attachment.bin";
    a.mime = mime_for(a.name);
    a.bytes = content.str();
    files.push_back(std::move(a));
  }
  if (files.empty()) return std::nullopt;
  return files;
}

}  // namespace connector::email
