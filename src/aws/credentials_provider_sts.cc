// STS AssumeRole: trades source credentials for a role's temporary ones (Query API, XML).
// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/xml.h"
#include "gm/error.h"
#include "util/log.h"
#include "util/time.h"

namespace gm::aws {

Credentials assume_role(const Credentials& source, const AssumeRoleRequest& request,
                        const ProviderOptions& options) {
  ClientOptions client_options;
  client_options.region = request.region.empty() ? "us-east-1" : request.region;
  client_options.credentials = [source] { return source; };
  if (options.make_transport) {
    client_options.transport = options.make_transport();
  }
  client_options.clock = options.clock;
  AwsClient client(std::move(client_options));

  QueryParams params;
  params.set("RoleArn", request.role_arn);
  params.set("RoleSessionName", request.session_name);
  if (!request.external_id.empty()) {
    params.set("ExternalId", request.external_id);
  }
  if (request.duration) {
    params.set("DurationSeconds", static_cast<std::int64_t>(request.duration->count()));
  }
  QueryResult result = client.call("sts", "AssumeRole", params);
  pugi::xml_node creds = xml::find(result.root(), "AssumeRoleResult/Credentials");
  Credentials out;
  out.secret_access_key = xml::text(creds, "SecretAccessKey");
  util::add_secret(out.secret_access_key);
  out.session_token = xml::text(creds, "SessionToken");
  util::add_secret(out.session_token);
  out.access_key_id = xml::text(creds, "AccessKeyId");
  if (out.access_key_id.empty() || out.secret_access_key.empty() || out.session_token.empty()) {
    throw Error("AssumeRole " + request.role_arn, "response lacks credentials", {},
                "check the STS endpoint (AWS_ENDPOINT_URL_STS)");
  }
  if (auto expiration = xml::find_text(creds, "Expiration")) {
    out.expiration = util::parse_rfc3339(*expiration);
  }
  out.source = "role " + request.role_arn;
  return out;
}

}  // namespace gm::aws
