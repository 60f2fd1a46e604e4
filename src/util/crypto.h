// Hashing, HMAC, encodings and randomness on OpenSSL's EVP API. Knows nothing about clouds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gm::util {

/// Raw 32-byte SHA-256 of data.
std::string sha256(std::string_view data);
/// Raw 16-byte MD5 of data (only for fingerprint formats that are MD5 by definition).
std::string md5(std::string_view data);
/// Raw 32-byte HMAC-SHA256.
std::string hmac_sha256(std::string_view key, std::string_view data);
/// Lowercase hex of raw bytes.
std::string hex(std::string_view bytes);
/// Standard base64 with padding.
std::string base64_encode(std::string_view bytes);
/// Decodes standard base64 (padding optional, whitespace ignored); throws std::invalid_argument.
std::string base64_decode(std::string_view text);
/// n cryptographically random bytes.
std::string random_bytes(std::size_t n);
/// A random RFC 4122 version-4 UUID in lowercase.
std::string uuid4();

}  // namespace gm::util
