// The shared profile (AWS_PROFILE or "default") from ~/.aws/credentials and ~/.aws/config:
// role_arn (+ source_profile or credential_source) through STS AssumeRole, else static keys,
// else credential_process. Source profiles resolve recursively, with a cycle check.
#include <chrono>
#include <set>

#include "aws/credentials.h"
#include "aws/shared_config.h"
#include "gm/error.h"
#include "util/log.h"

namespace gm::aws {

namespace {

std::string get(const ProfileSettings& settings, const std::string& key) {
  auto it = settings.find(key);
  return it == settings.end() ? std::string{} : it->second;
}

class ProfileProvider : public CredentialsProvider {
 public:
  explicit ProfileProvider(ProviderOptions options) : m_options(std::move(options)) {}

  std::string description() const override {
    SharedConfig config = SharedConfig::load();
    return "shared profile \"" + profile_name() + "\" (" + config.credentials_path().string() +
           ", " + config.config_path().string() + ")";
  }

  std::optional<Credentials> load() override {
    SharedConfig config = SharedConfig::load();
    std::string name = profile_name();
    if (!config.find_profile(name)) {
      if (!m_options.profile.empty() || env("AWS_PROFILE")) {
        // A profile the user asked for by name must exist; silently using another identity
        // would be worse than stopping.
        throw Error("AWS profile \"" + name + "\"", "not found",
                    "looked in " + config.credentials_path().string() + " and " +
                        config.config_path().string(),
                    "run \"aws configure --profile " + name + "\" or fix AWS_PROFILE");
      }
      return std::nullopt;
    }
    std::set<std::string> visited;
    return resolve(config, name, visited);
  }

 private:
  std::string profile_name() const {
    return m_options.profile.empty() ? active_profile_name() : m_options.profile;
  }

  static std::optional<Credentials> static_keys(const ProfileSettings& settings,
                                                const std::string& name) {
    std::string id = get(settings, "aws_access_key_id");
    std::string secret = get(settings, "aws_secret_access_key");
    util::add_secret(secret);
    if (id.empty() && secret.empty()) {
      return std::nullopt;
    }
    if (id.empty() || secret.empty()) {
      throw Error("AWS profile \"" + name + "\"",
                  "has only one of aws_access_key_id and aws_secret_access_key", {},
                  "run \"aws configure --profile " + name + "\"");
    }
    Credentials out;
    out.access_key_id = id;
    out.secret_access_key = secret;
    out.session_token = get(settings, "aws_session_token");
    util::add_secret(out.session_token);
    out.source = "profile " + name;
    return out;
  }

  std::optional<Credentials> resolve(const SharedConfig& config, const std::string& name,
                                     std::set<std::string>& visited) {
    std::string subject = "AWS profile \"" + name + "\"";
    std::optional<ProfileSettings> settings = config.find_profile(name);
    if (!settings) {
      throw Error(subject, "not found (named by a source_profile)", {},
                  "fix source_profile in " + config.config_path().string());
    }
    if (!visited.insert(name).second) {
      throw Error(subject, "source_profile chain loops back to it", {},
                  "fix source_profile in " + config.config_path().string());
    }
    if (std::string role_arn = get(*settings, "role_arn"); !role_arn.empty()) {
      return assume(config, name, *settings, role_arn, visited);
    }
    if (auto keys = static_keys(*settings, name)) {
      return keys;
    }
    if (std::string command = get(*settings, "credential_process"); !command.empty()) {
      return run_credential_process(command, subject);
    }
    if (!get(*settings, "sso_session").empty() || !get(*settings, "sso_start_url").empty()) {
      throw Error(subject, "uses AWS IAM Identity Center (SSO), which gpumachine cannot log in to",
                  {},
                  "run \"aws sso login --profile " + name +
                      "\", then use a profile with \"credential_process = aws configure "
                      "export-credentials --profile " +
                      name + " --format process\"");
    }
    return std::nullopt;
  }

  Credentials assume(const SharedConfig& config, const std::string& name,
                     const ProfileSettings& settings, const std::string& role_arn,
                     std::set<std::string>& visited) {
    std::string subject = "AWS profile \"" + name + "\"";
    std::optional<Credentials> source;
    std::string source_profile = get(settings, "source_profile");
    std::string credential_source = get(settings, "credential_source");
    if (!source_profile.empty()) {
      // A profile naming itself as source means "my own static keys", not a loop.
      source = source_profile == name ? static_keys(settings, name)
                                      : resolve(config, source_profile, visited);
      if (!source) {
        throw Error(subject, "source_profile \"" + source_profile + "\" has no credentials", {},
                    "run \"aws configure --profile " + source_profile + "\"");
      }
    } else if (credential_source == "Environment") {
      source = make_environment_provider()->load();
    } else if (credential_source == "Ec2InstanceMetadata") {
      source = make_imds_provider(m_options)->load();
    } else if (!credential_source.empty()) {
      throw Error(subject, "credential_source \"" + credential_source + "\" is not supported", {},
                  "use Environment, Ec2InstanceMetadata or a source_profile");
    } else {
      throw Error(subject, "has role_arn but neither source_profile nor credential_source", {},
                  "add \"source_profile = <profile with keys>\"");
    }
    if (!source) {
      throw Error(subject, "credential_source \"" + credential_source + "\" has no credentials");
    }

    AssumeRoleRequest request;
    request.role_arn = role_arn;
    request.session_name = get(settings, "role_session_name");
    if (request.session_name.empty()) {
      auto now = m_options.clock ? m_options.clock() : std::chrono::system_clock::now();
      request.session_name =
          "gpumachine-" +
          std::to_string(
              std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
    }
    request.external_id = get(settings, "external_id");
    if (std::string duration = get(settings, "duration_seconds"); !duration.empty()) {
      try {
        request.duration = std::chrono::seconds(std::stol(duration));
      } catch (const std::exception&) {
        throw Error(subject, "duration_seconds \"" + duration + "\" is not a number");
      }
    }
    request.region = get(settings, "region");
    if (request.region.empty()) {
      request.region = env("AWS_REGION").value_or(env("AWS_DEFAULT_REGION").value_or(""));
    }
    Credentials out = assume_role(*source, request, m_options);
    out.source = "profile " + name + " (role " + role_arn + ")";
    return out;
  }

  ProviderOptions m_options;
};

}  // namespace

std::unique_ptr<CredentialsProvider> make_profile_provider(ProviderOptions options) {
  return std::make_unique<ProfileProvider>(std::move(options));
}

}  // namespace gm::aws
