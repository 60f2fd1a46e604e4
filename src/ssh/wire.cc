#include "ssh/wire.h"

#include "util/crypto.h"

#include <stdexcept>

namespace gm::ssh::wire {

void put_u32(std::string& out, std::uint32_t value) {
  out += static_cast<char>((value >> 24) & 0xff);
  out += static_cast<char>((value >> 16) & 0xff);
  out += static_cast<char>((value >> 8) & 0xff);
  out += static_cast<char>(value & 0xff);
}

void put_string(std::string& out, std::string_view value) {
  put_u32(out, static_cast<std::uint32_t>(value.size()));
  out.append(value);
}

std::optional<std::uint32_t> Reader::u32() {
  std::optional<std::string_view> raw = bytes(4);
  if (!raw) {
    return std::nullopt;
  }
  std::uint32_t value = 0;
  for (unsigned char c : *raw) {
    value = (value << 8) | c;
  }
  return value;
}

std::optional<std::string_view> Reader::string() {
  std::optional<std::uint32_t> length = u32();
  if (!length) {
    return std::nullopt;
  }
  return bytes(*length);
}

std::optional<std::string_view> Reader::bytes(std::size_t n) {
  if (n > m_data.size()) {
    m_data = {};
    return std::nullopt;
  }
  std::string_view out = m_data.substr(0, n);
  m_data.remove_prefix(n);
  return out;
}

std::optional<PublicKeyLine> parse_public_key_line(std::string_view line) {
  auto next_field = [&line]() -> std::string_view {
    std::size_t start = line.find_first_not_of(" \t\r\n");
    if (start == std::string_view::npos) {
      line = {};
      return {};
    }
    line.remove_prefix(start);
    std::size_t end = line.find_first_of(" \t\r\n");
    std::string_view field = line.substr(0, end);
    line.remove_prefix(end == std::string_view::npos ? line.size() : end);
    return field;
  };
  PublicKeyLine key;
  key.type = next_field();
  key.base64 = next_field();
  if (key.type.empty() || key.base64.empty()) {
    return std::nullopt;
  }
  try {
    key.blob = util::base64_decode(key.base64);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
  Reader reader(key.blob);
  std::optional<std::string_view> blob_type = reader.string();
  if (!blob_type || *blob_type != key.type) {
    return std::nullopt;
  }
  return key;
}

}  // namespace gm::ssh::wire
