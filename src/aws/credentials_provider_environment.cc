// Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
#include "aws/credentials.h"
#include "aws/shared_config.h"
#include "gm/error.h"
#include "util/log.h"

namespace gm::aws {

namespace {

class EnvironmentProvider : public CredentialsProvider {
 public:
  std::string description() const override {
    return "environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)";
  }

  std::optional<Credentials> load() override {
    std::optional<std::string> id = env("AWS_ACCESS_KEY_ID");
    std::optional<std::string> secret = env("AWS_SECRET_ACCESS_KEY");
    if (secret) {
      util::add_secret(*secret);
    }
    if (!id && !secret) {
      return std::nullopt;
    }
    if (!id || !secret) {
      // Half a key pair is a mistake worth stopping on; falling through to a profile would
      // silently act as a different identity.
      throw Error("AWS credentials",
                  "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set", {},
                  "set both, or unset both to use a profile");
    }
    Credentials out;
    out.access_key_id = *id;
    out.secret_access_key = *secret;
    if (auto token = env("AWS_SESSION_TOKEN")) {
      util::add_secret(*token);
      out.session_token = *token;
    }
    out.source = "environment";
    return out;
  }
};

}  // namespace

std::unique_ptr<CredentialsProvider> make_environment_provider() {
  return std::make_unique<EnvironmentProvider>();
}

}  // namespace gm::aws
