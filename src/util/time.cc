#include "util/time.h"

#include <cstdio>
#include <ctime>

namespace gm::util {

namespace {
std::string format_utc(SystemTime t, const char* fmt) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, fmt, &tm);
  return std::string(buf, n);
}
}  // namespace

std::string rfc3339(SystemTime t) {
  return format_utc(t, "%Y-%m-%dT%H:%M:%SZ");
}

std::string amz_date(SystemTime t) {
  return format_utc(t, "%Y%m%dT%H%M%SZ");
}

std::optional<SystemTime> parse_rfc3339(std::string_view text) {
  std::tm tm{};
  int consumed = 0;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest.front() == '.') {
    std::size_t i = 1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      ++i;
    }
    rest.remove_prefix(i);
  }
  if (rest != "Z" && rest != "+00:00" && rest != "z") {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string human_duration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < 0) {
    s = 0;
  }
  long long days = s / 86400, hours = (s % 86400) / 3600, mins = (s % 3600) / 60, secs = s % 60;
  char buf[64];
  if (days > 0) {
    std::snprintf(buf, sizeof buf, "%lldd%lldh", days, hours);
  } else if (hours > 0) {
    std::snprintf(buf, sizeof buf, "%lldh%lldm", hours, mins);
  } else if (mins > 0) {
    std::snprintf(buf, sizeof buf, "%lldm%llds", mins, secs);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", secs);
  }
  return buf;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  long long total = 0;
  long long value = -1;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      value = (value < 0 ? 0 : value) * 10 + (c - '0');
      if (value > 100'000'000) {
        return std::nullopt;
      }
      continue;
    }
    if (value < 0) {
      return std::nullopt;
    }
    switch (c) {
      case 'd':
        total += value * 86400;
        break;
      case 'h':
        total += value * 3600;
        break;
      case 'm':
        total += value * 60;
        break;
      case 's':
        total += value;
        break;
      default:
        return std::nullopt;
    }
    value = -1;
  }
  if (value >= 0) {
    return std::nullopt;  // a trailing number without a unit is ambiguous
  }
  return std::chrono::seconds(total);
}

}  // namespace gm::util
