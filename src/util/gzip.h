#pragma once
// gzip (RFC 1952) compression, for payloads with a size limit whose reader inflates them (EC2 user
// data, which cloud-init decompresses).
#include <cstddef>
#include <string>
#include <string_view>

namespace gm::util {

/// `data` as one gzip member, best compression, no file name and mtime 0 (the same input always
/// gives the same bytes).
std::string gzip(std::string_view data);

/// The data of gzip member(s) `packed`, at most `limit` bytes of it (more is an error, as is input
/// that is not gzip).
std::string gunzip(std::string_view packed, std::size_t limit = 64u << 20);

}  // namespace gm::util
