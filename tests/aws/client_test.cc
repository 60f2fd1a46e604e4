#include "aws/client.h"

#include <gtest/gtest.h>

#include "aws/xml.h"
#include "gm/error.h"
#include "support/fake_transport.h"
#include "support/loopback_server.h"
#include "support/scoped_env.h"
#include "util/log.h"
#include "util/time.h"

namespace gm::aws {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

constexpr const char* k_ok_body =
    R"(<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>rid-ok</requestId><regionInfo><item><regionName>us-east-1</regionName></item></regionInfo>
</DescribeRegionsResponse>)";

std::string ec2_error(const std::string& code) {
  return "<Response><Errors><Error><Code>" + code + "</Code><Message>m</Message></Error></Errors>" +
         "<RequestID>rid-err</RequestID></Response>";
}

struct Harness {
  Harness() {
    transport = std::make_shared<test::FakeTransport>();
    ClientOptions options;
    options.region = "us-east-1";
    options.credentials = [] {
      return Credentials{"AKIDCLIENT", "client-secret-5555", "client-token-5555", std::nullopt,
                         "test"};
    };
    options.transport = transport;
    options.retry = http::RetrySettings{};
    options.sleep = [this](milliseconds d) { sleeps.push_back(d); };
    options.random = [] { return 0.5; };
    options.clock = [] { return *util::parse_rfc3339("2026-11-22T10:00:00Z"); };
    options.endpoint = [](std::string_view service) {
      return "http://127.0.0.1:1/" + std::string(service);
    };
    client = std::make_unique<AwsClient>(std::move(options));
  }
  std::shared_ptr<test::FakeTransport> transport;
  std::vector<milliseconds> sleeps;
  std::unique_ptr<AwsClient> client;
};

std::string header(const http::Request& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) {
      return v;
    }
  }
  return {};
}

TEST(AwsClient, QueryCallIsSignedPostedAndParsed) {
  Harness h;
  h.transport->push(200, k_ok_body, {{"x-amzn-requestid", "rid-ok"}});
  QueryParams params;
  params.set_list("RegionName", {"us-east-1"});
  QueryResult result = h.client->call("ec2", "DescribeRegions", params);
  EXPECT_EQ(result.request_id, "rid-ok");
  EXPECT_EQ(xml::text(xml::items(result.root(), "regionInfo").at(0), "regionName"), "us-east-1");

  ASSERT_EQ(h.transport->requests.size(), 1u);
  const http::Request& sent = h.transport->requests[0];
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.url, "http://127.0.0.1:1/ec2/");
  EXPECT_EQ(sent.body, "Action=DescribeRegions&Version=2016-11-15&RegionName.1=us-east-1");
  EXPECT_EQ(header(sent, "Content-Type"), "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_EQ(header(sent, "X-Amz-Date"), "20261122T100000Z");
  EXPECT_EQ(header(sent, "X-Amz-Security-Token"), "client-token-5555");
  EXPECT_EQ(header(sent, "Host"), "127.0.0.1:1");
  std::string authz = header(sent, "Authorization");
  EXPECT_EQ(authz.rfind("AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20261122/us-east-1/ec2/"
                        "aws4_request, SignedHeaders=content-type;host;x-amz-date;"
                        "x-amz-security-token, Signature=",
                        0),
            0u)
      << authz;
}

TEST(AwsClient, ThrottlingIsRetriedWithTheLongBaseThenSucceeds) {
  Harness h;
  h.transport->push(503, ec2_error("RequestLimitExceeded"));
  h.transport->push(200, k_ok_body);
  h.client->call("ec2", "DescribeRegions", {});
  EXPECT_EQ(h.transport->requests.size(), 2u);
  ASSERT_EQ(h.sleeps.size(), 1u);
  EXPECT_EQ(h.sleeps[0], 500ms);  // 0.5 * 1 s
}

TEST(AwsClient, ClientErrorsBecomeCloudErrorsWithoutRetry) {
  Harness h;
  h.transport->push(400, ec2_error("InvalidParameterValue"));
  try {
    h.client->call("ec2", "RunInstances", QueryParams().set("ClientToken", "t"));
    FAIL() << "expected a CloudError";
  } catch (const CloudError& e) {
    EXPECT_EQ(e.code(), "InvalidParameterValue");
    EXPECT_EQ(e.http_status(), 400);
    EXPECT_EQ(e.request_id(), "rid-err");
    EXPECT_EQ(e.action(), "RunInstances");
  }
  EXPECT_EQ(h.transport->requests.size(), 1u);
}

TEST(AwsClient, RunInstancesIsResentAfterA5xxOnlyWithAClientToken) {
  Harness without;
  without.transport->push(500, ec2_error("InternalError"));
  without.transport->push(200, k_ok_body);
  EXPECT_THROW(without.client->call("ec2", "RunInstances", QueryParams().set("ImageId", "ami-1")),
               CloudError);
  EXPECT_EQ(without.transport->requests.size(), 1u);

  Harness with;
  with.transport->push(500, ec2_error("InternalError"));
  with.transport->push(200, k_ok_body);
  with.client->call("ec2", "RunInstances", QueryParams().set("ClientToken", "tok-1"));
  ASSERT_EQ(with.transport->requests.size(), 2u);
  EXPECT_EQ(with.transport->requests[0].body, with.transport->requests[1].body);

  Harness flagged;  // any call the caller marks as not idempotent
  flagged.transport->push_error(http::TransportError::Kind::timeout);
  CallOptions options;
  options.idempotent = false;
  EXPECT_THROW(flagged.client->call("ec2", "CreateSecurityGroup", {}, options), Error);
  EXPECT_EQ(flagged.transport->requests.size(), 1u);
}

TEST(AwsClient, TransportFailuresAfterAllAttemptsBecomeAnErrorWithCurlText) {
  Harness h;
  for (int i = 0; i < 3; ++i) {
    h.transport->push_error(http::TransportError::Kind::io, "Connection reset by peer");
  }
  try {
    h.client->call("ec2", "DescribeInstances", {});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Connection reset by peer"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("DescribeInstances"), std::string::npos);
  }
  EXPECT_EQ(h.transport->requests.size(), 3u);
  EXPECT_EQ(h.sleeps.size(), 2u);
}

TEST(AwsClient, JsonCallForSsmAndItsErrors) {
  Harness h;
  h.transport->push(200, R"({"Parameter":{"Name":"/aws/x","Type":"String","Value":"ami-123"}})");
  nlohmann::json out = h.client->call_json("ssm", "AmazonSSM.GetParameter", {{"Name", "/aws/x"}});
  EXPECT_EQ(out["Parameter"]["Value"], "ami-123");
  const http::Request& sent = h.transport->requests.at(0);
  EXPECT_EQ(sent.url, "http://127.0.0.1:1/ssm/");
  EXPECT_EQ(sent.body, R"({"Name":"/aws/x"})");
  EXPECT_EQ(header(sent, "Content-Type"), "application/x-amz-json-1.1");
  EXPECT_EQ(header(sent, "X-Amz-Target"), "AmazonSSM.GetParameter");
  EXPECT_NE(header(sent, "Authorization").find("/ssm/aws4_request"), std::string::npos);
  EXPECT_NE(header(sent, "Authorization").find("x-amz-target"), std::string::npos);

  h.transport->push(400, R"({"__type":"com.amazonaws.ssm#ParameterNotFound","message":"no such"})",
                    {{"x-amzn-requestid", "rid-ssm"}});
  try {
    h.client->call_json("ssm", "AmazonSSM.GetParameter", {{"Name", "/nope"}});
    FAIL() << "expected a CloudError";
  } catch (const CloudError& e) {
    EXPECT_EQ(e.code(), "ParameterNotFound");
    EXPECT_EQ(e.message(), "no such");
    EXPECT_EQ(e.request_id(), "rid-ssm");
    EXPECT_EQ(e.action(), "GetParameter");
  }
  http::Response throttled{400, {{"x-amzn-errortype", "ThrottlingException:http://x"}}, ""};
  EXPECT_EQ(json_error_code(throttled), "ThrottlingException");
}

TEST(AwsClient, VerboseLogsOneRedactedLinePerAttempt) {
  Harness h;
  util::add_secret("client-secret-5555");
  h.transport->push(503, ec2_error("Unavailable"), {{"x-amzn-requestid", "rid-a"}});
  h.transport->push(200, k_ok_body, {{"x-amzn-requestid", "rid-b"}});
  util::LogSettings saved = util::log_settings();
  util::set_log_settings({util::Verbosity::verbose, false});
  testing::internal::CaptureStderr();
  h.client->call("ec2", "DescribeRegions", {});
  std::string log = testing::internal::GetCapturedStderr();
  util::set_log_settings(saved);
  EXPECT_NE(log.find("ec2 DescribeRegions -> HTTP 503 request-id rid-a"), std::string::npos) << log;
  EXPECT_NE(log.find("attempt 1/3"), std::string::npos) << log;
  EXPECT_NE(log.find("HTTP 200 request-id rid-b"), std::string::npos) << log;
  EXPECT_NE(log.find("attempt 2/3"), std::string::npos) << log;
  EXPECT_NE(log.find(" ms "), std::string::npos) << log;
  EXPECT_EQ(log.find("client-secret-5555"), std::string::npos);
}

TEST(AwsClient, RealCurlRoundTripToLoopbackSts) {
  test::ScopedEnv env;
  test::LoopbackServer server;
  env.set("AWS_ENDPOINT_URL_STS", server.url());
  ClientOptions options;
  options.region = "us-east-1";
  options.credentials = [] {
    return Credentials{"AKIDSOURCE", "source-secret-6666", "", std::nullopt, "test"};
  };
  AwsClient client(std::move(options));
  QueryResult result = client.call(
      "sts", "AssumeRole",
      QueryParams().set("RoleArn", "arn:aws:iam::1:role/r").set("RoleSessionName", "s"));
  EXPECT_EQ(result.request_id, "rid-assume-1");
  EXPECT_EQ(xml::text(result.root(), "AssumeRoleResult/Credentials/AccessKeyId"),
            "ASIAROLEEXAMPLE");
}

}  // namespace
}  // namespace gm::aws
