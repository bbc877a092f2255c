#include "Pkce.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>

namespace connector::email_oauth {

std::string base64url(const std::string &bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                reinterpret_cast<const unsigned char *>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char &c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string base64url_decode(const std::string &text) {
  std::string padded = text;
  for (char &c : padded) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (padded.size() % 4 != 0) padded += '=';
  std::string out(padded.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                reinterpret_cast<const unsigned char *>(padded.data()),
                                static_cast<int>(padded.size()));
  if (n < 0) return {};
  size_t size = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  for (size_t i = padded.size(); i > 0 && padded[i - 1] == '=' && size > 0; --i) --size;
  out.resize(size);
  return out;
}

std::string random_base64url(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char *>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no random bytes available");
  }
  return base64url(raw);
}

std::string pkce_challenge(const std::string &verifier) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char *>(verifier.data()), verifier.size(), digest);
  return base64url(std::string(reinterpret_cast<char *>(digest), sizeof digest));
}

}  // namespace connector::email_oauth
