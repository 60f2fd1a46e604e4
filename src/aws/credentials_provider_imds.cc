// EC2 instance metadata, IMDSv2 only: PUT a session token, then read the role's credentials.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html
// Off the instance the token PUT fails fast (1 s), which makes this the last link of the chain.
#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "aws/credentials.h"
#include "aws/shared_config.h"
#include "gm/error.h"
#include "http/curl_transport.h"
#include "util/log.h"
#include "util/time.h"

namespace gm::aws {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds k_token_timeout{1000};
constexpr milliseconds k_read_timeout{2000};

class ImdsProvider : public CredentialsProvider {
 public:
  explicit ImdsProvider(ProviderOptions options) : m_options(std::move(options)) {}

  std::string description() const override {
    return "EC2 instance metadata (IMDSv2 at " + endpoint() + ")";
  }

  std::optional<Credentials> load() override {
    if (std::string disabled = env("AWS_EC2_METADATA_DISABLED").value_or("");
        lower(disabled) == "true") {
      return std::nullopt;
    }
    std::unique_ptr<http::Transport> transport;
    if (m_options.make_transport) {
      transport = m_options.make_transport();
    } else {
      http::CurlOptions curl = http::CurlOptions::from_env();
      curl.connect_timeout = k_token_timeout;
      transport = std::make_unique<http::CurlTransport>(curl);
    }

    http::Request token_request;
    token_request.method = "PUT";
    token_request.url = endpoint() + "/latest/api/token";
    token_request.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
    token_request.timeout = k_token_timeout;
    http::Response token;
    try {
      token = transport->send(token_request);
    } catch (const http::TransportError& e) {
      util::debug(std::string("imds: no instance metadata service: ") + e.what());
      return std::nullopt;
    }
    if (token.status != 200 || token.body.empty()) {
      util::debug("imds: token request answered HTTP " + std::to_string(token.status));
      return std::nullopt;
    }
    util::add_secret(token.body);

    std::string base = endpoint() + "/latest/meta-data/iam/security-credentials/";
    http::Response roles = get(*transport, base, token.body);
    if (roles.status == 404) {
      return std::nullopt;  // an instance without an instance profile
    }
    std::string role = roles.body.substr(0, roles.body.find('\n'));
    while (!role.empty() && std::isspace(static_cast<unsigned char>(role.back())) != 0) {
      role.pop_back();
    }
    if (roles.status != 200 || role.empty()) {
      throw Error("EC2 instance metadata", "listing the instance role failed",
                  "HTTP " + std::to_string(roles.status));
    }
    http::Response creds = get(*transport, base + role, token.body);
    nlohmann::json doc = nlohmann::json::parse(creds.body, nullptr, false);
    auto field = [&](const char* key) -> std::string {
      return doc.is_object() && doc.contains(key) && doc[key].is_string()
                 ? doc[key].get<std::string>()
                 : std::string{};
    };
    Credentials out;
    out.secret_access_key = field("SecretAccessKey");
    util::add_secret(out.secret_access_key);
    out.session_token = field("Token");
    util::add_secret(out.session_token);
    out.access_key_id = field("AccessKeyId");
    if (creds.status != 200 || field("Code") != "Success" || out.access_key_id.empty() ||
        out.secret_access_key.empty()) {
      throw Error("EC2 instance metadata", "role \"" + role + "\" returned no credentials",
                  "HTTP " + std::to_string(creds.status) + " code \"" + field("Code") + "\"");
    }
    out.expiration = util::parse_rfc3339(field("Expiration"));
    out.source = "instance role " + role;
    return out;
  }

 private:
  static std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  }

  std::string endpoint() const {
    std::string url = env("AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or("http://169.254.169.254");
    while (!url.empty() && url.back() == '/') {
      url.pop_back();
    }
    return url;
  }

  static http::Response get(http::Transport& transport, const std::string& url,
                            const std::string& token) {
    http::Request request;
    request.method = "GET";
    request.url = url;
    request.headers = {{"X-aws-ec2-metadata-token", token}};
    request.timeout = k_read_timeout;
    try {
      return transport.send(request);
    } catch (const http::TransportError& e) {
      throw Error("EC2 instance metadata", "request failed", e.what());
    }
  }

  ProviderOptions m_options;
};

}  // namespace

std::unique_ptr<CredentialsProvider> make_imds_provider(ProviderOptions options) {
  return std::make_unique<ImdsProvider>(std::move(options));
}

}  // namespace gm::aws
