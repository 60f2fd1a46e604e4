#include "aws/shared_config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "util/fs.h"

namespace gm::aws {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// INI as the AWS CLI writes it. Indented lines continue a nested block ("s3 =\n  max = 1"),
// which only service-specific settings use; they are skipped rather than misread as keys.
std::map<std::string, ProfileSettings> parse_ini(std::string_view text, bool is_config) {
  std::map<std::string, ProfileSettings> out;
  std::string section;
  bool in_section = false;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') {
      continue;
    }
    if (line.front() == '[') {
      std::size_t close = line.find(']');
      std::string name(
          trim(line.substr(1, close == std::string_view::npos ? line.npos : close - 1)));
      in_section = true;
      if (is_config) {
        // config: "[default]" or "[profile x]"; other kinds ([sso-session x], [services x])
        // are not profiles.
        if (name.rfind("profile ", 0) == 0) {
          name = std::string(trim(std::string_view(name).substr(8)));
        } else if (name != "default") {
          in_section = false;
        }
      }
      section = name;
      if (in_section) {
        out[section];
      }
      continue;
    }
    if (!in_section || indented) {
      continue;
    }
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    std::string key = lower(trim(line.substr(0, eq)));
    std::string_view value = trim(line.substr(eq + 1));
    out[section][key] = std::string(value);
  }
  return out;
}

}  // namespace

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return std::string(value);
}

std::string active_profile_name() {
  return env("AWS_PROFILE").value_or("default");
}

SharedConfig SharedConfig::load() {
  SharedConfig out;
  out.m_credentials_path =
      util::expand_user(env("AWS_SHARED_CREDENTIALS_FILE").value_or("~/.aws/credentials"));
  out.m_config_path = util::expand_user(env("AWS_CONFIG_FILE").value_or("~/.aws/config"));
  if (auto text = util::try_read_file(out.m_credentials_path)) {
    out.m_credentials = parse_ini(*text, /*is_config=*/false);
  }
  if (auto text = util::try_read_file(out.m_config_path)) {
    out.m_config = parse_ini(*text, /*is_config=*/true);
  }
  return out;
}

SharedConfig SharedConfig::parse(std::string_view credentials_text, std::string_view config_text) {
  SharedConfig out;
  out.m_credentials = parse_ini(credentials_text, false);
  out.m_config = parse_ini(config_text, true);
  return out;
}

std::optional<ProfileSettings> SharedConfig::find_profile(const std::string& profile) const {
  auto cred = m_credentials.find(profile);
  auto conf = m_config.find(profile);
  if (cred == m_credentials.end() && conf == m_config.end()) {
    return std::nullopt;
  }
  ProfileSettings merged;
  if (conf != m_config.end()) {
    merged = conf->second;
  }
  // The credentials file wins over the config file, as in the AWS CLI.
  if (cred != m_credentials.end()) {
    for (const auto& [key, value] : cred->second) {
      merged[key] = value;
    }
  }
  return merged;
}

}  // namespace gm::aws
