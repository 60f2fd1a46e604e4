// The real Transport, on libcurl. No curl type leaks out of this header (Transmission's web.h).
// Thread safety: a CurlTransport owns ONE easy handle that it reuses so connections stay alive
// between calls; use one transport per thread. libcurl's global init runs once per process.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "http/transport.h"

namespace gm::http {

/// Connection settings.
struct CurlOptions {
  std::chrono::milliseconds connect_timeout{5000};
  /// Whole-request limit unless the Request sets its own.
  std::chrono::milliseconds total_timeout{60000};
  /// A request fails when no byte moved for this long (an endpoint that accepts and never
  /// answers, or stalls mid-body).
  std::chrono::milliseconds stall_timeout{15000};
  /// Largest response body kept; a bigger one fails the request (no API answer is this big).
  std::size_t max_body_bytes = 32 * 1024 * 1024;
  /// CA bundle file; unset: the system store.
  std::optional<std::string> ca_bundle;
  /// Defaults, with ca_bundle from AWS_CA_BUNDLE. Proxies come from HTTPS_PROXY / NO_PROXY,
  /// which libcurl reads itself.
  static CurlOptions from_env();
};

/// libcurl Transport with a reused (keep-alive) handle. TLS peer and host verification are
/// always on; only http and https are allowed, and redirects are not followed. A signal
/// (util/interrupt.h) aborts a request in progress with gm::InterruptedError.
class CurlTransport : public Transport {
 public:
  explicit CurlTransport(CurlOptions options = CurlOptions::from_env());
  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  /// Performs \a request; throws TransportError with curl's error text when no response came.
  Response send(const Request& request) override;

  /// New connections this transport has opened so far (keep-alive shows as fewer than calls).
  long connections_opened() const { return m_connections_opened; }

 private:
  struct Handle;
  CurlOptions m_options;
  std::unique_ptr<Handle> m_handle;
  long m_connections_opened = 0;
};

}  // namespace gm::http
