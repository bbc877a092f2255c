// Encryption of secrets at rest (passwords, OAuth tokens, WhatsApp keys) with libsodium's
// XChaCha20-Poly1305. The key lives outside the database: in the environment variable
// CONNECTOR_HOST_SECRET_KEY (64 hex digits) or in a 0600 key file created on first start.
//
// Each sealed value is bound to its account and key name (as associated data), so a ciphertext
// copied onto another record does not open.
#pragma once

#include "common/Expected.hpp"

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

namespace connector::store {

class SecretBox {
 public:
  static constexpr size_t kKeyBytes = 32;
  using Key = std::array<unsigned char, kKeyBytes>;

  // Uses the key from CONNECTOR_HOST_SECRET_KEY when set; otherwise reads `key_file`, creating it
  // (mode 0600) with a fresh random key if it does not exist. A malformed key, or a key file that
  // others may read, is refused with the fix in the message.
  static Expected<SecretBox> load(const std::filesystem::path &key_file);

  explicit SecretBox(const Key &key) : key_(key) {}

  // Returns nonce || ciphertext || tag.
  std::string seal(std::string_view plain, std::string_view context) const;

  // Fails with code "secret_key_mismatch" when the value was sealed with another key or
  // context, or was altered.
  Expected<std::string> open(std::string_view sealed, std::string_view context) const;

 private:
  Key key_;
};

}  // namespace connector::store
