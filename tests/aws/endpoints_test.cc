#include "aws/endpoints.h"

#include <gtest/gtest.h>

#include "gm/error.h"
#include "support/scoped_env.h"
#include "util/fs.h"

namespace gm::aws {
namespace {

TEST(AwsEndpoints, DefaultsPerServiceAndPartition) {
  test::ScopedEnv env;
  EXPECT_EQ(resolve_endpoint("ec2", "us-east-1"), "https://ec2.us-east-1.amazonaws.com");
  EXPECT_EQ(resolve_endpoint("ssm", "eu-west-1"), "https://ssm.eu-west-1.amazonaws.com");
  EXPECT_EQ(resolve_endpoint("ec2", "cn-north-1"), "https://ec2.cn-north-1.amazonaws.com.cn");
  EXPECT_EQ(resolve_endpoint("pricing", "us-east-1"),
            "https://api.pricing.us-east-1.amazonaws.com");
}

TEST(AwsEndpoints, ServiceVariableBeatsGlobalVariable) {
  test::ScopedEnv env;
  env.set("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/");
  env.set("AWS_ENDPOINT_URL_EC2", "http://127.0.0.2:9000");
  EXPECT_EQ(resolve_endpoint("ec2", "us-east-1"), "http://127.0.0.2:9000");
  EXPECT_EQ(resolve_endpoint("ssm", "us-east-1"), "http://127.0.0.1:4566");
  env.set("AWS_ENDPOINT_URL_SSM", "http://localhost:1234");
  EXPECT_EQ(resolve_endpoint("ssm", "us-east-1"), "http://localhost:1234");
  env.set("AWS_ENDPOINT_URL_STS", "http://[::1]:5000");
  EXPECT_EQ(resolve_endpoint("sts", "us-east-1"), "http://[::1]:5000");
  env.set("AWS_ENDPOINT_URL_PRICING", "https://pricing.example.com");
  EXPECT_EQ(resolve_endpoint("pricing", "us-east-1"), "https://pricing.example.com");
}

TEST(AwsEndpoints, PlainHttpToNonLoopbackIsRefused) {
  test::ScopedEnv env;
  env.set("AWS_ENDPOINT_URL_EC2", "http://10.1.2.3:4566");
  try {
    resolve_endpoint("ec2", "us-east-1");
    FAIL() << "expected a refusal";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("AWS_ENDPOINT_URL_EC2"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("loopback"), std::string::npos);
  }
  env.set("AWS_ENDPOINT_URL_EC2", "http://ec2.example.com");
  EXPECT_THROW(resolve_endpoint("ec2", "us-east-1"), UsageError);
  env.set("AWS_ENDPOINT_URL_EC2", "https://10.1.2.3:4566");
  EXPECT_EQ(resolve_endpoint("ec2", "us-east-1"), "https://10.1.2.3:4566");
  env.set("AWS_ENDPOINT_URL_EC2", "not a url");
  EXPECT_THROW(resolve_endpoint("ec2", "us-east-1"), UsageError);
}

TEST(AwsEndpoints, RegionPrecedence) {
  test::ScopedEnv env;
  EXPECT_FALSE(find_region().has_value());
  EXPECT_THROW(load_region(), UsageError);
  util::make_private_dir(env.home() / ".aws");
  util::write_file_atomic(env.home() / ".aws/config",
                          "[default]\nregion = eu-north-1\n[profile dev]\nregion = ap-south-1\n");
  EXPECT_EQ(find_region(), "eu-north-1");
  env.set("AWS_PROFILE", "dev");
  EXPECT_EQ(find_region(), "ap-south-1");
  env.set("AWS_DEFAULT_REGION", "us-west-1");
  EXPECT_EQ(find_region(), "us-west-1");
  env.set("AWS_REGION", "us-west-2");
  EXPECT_EQ(find_region(), "us-west-2");
  EXPECT_EQ(find_region("sa-east-1"), "sa-east-1");
  EXPECT_EQ(load_region(std::string()), "us-west-2");  // an empty flag means "not given"
}

}  // namespace
}  // namespace gm::aws
