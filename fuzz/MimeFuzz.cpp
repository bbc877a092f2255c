// The MIME path: any bytes a mail server hands over are parsed without a fault, and what comes
// out is safe to store: UTF-8 texts and attachment names that cannot leave the store's folder.
#include "FuzzCheck.hpp"
#include "MailParser.hpp"

#include <nlohmann/json.hpp>

#include <string_view>

namespace {

bool is_utf8(const std::string &text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::exception &) {
    return false;
  }
}

bool is_safe_name(const std::string &name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 255) return false;
  for (const unsigned char c : name) {
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char *>(data), size);
  for (auto parsed : {connector::email::parse_mail(raw), connector::email::parse_mail_headers(raw)}) {
    if (!parsed) continue;
    FUZZ_CHECK(is_utf8(parsed->subject), "the subject is not UTF-8");
    FUZZ_CHECK(is_utf8(parsed->text), "the text is not UTF-8");
    FUZZ_CHECK(is_utf8(parsed->html), "the HTML is not UTF-8");
    FUZZ_CHECK(is_utf8(parsed->from_name), "the sender's name is not UTF-8");
    for (const auto &attachment : parsed->attachments) {
      FUZZ_CHECK(is_safe_name(attachment.name), "an attachment name could leave the store");
    }
  }
  return 0;
}
