#include "run/job_env.h"

#include "gm/error.h"
#include "util/fs.h"

#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>

namespace gm::run {

namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) != 0) {
    return false;
  }
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') {
      return false;
    }
  }
  return true;
}

/// One "K=V" or "K" setting into values; subject names where it came from.
void add_setting(std::map<std::string, std::string>& values, const std::string& setting,
                 const std::string& subject) {
  std::size_t eq = setting.find('=');
  std::string name = setting.substr(0, eq);
  if (!valid_name(name)) {
    throw UsageError(subject, "'" + name + "' is not a variable name",
                     "use NAME=VALUE with letters, digits and _ in NAME");
  }
  std::string value;
  if (eq != std::string::npos) {
    value = setting.substr(eq + 1);
  } else if (const char* local = std::getenv(name.c_str()); local != nullptr) {
    value = local;
  } else {
    throw UsageError(subject, name + " is not set here",
                     "export " + name + " first, or give NAME=VALUE");
  }
  if (value.find_first_of("\n\r") != std::string::npos) {
    throw UsageError(subject, "the value of " + name + " has a line break",
                     "docker takes one-line values; pass a file in the project instead");
  }
  values[name] = value;
}

}  // namespace

std::string job_env(const std::vector<std::string>& settings,
                    const std::vector<std::string>& env_files) {
  std::map<std::string, std::string> values;
  for (const std::string& file : env_files) {
    std::optional<std::string> text = util::try_read_file(file);
    if (!text) {
      throw UsageError("--env-file " + file, "cannot be read", "give a readable file");
    }
    std::istringstream in(*text);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      std::size_t start = line.find_first_not_of(" \t");
      if (start == std::string::npos || line[start] == '#') {
        continue;
      }
      add_setting(values, line.substr(start),
                  "--env-file " + file + " line " + std::to_string(number));
    }
  }
  for (const std::string& setting : settings) {
    add_setting(values, setting, "-e " + setting.substr(0, setting.find('=')));
  }
  std::string out;
  for (const auto& [name, value] : values) {
    out += name + "=" + value + "\n";
  }
  return out;
}

}  // namespace gm::run
