#pragma once

#include <string>
#include <string_view>

namespace connector {

// `bytes` random bytes from libsodium as unpadded base64url text (43 characters for 32 bytes).
std::string random_text(size_t bytes);

// An identifier such as "acc_Jx8…": a prefix naming the kind of thing and 96 random bits.
inline std::string random_id(std::string_view prefix) {
  return std::string(prefix) + "_" + random_text(12);
}

}  // namespace connector
