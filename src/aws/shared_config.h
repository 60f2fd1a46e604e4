// The AWS shared files: ~/.aws/credentials ("[name]" sections) and ~/.aws/config ("[default]",
// "[profile name]"), paths overridable by AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace gm::aws {

/// key -> value of one profile (keys lowercased).
using ProfileSettings = std::map<std::string, std::string>;

/// Both shared files, parsed.
class SharedConfig {
 public:
  /// Reads the files named by the environment (missing files are empty).
  static SharedConfig load();
  /// Parses the given texts (tests).
  static SharedConfig parse(std::string_view credentials_text, std::string_view config_text);

  /// Settings of \a profile, credentials file over config file; nullopt if in neither.
  std::optional<ProfileSettings> find_profile(const std::string& profile) const;
  /// Where the files were read from (for error messages).
  const std::filesystem::path& credentials_path() const { return m_credentials_path; }
  const std::filesystem::path& config_path() const { return m_config_path; }

 private:
  std::map<std::string, ProfileSettings> m_credentials;
  std::map<std::string, ProfileSettings> m_config;
  std::filesystem::path m_credentials_path;
  std::filesystem::path m_config_path;
};

/// $AWS_PROFILE, else "default".
std::string active_profile_name();
/// The value of environment variable \a name if set and not empty.
std::optional<std::string> env(const char* name);

}  // namespace gm::aws
