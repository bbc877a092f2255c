// The YAML configuration: any text is either a configuration or a clear error, never a fault.
#include "FuzzCheck.hpp"
#include "config/Config.hpp"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string_view text(reinterpret_cast<const char *>(data), size);
  auto config = connector::config::parse_config(text, "fuzz.yaml", "/nonexistent");
  if (!config) {
    FUZZ_CHECK(!config.failure().message.empty(), "a refusal without a reason");
  }
  return 0;
}
