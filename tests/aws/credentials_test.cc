#include "aws/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "gm/error.h"
#include "support/loopback_server.h"
#include "support/scoped_env.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/time.h"

namespace gm::aws {
namespace {

void write(const std::filesystem::path& path, const std::string& text, unsigned mode = 0600) {
  util::make_private_dir(path.parent_path());
  util::write_file_atomic(path, text, mode);
}

TEST(CredentialsChain, EnvironmentWinsOverProfile) {
  test::ScopedEnv env;
  write(env.home() / ".aws/credentials",
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-secret-1234\n");
  env.set("AWS_ACCESS_KEY_ID", "AKIDENV");
  env.set("AWS_SECRET_ACCESS_KEY", "env-secret-1234");
  env.set("AWS_SESSION_TOKEN", "env-token-1234");
  Credentials c = *make_default_chain()->load();
  EXPECT_EQ(c.access_key_id, "AKIDENV");
  EXPECT_EQ(c.secret_access_key, "env-secret-1234");
  EXPECT_EQ(c.session_token, "env-token-1234");
  EXPECT_EQ(c.source, "environment");
  EXPECT_EQ(util::redact("x env-secret-1234 env-token-1234"), "x [redacted] [redacted]");
}

TEST(CredentialsChain, DefaultProfileFromCredentialsFile) {
  test::ScopedEnv env;
  write(env.home() / ".aws/credentials",
        "# comment\n[default]\naws_access_key_id=AKIDFILE\naws_secret_access_key = "
        "file-secret-5678 \naws_session_token = file-token-5678\n\n[other]\naws_access_key_id = "
        "X\naws_secret_access_key = Y\n");
  Credentials c = *make_default_chain()->load();
  EXPECT_EQ(c.access_key_id, "AKIDFILE");
  EXPECT_EQ(c.secret_access_key, "file-secret-5678");
  EXPECT_EQ(c.session_token, "file-token-5678");
  EXPECT_EQ(c.source, "profile default");
}

TEST(CredentialsChain, NamedProfileSectionInConfigFileAndFileOverrides) {
  test::ScopedEnv env;
  std::filesystem::path config = env.home() / "elsewhere/config";
  write(config,
        "[default]\nregion = us-east-1\n[profile dev]\naws_access_key_id = AKIDCONF\n"
        "aws_secret_access_key = conf-secret-9012\n[dev]\naws_access_key_id = NOT_A_PROFILE\n"
        "[sso-session corp]\nsso_region = us-east-1\n");
  env.set("AWS_CONFIG_FILE", config.string());
  env.set("AWS_PROFILE", "dev");
  Credentials c = *make_default_chain()->load();
  EXPECT_EQ(c.access_key_id, "AKIDCONF");  // "[dev]" in config is not a profile section

  // The credentials file, at its overridden path, wins over config for the same profile.
  std::filesystem::path creds = env.home() / "elsewhere/creds";
  write(creds, "[dev]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = creds-secret-3456\n");
  env.set("AWS_SHARED_CREDENTIALS_FILE", creds.string());
  c = *make_default_chain()->load();
  EXPECT_EQ(c.access_key_id, "AKIDCREDS");
}

TEST(CredentialsChain, CredentialProcessOutputIsParsed) {
  test::ScopedEnv env;
  std::filesystem::path script = env.home() / "creds.sh";
  write(script,
        "#!/bin/sh\ncat <<'J'\n{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC\", "
        "\"SecretAccessKey\": \"proc-secret-7890\", \"SessionToken\": \"proc-token-7890\", "
        "\"Expiration\": \"2099-05-06T07:08:09Z\"}\nJ\n",
        0700);
  write(env.home() / ".aws/config",
        "[profile proc]\ncredential_process = " + script.string() + " --flag\n");
  env.set("AWS_PROFILE", "proc");
  Credentials c = *make_default_chain()->load();
  EXPECT_EQ(c.access_key_id, "ASIAPROC");
  EXPECT_EQ(c.secret_access_key, "proc-secret-7890");
  EXPECT_EQ(c.session_token, "proc-token-7890");
  ASSERT_TRUE(c.expiration.has_value());
  EXPECT_EQ(util::rfc3339(*c.expiration), "2099-05-06T07:08:09Z");
  EXPECT_EQ(c.source, "AWS profile \"proc\" (credential_process)");
}

TEST(CredentialsChain, FailingCredentialProcessNeverQuotesItsOutput) {
  test::ScopedEnv env;
  std::filesystem::path script = env.home() / "bad.sh";
  write(script, "#!/bin/sh\necho '{\"Version\": 2, \"SecretAccessKey\": \"leaky-secret-42\"}'\n",
        0700);
  write(env.home() / ".aws/config", "[default]\ncredential_process = " + script.string() + "\n");
  try {
    make_default_chain()->load();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Version"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("leaky-secret-42"), std::string::npos);
  }
  write(script, "#!/bin/sh\necho 'half-written-secret-43'\nexit 3\n", 0700);
  try {
    make_default_chain()->load();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("status 3"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("half-written-secret-43"), std::string::npos);
  }
}

TEST(CredentialsChain, NothingFoundListsEverySourceWithAHint) {
  test::ScopedEnv env;
  try {
    make_default_chain()->load();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("AWS_ACCESS_KEY_ID"), std::string::npos) << what;
    EXPECT_NE(what.find("shared profile \"default\""), std::string::npos) << what;
    EXPECT_NE(what.find(".aws/credentials"), std::string::npos) << what;
    EXPECT_NE(what.find("instance metadata"), std::string::npos) << what;
    EXPECT_NE(e.hint().find("aws configure"), std::string::npos);
    EXPECT_NE(e.hint().find("AWS_PROFILE"), std::string::npos);
  }
}

TEST(CredentialsChain, HalfAKeyPairOrAMissingNamedProfileIsAnErrorWithoutSecrets) {
  test::ScopedEnv env;
  env.set("AWS_SECRET_ACCESS_KEY", "lonely-secret-0001");
  try {
    make_default_chain()->load();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("lonely-secret-0001"), std::string::npos);
    EXPECT_EQ(e.hint().find("lonely-secret-0001"), std::string::npos);
  }
  env.unset("AWS_SECRET_ACCESS_KEY");
  env.set("AWS_PROFILE", "nope");
  try {
    make_default_chain()->load();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"nope\""), std::string::npos) << e.what();
  }
}

TEST(CredentialsChain, CachedProviderRefreshesNearExpiry) {
  struct Counting : CredentialsProvider {
    int* calls;
    util::SystemTime expiry;
    std::string description() const override { return "counting"; }
    std::optional<Credentials> load() override {
      ++*calls;
      return Credentials{"A", "S", "T", expiry, "counting"};
    }
  };
  int calls = 0;
  auto now = *util::parse_rfc3339("2030-01-01T00:00:00Z");
  auto inner = std::make_unique<Counting>();
  inner->calls = &calls;
  inner->expiry = now + std::chrono::minutes(30);
  auto cached = make_cached_provider(std::move(inner), [&] { return now; });
  cached->load();
  cached->load();
  EXPECT_EQ(calls, 1);
  now += std::chrono::minutes(26);  // inside the 5-minute refresh margin
  cached->load();
  EXPECT_EQ(calls, 2);
}

TEST(CredentialsAssumeRole, SourceProfileThroughStsOnLoopback) {
  test::ScopedEnv env;
  test::LoopbackServer server;
  env.set("AWS_ENDPOINT_URL_STS", server.url());
  write(env.home() / ".aws/credentials",
        "[base]\naws_access_key_id = AKIDSOURCE\naws_secret_access_key = source-secret-1111\n");
  write(env.home() / ".aws/config",
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/gpu\nsource_profile = base\n"
        "role_session_name = test-session\nregion = eu-west-1\n");
  env.set("AWS_PROFILE", "role");
  Credentials c = *make_default_chain()->load();
  EXPECT_EQ(c.access_key_id, "ASIAROLEEXAMPLE");
  EXPECT_EQ(c.secret_access_key, "role-secret-key-value");
  EXPECT_EQ(c.session_token, "role-session-token-value");
  ASSERT_TRUE(c.expiration.has_value());
  EXPECT_EQ(util::redact("role-secret-key-value"), "[redacted]");
  EXPECT_NE(c.source.find("arn:aws:iam::123456789012:role/gpu"), std::string::npos);
}

TEST(CredentialsAssumeRole, StsRefusalIsACloudError) {
  test::ScopedEnv env;
  test::LoopbackServer server;
  env.set("AWS_ENDPOINT_URL_STS", server.url());
  write(env.home() / ".aws/config",
        "[profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = role\n"
        "aws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong-secret-2222\n");
  env.set("AWS_PROFILE", "role");
  try {
    make_default_chain()->load();
    FAIL() << "expected an error";
  } catch (const CloudError& e) {
    EXPECT_EQ(e.code(), "SignatureDoesNotMatch");
    EXPECT_EQ(e.request_id(), "rid-sts-1");
    EXPECT_EQ(std::string(e.what()).find("wrong-secret-2222"), std::string::npos);
  }
}

TEST(CredentialsImds, TokenThenRoleThenCredentialsOnLoopback) {
  test::ScopedEnv env;
  test::LoopbackServer server;
  env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url());
  EXPECT_FALSE(make_imds_provider()->load().has_value());  // disabled by ScopedEnv
  env.set("AWS_EC2_METADATA_DISABLED", "false");
  Credentials c = *make_imds_provider()->load();
  EXPECT_EQ(c.access_key_id, "ASIAIMDSEXAMPLE");
  EXPECT_EQ(c.secret_access_key, "imds-secret-key-value");
  EXPECT_EQ(c.session_token, "imds-session-token-value");
  EXPECT_EQ(c.source, "instance role test-role");
  EXPECT_EQ(util::redact("imds-token-abcdef"), "[redacted]");
}

TEST(CredentialsImds, NoServiceMeansNoCredentialsQuickly) {
  test::ScopedEnv env;
  env.set("AWS_EC2_METADATA_DISABLED", "false");
  // A loopback port nobody listens on stands in for "not on EC2".
  env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9");
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(make_imds_provider()->load().has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace gm::aws
