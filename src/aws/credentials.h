// AWS credentials and where they come from. Each provider lives in its own file
// (credentials_provider_*.cc, aws-c-auth's layout); the default chain tries them in the order the
// AWS CLI does (environment, shared profile with credential_process / AssumeRole, IMDSv2) and is
// resolved once per process. Secrets are registered with util::add_secret the moment they are
// read, so no log line or error message can print them.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/transport.h"

namespace gm::aws {

/// A set of AWS credentials.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  ///< empty for long-term keys
  /// When temporary credentials stop working; unset for long-term keys.
  std::optional<std::chrono::system_clock::time_point> expiration;
  /// Human-readable origin ("environment", "profile dev (credential_process)"); never secret.
  std::string source;
};

/// Makes a transport for the providers that speak HTTP (STS, IMDS); swapped in tests.
using TransportFactory = std::function<std::unique_ptr<http::Transport>()>;
/// The current time; swapped in tests.
using Clock = std::function<std::chrono::system_clock::time_point()>;

/// One place credentials may come from.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  /// What this provider looks at, for the "tried: ..." list of the no-credentials error.
  virtual std::string description() const = 0;
  /// The credentials, or nullopt when this source is not configured. Throws gm::Error when the
  /// source is configured but broken (a failing credential_process, a denied AssumeRole).
  virtual std::optional<Credentials> load() = 0;
};

/// Settings shared by the providers.
struct ProviderOptions {
  /// The profile to use; empty: $AWS_PROFILE, else "default".
  std::string profile;
  /// Transport for STS and IMDS; unset: a CurlTransport.
  TransportFactory make_transport;
  /// Clock for signing and expiry checks; unset: the system clock.
  Clock clock;
};

/// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
std::unique_ptr<CredentialsProvider> make_environment_provider();
/// The shared profile: static keys, credential_process, or role_arn + source_profile /
/// credential_source through STS AssumeRole.
std::unique_ptr<CredentialsProvider> make_profile_provider(ProviderOptions options = {});
/// EC2 instance metadata (IMDSv2); off when AWS_EC2_METADATA_DISABLED=true.
std::unique_ptr<CredentialsProvider> make_imds_provider(ProviderOptions options = {});
/// Tries \a providers in order; the first that returns credentials wins. When none does, throws
/// gm::Error listing every description with a hint on how to configure credentials.
std::unique_ptr<CredentialsProvider> make_chain_provider(
    std::vector<std::unique_ptr<CredentialsProvider>> providers);
/// Remembers what \a inner returned until 5 minutes before it expires.
std::unique_ptr<CredentialsProvider> make_cached_provider(
    std::unique_ptr<CredentialsProvider> inner, Clock clock = {});
/// environment -> profile -> IMDS, cached.
std::unique_ptr<CredentialsProvider> make_default_chain(ProviderOptions options = {});

/// The process-wide default chain's credentials: resolved on first use, then cached (and
/// refreshed near expiry). Throws gm::Error when none can be found.
Credentials default_credentials();

/// Runs \a command with /bin/sh and parses its credential_process JSON (Version 1). \a subject
/// names the profile in errors. Throws gm::Error on a failing command or malformed output.
Credentials run_credential_process(const std::string& command, const std::string& subject);

/// Parameters of an STS AssumeRole call.
struct AssumeRoleRequest {
  std::string role_arn;
  std::string session_name;
  std::string external_id;  ///< empty: not sent
  std::optional<std::chrono::seconds> duration;
  std::string region;  ///< STS region; empty: us-east-1
};

/// Calls STS AssumeRole signed with \a source; returns the temporary credentials.
Credentials assume_role(const Credentials& source, const AssumeRoleRequest& request,
                        const ProviderOptions& options);

}  // namespace gm::aws
