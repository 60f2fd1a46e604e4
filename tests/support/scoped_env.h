// Environment isolation for tests: EnvVar sets one variable for a scope; ScopedEnv isolates tests
// that read AWS_* variables and $HOME. Every variable touched is restored on destruction.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace gm::test {

/// Sets one environment variable for a scope, then restores it (or unsets it again).
class EnvVar {
 public:
  EnvVar(const char* name, const std::string& value) : m_name(name) {
    if (const char* old = std::getenv(name)) {
      m_old = old;
    }
    setenv(name, value.c_str(), 1);
  }
  ~EnvVar() {
    if (m_old) {
      setenv(m_name.c_str(), m_old->c_str(), 1);
    } else {
      unsetenv(m_name.c_str());
    }
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  std::string m_name;
  std::optional<std::string> m_old;
};

/// Unsets every AWS variable the code reads and gives the test a fresh $HOME.
class ScopedEnv {
 public:
  /// Unsets the AWS variables the code reads, points HOME at a fresh temp dir, and turns IMDS
  /// off so nothing can reach 169.254.169.254.
  ScopedEnv() {
    for (const char* name :
         {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
          "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
          "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_SSM",
          "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_PRICING", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
          "AWS_MAX_ATTEMPTS", "AWS_CA_BUNDLE"}) {
      unset(name);
    }
    char dir[] = "/tmp/gm-env-XXXXXX";
    if (mkdtemp(dir) != nullptr) {
      m_home = dir;
    }
    set("HOME", m_home.string());
    set("AWS_EC2_METADATA_DISABLED", "true");
  }

  ~ScopedEnv() {
    for (const auto& [name, value] : m_saved) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(m_home, ec);
  }

  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

  void set(const std::string& name, const std::string& value) {
    save(name);
    setenv(name.c_str(), value.c_str(), 1);
  }
  void unset(const std::string& name) {
    save(name);
    unsetenv(name.c_str());
  }
  /// The temporary $HOME.
  const std::filesystem::path& home() const { return m_home; }

 private:
  void save(const std::string& name) {
    if (m_saved.count(name) == 0) {
      const char* value = std::getenv(name.c_str());
      m_saved[name] = value ? std::optional<std::string>(value) : std::nullopt;
    }
  }

  std::map<std::string, std::optional<std::string>> m_saved;
  std::filesystem::path m_home;
};

}  // namespace gm::test
