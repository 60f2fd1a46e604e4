#include "provision/apt_progress.h"

#include "util/progress.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace gm::provision {

namespace {

/// Splits "KIND:A:B:REST" into its fields; false when the line is not of that kind.
bool status_fields(std::string_view line, std::string_view kind, std::string_view& item,
                   double& percent, std::string_view& rest) {
  if (!line.starts_with(kind)) {
    return false;
  }
  line.remove_prefix(kind.size());
  size_t a = line.find(':');
  size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
  if (b == std::string_view::npos) {
    return false;
  }
  item = line.substr(0, a);
  std::string_view number = line.substr(a + 1, b - a - 1);
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), percent);
  if (ec != std::errc() || end != number.data() + number.size() || !std::isfinite(percent)) {
    return false;
  }
  percent = std::clamp(percent, 0.0, 100.0);
  rest = line.substr(b + 1);
  return true;
}

std::string whole_percent(double percent) {
  return std::to_string(static_cast<int>(percent)) + "%";
}

}  // namespace

std::optional<std::uint64_t> AptProgress::need_to_get(std::string_view line) {
  constexpr std::string_view k_prefix = "Need to get ";
  if (!line.starts_with(k_prefix)) {
    return std::nullopt;
  }
  line.remove_prefix(k_prefix.size());
  // apt's SizeToStr: "21.4 kB", "312 MB" (powers of 1000); thousands may carry commas.
  std::string digits;
  size_t i = 0;
  for (; i < line.size() && (std::isdigit(static_cast<unsigned char>(line[i])) != 0 ||
                             line[i] == '.' || line[i] == ',');
       ++i) {
    if (line[i] != ',') {
      digits += line[i];
    }
  }
  double value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  std::string_view unit = line.substr(i);
  if (unit.starts_with(" ")) {
    unit.remove_prefix(1);
  }
  double scale = 0;
  for (auto [name, factor] :
       {std::pair{"B", 1.0}, {"kB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}}) {
    std::string_view n = name;
    if (unit.starts_with(n) &&
        (unit.size() == n.size() || unit[n.size()] == '/' || unit[n.size()] == ' ')) {
      scale = factor;
    }
  }
  if (scale == 0) {
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(std::llround(value * scale));
}

bool AptProgress::read(std::string_view line) {
  if (std::optional<std::uint64_t> total = need_to_get(line)) {
    m_total = *total;
    m_download_start.reset();
    return false;  // apt's own summary line: worth keeping in the output too
  }
  std::string_view item;
  std::string_view rest;
  double percent = 0;
  if (status_fields(line, "dlstatus:", item, percent, rest)) {
    if (m_total == 0) {  // apt-get update: lists, whose size apt does not announce
      m_text = "downloading (" + whole_percent(percent) + ")";
      return true;
    }
    auto now = std::chrono::steady_clock::now();
    if (!m_download_start) {
      m_download_start = now;
    }
    double seconds = std::chrono::duration<double>(now - *m_download_start).count();
    auto done = static_cast<std::uint64_t>(static_cast<double>(m_total) * percent / 100.0);
    m_text = "downloading packages: " + util::Progress::describe(done, m_total, seconds);
    return true;
  }
  if (status_fields(line, "pmstatus:", item, percent, rest)) {
    m_text = "installing packages (" + whole_percent(percent) + "): " + std::string(rest);
    return true;
  }
  return false;  // pmerror and the like stay in the output: they explain a failure
}

}  // namespace gm::provision
