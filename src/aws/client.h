// AwsClient: one signed AWS API call = resolve endpoint, encode, sign (SigV4), send through the
// Transport, retry through THE RetryPolicy, and turn failures into gm::CloudError. Speaks the
// Query protocol (EC2, STS: form body in, XML out) and JSON 1.1 (SSM, Pricing). With -v it logs
// one redacted line per attempt: service, action, HTTP status, request id, latency, attempt.
#pragma once

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "aws/credentials.h"
#include "aws/query.h"
#include "gm/error.h"
#include "http/retry.h"
#include "http/transport.h"

namespace gm::aws {

/// How an AwsClient is wired.
struct ClientOptions {
  std::string region;
  /// Called before each attempt (so refreshed temporary credentials are picked up);
  /// unset: default_credentials().
  std::function<Credentials()> credentials;
  /// unset: a CurlTransport. Not shared across threads (see curl_transport.h).
  std::shared_ptr<http::Transport> transport;
  /// Retry numbers; the sleep/random hooks are for tests.
  http::RetrySettings retry = http::RetrySettings::from_env();
  http::RetryPolicy::Sleep sleep;
  http::RetryPolicy::Random random;
  /// unset: the system clock (used for X-Amz-Date).
  Clock clock;
  /// Per-service endpoint override (tests); unset: resolve_endpoint(service, region).
  std::function<std::string(std::string_view service)> endpoint;
};

/// Per-call knobs.
struct CallOptions {
  /// Whether the call may be resent after an ambiguous failure (timeout, reset, 5xx). Set false
  /// for calls that create things without an idempotency token; RunInstances is idempotent only
  /// with a ClientToken.
  bool idempotent = true;
  /// Query API version; empty: the service's default (ec2 2016-11-15, sts 2011-06-15).
  std::string version;
};

/// A successful Query API response.
struct QueryResult {
  http::Response response;
  pugi::xml_document document;
  std::string request_id;
  /// The "<Action>Response" element. Nodes point into `document`: a temporary result has no
  /// root, so `call(...).root()` cannot outlive the statement that made it.
  pugi::xml_node root() const& { return document.document_element(); }
  pugi::xml_node root() const&& = delete;
};

/// Signs and sends AWS API calls for one region. Not thread-safe: one per thread.
class AwsClient {
 public:
  explicit AwsClient(ClientOptions options);

  /// Query protocol call, e.g. call("ec2", "DescribeInstances", params). Throws gm::CloudError
  /// for an API error (after retries) and gm::Error for a transport failure.
  QueryResult call(std::string_view service, std::string_view action, const QueryParams& params,
                   const CallOptions& options = {});

  /// JSON 1.1 call, e.g. call_json("ssm", "AmazonSSM.GetParameter", {{"Name", "/aws/..."}}).
  /// Returns the parsed response body; throws like call().
  nlohmann::json call_json(std::string_view service, std::string_view target,
                           const nlohmann::json& body, const CallOptions& options = {});

  const std::string& region() const { return m_options.region; }
  /// The endpoint a service's calls go to.
  std::string endpoint(std::string_view service) const;

 private:
  http::Response send(std::string_view service, std::string_view action, std::string body,
                      http::Headers headers, bool idempotent,
                      const std::function<std::string(const http::Response&)>& error_code_of);

  ClientOptions m_options;
  std::shared_ptr<http::Transport> m_transport;
  http::RetryPolicy m_retry;
};

/// The code in a JSON 1.1 error ("com.amazonaws.ssm#ParameterNotFound:..." -> "ParameterNotFound"),
/// from the body's __type or the x-amzn-ErrorType header.
std::string json_error_code(const http::Response& response);
/// A CloudError from a failed JSON 1.1 response.
CloudError parse_json_error(std::string_view target, const http::Response& response);

}  // namespace gm::aws
