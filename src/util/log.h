// Diagnostics on stderr (the payload goes to stdout through cli/output): levels, colour, and the
// redaction of secrets, so nothing registered as secret is ever printed, even with -v.
#pragma once

#include <string>
#include <string_view>

namespace gm::util {

enum class Verbosity { quiet, normal, verbose };

struct LogSettings {
  Verbosity verbosity = Verbosity::normal;
  bool color = false;
};

void set_log_settings(LogSettings settings);
const LogSettings& log_settings();

/// Registers a secret (a key, a token) so redact() replaces it wherever it appears.
void add_secret(std::string secret);
/// text with every registered secret replaced by "[redacted]".
std::string redact(std::string_view text);

/// Progress and notes (suppressed by -q).
void info(std::string_view text);
/// Only with -v: API calls, remote commands.
void debug(std::string_view text);
/// Always shown: something the user should know.
void warn(std::string_view text);

}  // namespace gm::util
