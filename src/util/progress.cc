#include "util/progress.h"

#include "util/log.h"

#include <unistd.h>

#include <cstdio>

namespace gm::util {

namespace {

constexpr std::chrono::milliseconds k_live_interval{200};
constexpr std::chrono::seconds k_lines_interval{5};

Progress::Mode default_mode() {
  if (log_settings().verbosity == Verbosity::quiet) {
    return Progress::Mode::silent;
  }
  return ::isatty(STDERR_FILENO) == 1 ? Progress::Mode::live : Progress::Mode::lines;
}

std::string format(const char* fmt, double value, const char* unit) {
  char text[64];
  std::snprintf(text, sizeof text, fmt, value, unit);
  return text;
}

std::string short_duration(double seconds) {
  long long s = static_cast<long long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%llds", s);
  }
  return text;
}

}  // namespace

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* k_units[] = {"kB", "MB", "GB", "TB"};
  if (bytes < 1000) {
    return std::to_string(bytes) + " B";
  }
  double value = static_cast<double>(bytes) / 1000.0;
  std::size_t unit = 0;
  while (value >= 1000.0 && unit + 1 < std::size(k_units)) {
    value /= 1000.0;
    ++unit;
  }
  return format("%.1f %s", value, k_units[unit]);
}

Progress::Progress(std::string label, std::uint64_t total)
    : Progress(std::move(label), total, default_mode()) {}

Progress::Progress(std::string label, std::uint64_t total, Mode mode)
    : m_label(std::move(label)),
      m_total(total),
      m_mode(mode),
      m_start(std::chrono::steady_clock::now()),
      m_last_draw(m_start) {
  if (m_mode == Mode::lines) {
    info(m_label + (m_total > 0 ? " (" + human_bytes(m_total) + ")" : "") + " ...");
  }
}

Progress::~Progress() {
  if (!m_finished && m_drawn) {
    std::fputc('\n', stderr);
  }
}

std::string Progress::describe(std::uint64_t done, std::uint64_t total, double seconds) {
  std::string out = human_bytes(done);
  if (total > 0) {
    out += " / " + human_bytes(total);
    out += format(" (%.0f%s)", 100.0 * static_cast<double>(done) / static_cast<double>(total), "%");
  }
  if (seconds > 0.0 && done > 0) {
    double rate = static_cast<double>(done) / seconds;
    out += ", " + human_bytes(static_cast<std::uint64_t>(rate)) + "/s";
    if (total > done) {
      out += ", " + short_duration(static_cast<double>(total - done) / rate) + " left";
    }
  }
  return out;
}

void Progress::update(std::uint64_t done, std::uint64_t total) {
  m_done = done;
  m_total = total;
  if (m_mode == Mode::silent || m_finished) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  std::chrono::milliseconds interval =
      m_mode == Mode::live ? k_live_interval : std::chrono::milliseconds(k_lines_interval);
  if (now - m_last_draw >= interval) {
    m_last_draw = now;
    draw(false);
  }
}

void Progress::finish() {
  if (m_finished) {
    return;
  }
  m_finished = true;
  if (m_mode != Mode::silent) {
    draw(true);
  }
}

void Progress::draw(bool final) {
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
  std::string line;
  if (final) {
    line = m_label + ": " + human_bytes(m_done) + " in " + format("%.1f%s", seconds, "s");
    if (seconds > 0.0 && m_done > 0) {
      line += " (" +
              human_bytes(static_cast<std::uint64_t>(static_cast<double>(m_done) / seconds)) +
              "/s)";
    }
  } else {
    line = m_label + ": " + describe(m_done, m_total, seconds);
  }
  if (m_mode == Mode::live) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
    std::fflush(stderr);
    m_drawn = !final;
  } else {
    info(line);
  }
}

}  // namespace gm::util
