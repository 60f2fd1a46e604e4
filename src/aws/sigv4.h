// AWS Signature Version 4, in the named stages of the spec (canonical request -> string to sign
// -> signing key -> signature -> Authorization value), on a plain SignableRequest value so the
// signer never depends on the HTTP library (aws-c-auth's "signable"). Each stage is public so the
// conformance test can compare it byte for byte with AWS's vectors.
// Spec: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gm::aws {

struct Credentials;

/// Ordered (name, value) pairs; names may repeat.
using Pairs = std::vector<std::pair<std::string, std::string>>;

/// What the signer needs from a request, and nothing else.
struct SignableRequest {
  std::string method = "POST";
  /// Path as it goes on the wire (before the '?'). The signer normalises it and URI-encodes each
  /// segment once more, which is the "encode twice" rule for non-S3 services: a raw path is
  /// encoded once, an already-encoded one twice (its '%' becomes "%25"), exactly as botocore.
  std::string path = "/";
  /// Query parameters, decoded (the signer encodes them). Use parse_query() for a raw string.
  Pairs query;
  /// Headers in order; repeated names are kept and joined with ',' in the canonical form.
  Pairs headers;
  /// host[:port] used for the Host header when \a headers has none.
  std::string host;
  /// The exact body bytes.
  std::string payload;
  /// Precomputed lowercase hex SHA-256 of the payload (or "UNSIGNED-PAYLOAD"); unset: computed.
  std::optional<std::string> payload_hash;
};

/// Knobs for the cases AWS's newer test-suite format can express; the defaults are what EC2,
/// SSM and STS need.
struct SigningOptions {
  /// Remove "." / ".." segments and merge "//" (false only for S3-style object keys).
  bool normalize_path = true;
  /// Also send the payload hash as X-Amz-Content-SHA256 (and sign it).
  bool add_content_sha256_header = false;
  /// Add the session token after signing, unsigned (a few services want that; EC2 does not).
  bool omit_session_token_from_signature = false;
};

/// Everything sign() computed, kept for -v diagnostics and tests.
struct SigningResult {
  std::string canonical_request;
  std::string string_to_sign;
  std::string authorization;
};

/// RFC 3986 percent-encoding with only A-Za-z0-9-_.~ unescaped (uppercase hex); '/' is kept too
/// when \a keep_slash.
std::string uri_encode(std::string_view bytes, bool keep_slash = false);
/// Percent-decodes \a text ('+' stays '+'; malformed escapes are kept literally).
std::string uri_decode(std::string_view text);
/// Splits "a=1&b&c=" into decoded pairs ("b" gets an empty value).
Pairs parse_query(std::string_view raw);
/// RFC 3986 dot-segment removal plus merging of repeated slashes, as AWS wants for non-S3.
std::string normalize_path(std::string_view path);

/// Stage 1a: "/a%20b/c" from the wire path (normalised unless \a normalize).
std::string canonical_uri(std::string_view path, bool normalize = true);
/// Stage 1b: encoded "k=v" pairs sorted by encoded name, then by encoded value, joined with '&'.
std::string canonical_query_string(const Pairs& query);
/// Stage 1c: the lowercase, sorted names of the headers that get signed, joined with ';'.
std::string signed_headers(const SignableRequest& request);
/// Stage 1: the canonical request of \a request exactly as given (no headers are added here).
std::string canonical_request(const SignableRequest& request, const SigningOptions& options = {});
/// "YYYYMMDD/region/service/aws4_request".
std::string credential_scope(std::chrono::system_clock::time_point time, std::string_view region,
                             std::string_view service);
/// Stage 2: "AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex sha256 of canonical request>".
std::string string_to_sign(std::string_view canonical_request,
                           std::chrono::system_clock::time_point time, std::string_view scope);
/// Stage 3: the raw 32-byte key, HMAC chain "AWS4"+secret -> date (YYYYMMDD) -> region ->
/// service -> "aws4_request".
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);
/// Stage 4: lowercase hex HMAC of the string to sign.
std::string signature(std::string_view signing_key, std::string_view string_to_sign);
/// Stage 5: "AWS4-HMAC-SHA256 Credential=<id>/<scope>, SignedHeaders=<list>, Signature=<hex>".
std::string authorization_header(std::string_view access_key_id, std::string_view scope,
                                 std::string_view signed_headers, std::string_view signature);

/// Signs \a request in place: replaces X-Amz-Date (and X-Amz-Security-Token when the credentials
/// carry one), adds Host when missing, runs every stage and adds Authorization.
SigningResult sign(SignableRequest& request, const Credentials& credentials,
                   std::string_view region, std::string_view service,
                   std::chrono::system_clock::time_point time, const SigningOptions& options = {});

}  // namespace gm::aws
