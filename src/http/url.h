// A small absolute-URL splitter (scheme://host[:port]/path?query), enough for endpoint checks and
// for deriving the signed Host header. Knows nothing about AWS.
#pragma once

#include <string>
#include <string_view>

namespace gm::http {

/// The parts of an absolute http(s) URL.
struct Url {
  std::string scheme;  ///< lowercase, "http" or "https"
  std::string host;    ///< without brackets for IPv6 literals, lowercase
  int port = 0;        ///< explicit port, or 0 when absent
  std::string path;    ///< "/" when empty
  std::string query;   ///< after '?', without it; empty when absent

  /// Port used on the wire: the explicit one, else 443/80 by scheme.
  int effective_port() const;
  /// host[:port] as the Host header wants it: the port only when it is not the default.
  std::string authority() const;
};

/// Splits \a text; throws gm::UsageError naming the URL when it is not absolute http(s).
Url parse_url(std::string_view text);

/// True for 127.0.0.0/8, ::1 and "localhost": the only hosts plain http may reach.
bool is_loopback_host(std::string_view host);

/// Checks an endpoint URL from configuration (parses as above; plain http only to a loopback
/// host, so signed requests never travel in the clear); returns it without a trailing '/'.
/// \a origin names where it came from ("AWS_ENDPOINT_URL_EC2") for the error.
std::string validate_endpoint(std::string_view url, std::string_view origin);

}  // namespace gm::http
