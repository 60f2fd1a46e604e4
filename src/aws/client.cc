#include "aws/client.h"

#include <chrono>

#include "aws/endpoints.h"
#include "aws/sigv4.h"
#include "aws/xml.h"
#include "gm/error.h"
#include "http/curl_transport.h"
#include "http/url.h"
#include "util/log.h"

namespace gm::aws {

namespace {

std::string default_version(std::string_view service) {
  if (service == "ec2") {
    return "2016-11-15";
  }
  if (service == "sts") {
    return "2011-06-15";
  }
  if (service == "iam") {
    return "2010-05-08";
  }
  throw Error(std::string(service), "no default Query API version", "pass CallOptions::version");
}

std::string strip_code(std::string code) {
  // "com.amazonaws.ssm#ParameterNotFound:http://..." -> "ParameterNotFound"
  if (std::size_t hash = code.rfind('#'); hash != std::string::npos) {
    code = code.substr(hash + 1);
  }
  if (std::size_t colon = code.find(':'); colon != std::string::npos) {
    code = code.substr(0, colon);
  }
  return code;
}

}  // namespace

std::string json_error_code(const http::Response& response) {
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("__type") && body["__type"].is_string()) {
    return strip_code(body["__type"].get<std::string>());
  }
  if (auto header = response.header("x-amzn-errortype")) {
    return strip_code(*header);
  }
  return {};
}

CloudError parse_json_error(std::string_view target, const http::Response& response) {
  std::string code = json_error_code(response);
  std::string message;
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_object()) {
    for (const char* key : {"message", "Message"}) {
      if (body.contains(key) && body[key].is_string()) {
        message = body[key].get<std::string>();
        break;
      }
    }
  }
  if (code.empty() && message.empty()) {
    message = xml::status_text(response.status);
  }
  std::string request_id = response.header("x-amzn-requestid").value_or("");
  std::string action(
      target.substr(target.find('.') == std::string_view::npos ? 0 : target.find('.') + 1));
  return CloudError(action, response.status, std::move(code), std::move(message),
                    std::move(request_id));
}

AwsClient::AwsClient(ClientOptions options)
    : m_options(std::move(options)),
      m_transport(m_options.transport ? m_options.transport
                                      : std::make_shared<http::CurlTransport>()),
      m_retry(m_options.retry, m_options.sleep, m_options.random) {
  if (!m_options.credentials) {
    m_options.credentials = [] { return default_credentials(); };
  }
  if (!m_options.clock) {
    m_options.clock = [] { return std::chrono::system_clock::now(); };
  }
}

std::string AwsClient::endpoint(std::string_view service) const {
  return m_options.endpoint ? m_options.endpoint(service)
                            : resolve_endpoint(service, m_options.region);
}

http::Response AwsClient::send(
    std::string_view service, std::string_view action, std::string body, http::Headers headers,
    bool idempotent, const std::function<std::string(const http::Response&)>& error_code_of) {
  std::string url = endpoint(service) + "/";
  http::Url parsed = http::parse_url(url);

  auto send_once = [&](int attempt) {
    // Signed per attempt: a retry needs a fresh X-Amz-Date, and possibly fresh credentials.
    Credentials credentials = m_options.credentials();
    SignableRequest signable;
    signable.method = "POST";
    signable.path = parsed.path;  // "/" for AWS; an endpoint URL may carry a prefix
    signable.host = parsed.authority();
    signable.headers = headers;
    signable.payload = body;
    sign(signable, credentials, m_options.region, service, m_options.clock());

    http::Request request;
    request.method = "POST";
    request.url = url;
    request.headers = std::move(signable.headers);
    request.body = body;

    auto start = std::chrono::steady_clock::now();
    auto log = [&](const std::string& outcome) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
      util::debug("aws: " + std::string(service) + " " + std::string(action) + " -> " + outcome +
                  " " + std::to_string(ms.count()) + " ms attempt " + std::to_string(attempt) +
                  "/" + std::to_string(m_retry.settings().max_attempts));
    };
    try {
      http::Response response = m_transport->send(request);
      std::string id = response.header("x-amzn-requestid").value_or("-");
      log("HTTP " + std::to_string(response.status) + " request-id " + id);
      return response;
    } catch (const http::TransportError& e) {
      log(std::string("transport error: ") + e.what());
      throw;
    }
  };
  auto failure_of = [&](const http::Response& response) -> std::optional<http::Failure> {
    if (response.status >= 200 && response.status < 300) {
      return std::nullopt;
    }
    http::Failure failure;
    failure.http_status = response.status;
    failure.error_code = error_code_of(response);
    if (auto after = response.header("x-amz-retry-after")) {
      failure.retry_after = http::parse_retry_after(*after);
    }
    return failure;
  };

  try {
    return m_retry.execute(send_once, failure_of, idempotent);
  } catch (const http::TransportError& e) {
    std::string hint =
        e.kind() == http::TransportError::Kind::too_large
            ? "check the endpoint (AWS_ENDPOINT_URL or a proxy) answers like AWS"
        : e.kind() == http::TransportError::Kind::connect
            ? "check the network connection, proxy settings (HTTPS_PROXY) and endpoint"
            : "the endpoint did not answer in time; check the network, proxy settings "
              "(HTTPS_PROXY) and endpoint (AWS_ENDPOINT_URL), and the AWS Health Dashboard";
    throw Error(std::string(action), "request to " + url + " failed", e.what(), hint);
  }
}

QueryResult AwsClient::call(std::string_view service, std::string_view action,
                            const QueryParams& params, const CallOptions& options) {
  std::string version = options.version.empty() ? default_version(service) : options.version;
  bool idempotent = options.idempotent;
  if (action == "RunInstances" && params.find("ClientToken") == nullptr) {
    idempotent = false;  // without a token a resend may launch a second fleet
  }
  http::Headers headers = {
      {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
  };
  auto code_of = [&](const http::Response& response) {
    return xml::parse_error(action, response.status, response.body, response.headers).code();
  };
  http::Response response = send(service, action, encode_query_body(action, version, params),
                                 std::move(headers), idempotent, code_of);
  if (response.status < 200 || response.status >= 300) {
    throw xml::parse_error(action, response.status, response.body, response.headers);
  }
  QueryResult result;
  auto doc = xml::parse(response.body);
  if (!doc) {
    throw CloudError(std::string(action), response.status, "MalformedResponse",
                     "response body is not XML", response.header("x-amzn-requestid").value_or(""));
  }
  result.document = std::move(*doc);
  result.request_id = xml::text(result.root(), "requestId");
  if (result.request_id.empty()) {
    result.request_id = xml::text(result.root(), "ResponseMetadata/RequestId");
  }
  if (result.request_id.empty()) {
    result.request_id = response.header("x-amzn-requestid").value_or("");
  }
  result.response = std::move(response);
  return result;
}

nlohmann::json AwsClient::call_json(std::string_view service, std::string_view target,
                                    const nlohmann::json& body, const CallOptions& options) {
  http::Headers headers = {
      {"Content-Type", "application/x-amz-json-1.1"},
      {"X-Amz-Target", std::string(target)},
  };
  std::string action(
      target.substr(target.find('.') == std::string_view::npos ? 0 : target.find('.') + 1));
  http::Response response =
      send(service, action, body.dump(), std::move(headers), options.idempotent, json_error_code);
  if (response.status < 200 || response.status >= 300) {
    throw parse_json_error(target, response);
  }
  nlohmann::json parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (parsed.is_discarded()) {
    throw CloudError(action, response.status, "MalformedResponse", "response body is not JSON",
                     response.header("x-amzn-requestid").value_or(""));
  }
  return parsed;
}

}  // namespace gm::aws
