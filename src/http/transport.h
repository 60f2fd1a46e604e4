// The HTTP seam: a Request goes in, a Response comes out. Everything above this header (the AWS
// client, the credentials providers) talks to a Transport, so tests can swap in a fake and the
// real one (curl_transport.h) stays the only place that knows libcurl.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gm::http {

/// Header list in wire order; names keep their case and may repeat.
using Headers = std::vector<std::pair<std::string, std::string>>;

/// One HTTP request, fully formed (signed if it needs to be).
struct Request {
  std::string method = "GET";  ///< "GET", "POST", "PUT", ...
  std::string url;             ///< absolute URL, already percent-encoded
  Headers headers;             ///< sent as given, in order
  std::string body;            ///< sent as is (empty: no body)
  /// Per-request total timeout; unset: the transport's default.
  std::optional<std::chrono::milliseconds> timeout;
};

/// One HTTP response. Any status is a Response; only failures to get one throw.
struct Response {
  int status = 0;
  Headers headers;  ///< names lowercased, in wire order
  std::string body;

  /// First value of the (lowercase) header \a name, if present.
  std::optional<std::string> header(std::string_view name) const;
};

/// A request that got no HTTP response at all: DNS, connect, TLS, reset or timeout.
/// what() carries the transport's own error text (curl's error buffer).
class TransportError : public std::runtime_error {
 public:
  enum class Kind {
    connect,    ///< nothing reached the server (DNS, refused, TLS handshake): safe to resend
    timeout,    ///< the request may have been processed: ambiguous
    io,         ///< reset or broken mid-exchange: ambiguous
    too_large,  ///< the response exceeded the transport's size limit: final
  };
  TransportError(Kind kind, std::string url, const std::string& text)
      : std::runtime_error(text), m_kind(kind), m_url(std::move(url)) {}
  /// How far the exchange got, which decides whether a non-idempotent call may be resent.
  Kind kind() const { return m_kind; }
  /// The URL that failed (no secrets: credentials never travel in URLs here).
  const std::string& url() const { return m_url; }

 private:
  Kind m_kind;
  std::string m_url;
};

/// Sends requests. Implementations are not required to be thread-safe: use one per thread.
class Transport {
 public:
  virtual ~Transport() = default;
  /// Performs \a request; returns any HTTP response, throws TransportError otherwise.
  virtual Response send(const Request& request) = 0;
};

}  // namespace gm::http
