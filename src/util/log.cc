#include "util/log.h"

#include <cstdio>
#include <mutex>
#include <vector>

namespace gm::util {

namespace {
LogSettings g_settings;
std::mutex g_mutex;
std::vector<std::string> g_secrets;

void emit(std::string_view prefix, std::string_view color, std::string_view text) {
  std::string line = redact(text);
  std::lock_guard lock(g_mutex);
  if (g_settings.color && !color.empty()) {
    std::fprintf(stderr, "\033[%.*sm%.*s\033[0m%.*s\n", static_cast<int>(color.size()),
                 color.data(), static_cast<int>(prefix.size()), prefix.data(),
                 static_cast<int>(line.size()), line.data());
  } else {
    std::fprintf(stderr, "%.*s%.*s\n", static_cast<int>(prefix.size()), prefix.data(),
                 static_cast<int>(line.size()), line.data());
  }
}
}  // namespace

void set_log_settings(LogSettings settings) {
  g_settings = settings;
}

const LogSettings& log_settings() {
  return g_settings;
}

void add_secret(std::string secret) {
  if (secret.size() < 4) {
    return;  // too short to redact without mangling ordinary text
  }
  std::lock_guard lock(g_mutex);
  g_secrets.push_back(std::move(secret));
}

std::string redact(std::string_view text) {
  std::string out(text);
  std::vector<std::string> secrets;
  {
    std::lock_guard lock(g_mutex);
    secrets = g_secrets;
  }
  for (const std::string& s : secrets) {
    for (std::size_t pos = out.find(s); pos != std::string::npos; pos = out.find(s, pos)) {
      out.replace(pos, s.size(), "[redacted]");
    }
  }
  return out;
}

void info(std::string_view text) {
  if (g_settings.verbosity != Verbosity::quiet) {
    emit("", "", text);
  }
}

void debug(std::string_view text) {
  if (g_settings.verbosity == Verbosity::verbose) {
    emit("debug: ", "2", text);
  }
}

void warn(std::string_view text) {
  emit("gpumachine: warning: ", "33", text);
}

}  // namespace gm::util
