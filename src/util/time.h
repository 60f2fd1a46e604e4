// Wall-clock formatting: RFC 3339 for records, ISO 8601 basic for SigV4, and durations for humans.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace gm::util {

using SystemTime = std::chrono::system_clock::time_point;

/// "2026-11-22T10:04:05Z".
std::string rfc3339(SystemTime t);
/// Parses what rfc3339() writes (and fractional seconds, "+00:00"); nullopt if it cannot.
std::optional<SystemTime> parse_rfc3339(std::string_view text);
/// "20261122T100405Z" (SigV4's X-Amz-Date).
std::string amz_date(SystemTime t);
/// "3h12m", "45s", "2d4h": short, for tables.
std::string human_duration(std::chrono::seconds d);
/// Parses "30m", "8h", "90s", "1h30m", "2d"; nullopt if malformed.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace gm::util
