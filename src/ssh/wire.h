// SSH wire-format encoding (RFC 4251 section 5: uint32, string) used by the key writer, the key
// type sniffer and fingerprints. Internal to ssh/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gm::ssh::wire {

/// Appends a big-endian uint32.
void put_u32(std::string& out, std::uint32_t value);
/// Appends a length-prefixed string.
void put_string(std::string& out, std::string_view value);

/// Reads fields from a byte string; every getter returns nullopt once the input is exhausted.
class Reader {
 public:
  /// Reads from data (which must outlive the reader).
  explicit Reader(std::string_view data) : m_data(data) {}
  /// The next big-endian uint32.
  std::optional<std::uint32_t> u32();
  /// The next length-prefixed string.
  std::optional<std::string_view> string();
  /// The next n raw bytes.
  std::optional<std::string_view> bytes(std::size_t n);

 private:
  std::string_view m_data;
};

/// A public key line split into its parts ("type base64 [comment]").
struct PublicKeyLine {
  std::string type;    ///< "ssh-ed25519"
  std::string base64;  ///< The key blob, base64.
  std::string blob;    ///< The key blob, decoded.
};

/// Parses "type base64 [comment]"; nullopt when malformed or the blob's type disagrees.
std::optional<PublicKeyLine> parse_public_key_line(std::string_view line);

}  // namespace gm::ssh::wire
