// THE retry policy: the only retry loop for HTTP in the code base. It classifies one failed
// attempt ({transport error | HTTP status + service error code}) as throttling, transient or
// final, and computes the delay with AWS SDK "standard" mode backoff (2026 values: full jitter,
// 50 ms base for transient and 1 s for throttling errors, 20 s cap, x-amz-retry-after honoured),
// behind a client-side retry quota. Sleeping and randomness are injected so tests can check
// every delay without waiting.
// Source: docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html and the facts file.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "http/transport.h"

namespace gm::http {

/// How a failure should be treated.
enum class RetryClass {
  none,        ///< final: report it
  transient,   ///< server hiccup, connection loss, timeout: retry with the short base
  throttling,  ///< rate limited: retry with the long base
};

/// One failed attempt, as the policy sees it.
struct Failure {
  /// Set when no HTTP response came back.
  std::optional<TransportError::Kind> transport_error;
  int http_status = 0;
  /// Service error code ("RequestLimitExceeded"), empty when unknown.
  std::string error_code;
  /// Server's hint from the x-amz-retry-after header.
  std::optional<std::chrono::milliseconds> retry_after;
};

/// The policy's answer for one failure.
struct RetryDecision {
  bool retry = false;
  std::chrono::milliseconds delay{0};
  RetryClass retry_class = RetryClass::none;
};

/// Numbers of the policy; defaults are the 2026 standard-mode values.
struct RetrySettings {
  int max_attempts = 3;  ///< first try included
  std::chrono::milliseconds transient_base{50};
  std::chrono::milliseconds throttling_base{1000};
  std::chrono::milliseconds max_backoff{20000};
  /// x-amz-retry-after is honoured up to this much beyond the computed delay.
  std::chrono::milliseconds max_retry_after_extra{5000};
  int quota_capacity = 500;
  int transient_cost = 14;
  int throttling_cost = 5;

  /// Defaults, with max_attempts from AWS_MAX_ATTEMPTS when set (1..10).
  static RetrySettings from_env();
};

/// Decides on retries and runs the retry loop. One per client; thread-safe.
class RetryPolicy {
 public:
  using Sleep = std::function<void(std::chrono::milliseconds)>;
  /// Uniform random in [0, 1).
  using Random = std::function<double()>;

  /// Unset \a sleep / \a random: util::sleep_unless_interrupted (a signal ends the wait with
  /// gm::InterruptedError) and a seeded std::mt19937_64.
  explicit RetryPolicy(RetrySettings settings = RetrySettings::from_env(), Sleep sleep = {},
                       Random random = {});

  /// Throttling, transient or final, from the failure alone (capacity errors are final: the
  /// caller should move to another zone or type, not hammer the same one).
  static RetryClass classify(const Failure& failure);

  /// Whether to retry after attempt number \a attempt (1-based) failed with \a failure, and how
  /// long to wait first. A non-idempotent request is only resent when it cannot have been
  /// processed: throttled, or the connection was never made. Consumes retry quota.
  RetryDecision decide(const Failure& failure, int attempt, bool idempotent);

  /// The loop: calls \a send_once(attempt) until it succeeds or decide() says stop. \a failure_of
  /// turns a response into a Failure (nullopt: success). Returns the last response (success or
  /// final failure); rethrows the last TransportError when no response came back.
  Response execute(const std::function<Response(int attempt)>& send_once,
                   const std::function<std::optional<Failure>(const Response&)>& failure_of,
                   bool idempotent);

  /// Quota left (tests, diagnostics).
  int quota() const;
  const RetrySettings& settings() const { return m_settings; }

 private:
  void on_success(int cost_spent);

  RetrySettings m_settings;
  Sleep m_sleep;
  Random m_random;
  mutable std::mutex m_mutex;
  int m_quota;
};

/// Parses an x-amz-retry-after header value (milliseconds); nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value);

}  // namespace gm::http
