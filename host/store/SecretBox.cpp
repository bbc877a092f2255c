#include "store/SecretBox.hpp"

#include <sodium.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace connector::store {
namespace {

constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;

Expected<SecretBox::Key> key_from_hex(std::string_view hex, const std::string &origin) {
  SecretBox::Key key{};
  size_t decoded = 0;
  if (hex.size() != 2 * SecretBox::kKeyBytes ||
      sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &decoded, nullptr) !=
          0 ||
      decoded != key.size()) {
    return failure("invalid_secret_key",
                   origin + " must hold exactly 64 hexadecimal digits (a 32-byte key)");
  }
  return key;
}

Expected<SecretBox::Key> read_key_file(const std::filesystem::path &file) {
  struct stat info {};
  if (stat(file.c_str(), &info) != 0) {
    return failure("invalid_secret_key", "cannot read the secret key file " + file.string());
  }
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return failure("invalid_secret_key",
                   "the secret key file " + file.string() +
                       " can be read by other users; run: chmod 600 " + file.string());
  }
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return failure("invalid_secret_key", "cannot read the secret key file " + file.string());
  }
  char buffer[128] = {};
  const ssize_t size = ::read(fd, buffer, sizeof(buffer) - 1);
  ::close(fd);
  std::string_view hex(buffer, size > 0 ? static_cast<size_t>(size) : 0);
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.remove_suffix(1);
  return key_from_hex(hex, "the secret key file " + file.string());
}

// Writes a new random key with O_EXCL, so two starts racing never overwrite each other's key.
Expected<SecretBox::Key> create_key_file(const std::filesystem::path &file) {
  SecretBox::Key key{};
  randombytes_buf(key.data(), key.size());
  char hex[2 * SecretBox::kKeyBytes + 1];
  sodium_bin2hex(hex, sizeof(hex), key.data(), key.size());
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return failure("invalid_secret_key", "cannot create the secret key file " + file.string());
  }
  const std::string line = std::string(hex) + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  sodium_memzero(hex, sizeof(hex));
  if (!written || !synced) {
    ::unlink(file.c_str());
    return failure("invalid_secret_key", "cannot write the secret key file " + file.string());
  }
  return key;
}

}  // namespace

Expected<SecretBox> SecretBox::load(const std::filesystem::path &key_file) {
  if (sodium_init() < 0) return failure("internal", "libsodium could not be initialised");
  if (const char *env = std::getenv("CONNECTOR_HOST_SECRET_KEY"); env != nullptr && *env) {
    auto key = key_from_hex(env, "CONNECTOR_HOST_SECRET_KEY");
    if (!key) return key.failure();
    return SecretBox(*key);
  }
  auto key = std::filesystem::exists(key_file) ? read_key_file(key_file)
                                               : create_key_file(key_file);
  if (!key) return key.failure();
  return SecretBox(*key);
}

std::string SecretBox::seal(std::string_view plain, std::string_view context) const {
  std::string out(kNonceBytes + plain.size() + kTagBytes, '\0');
  auto *nonce = reinterpret_cast<unsigned char *>(out.data());
  randombytes_buf(nonce, kNonceBytes);
  unsigned long long sealed_size = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kNonceBytes, &sealed_size, reinterpret_cast<const unsigned char *>(plain.data()),
      plain.size(), reinterpret_cast<const unsigned char *>(context.data()), context.size(),
      nullptr, nonce, key_.data());
  out.resize(kNonceBytes + sealed_size);
  return out;
}

Expected<std::string> SecretBox::open(std::string_view sealed, std::string_view context) const {
  if (sealed.size() < kNonceBytes + kTagBytes) {
    return failure("secret_key_mismatch", "a stored secret is truncated");
  }
  const auto *nonce = reinterpret_cast<const unsigned char *>(sealed.data());
  std::string plain(sealed.size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long plain_size = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char *>(plain.data()), &plain_size, nullptr,
          nonce + kNonceBytes, sealed.size() - kNonceBytes,
          reinterpret_cast<const unsigned char *>(context.data()), context.size(), nonce,
          key_.data()) != 0) {
    return failure("secret_key_mismatch",
                   "a stored secret cannot be decrypted: the secret key is not the one it was "
                   "stored with, or the database was altered");
  }
  plain.resize(plain_size);
  return plain;
}

}  // namespace connector::store
