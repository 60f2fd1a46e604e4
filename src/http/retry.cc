#include "http/retry.h"

#include "gm/error.h"
#include "util/interrupt.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string_view>

namespace gm::http {

namespace {

using std::chrono::milliseconds;

// botocore's standard-mode lists plus EC2's own RequestLimitExceeded (facts file).
constexpr std::array<std::string_view, 14> k_throttling_codes = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
};

constexpr std::array<std::string_view, 9> k_transient_codes = {
    "RequestTimeout",  "RequestTimeoutException", "InternalError",
    "InternalFailure", "ServerInternal",          "ServiceUnavailable",
    "Unavailable",     "InternalServerError",     "PriorRequestNotComplete",
};

// Capacity errors come back as 5xx, so the status rule alone would hot-retry them; EC2's advice
// is to try another zone or type instead, which only the caller can do.
constexpr std::array<std::string_view, 4> k_capacity_codes = {
    "InsufficientInstanceCapacity",
    "InsufficientAddressCapacity",
    "InsufficientHostCapacity",
    "InsufficientVolumeCapacity",
};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view code) {
  return std::find(list.begin(), list.end(), code) != list.end();
}

// Old EC2 documentation prefixes codes with "Client." / "Server.".
std::string_view strip_prefix(std::string_view code) {
  for (std::string_view prefix : {"Client.", "Server."}) {
    if (code.substr(0, prefix.size()) == prefix) {
      return code.substr(prefix.size());
    }
  }
  return code;
}

}  // namespace

RetrySettings RetrySettings::from_env() {
  RetrySettings settings;
  if (const char* text = std::getenv("AWS_MAX_ATTEMPTS"); text != nullptr && *text != '\0') {
    int value = 0;
    std::string_view sv(text);
    auto [ptr, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), value);
    if (ec == std::errc{} && ptr == sv.data() + sv.size() && value >= 1 && value <= 10) {
      settings.max_attempts = value;
    }
  }
  return settings;
}

RetryPolicy::RetryPolicy(RetrySettings settings, Sleep sleep, Random random)
    : m_settings(settings),
      m_sleep(std::move(sleep)),
      m_random(std::move(random)),
      m_quota(settings.quota_capacity) {
  if (!m_sleep) {
    m_sleep = [](milliseconds d) {
      if (!util::sleep_unless_interrupted(d)) {
        throw InterruptedError("waiting to retry a request");
      }
    };
  }
  if (!m_random) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    auto mutex = std::make_shared<std::mutex>();
    m_random = [engine, mutex] {
      std::lock_guard lock(*mutex);
      return std::uniform_real_distribution<double>(0.0, 1.0)(*engine);
    };
  }
}

RetryClass RetryPolicy::classify(const Failure& failure) {
  if (failure.transport_error) {
    return *failure.transport_error == TransportError::Kind::too_large ? RetryClass::none
                                                                       : RetryClass::transient;
  }
  std::string_view code = strip_prefix(failure.error_code);
  if (contains(k_capacity_codes, code)) {
    return RetryClass::none;
  }
  if (contains(k_throttling_codes, code) || failure.http_status == 429) {
    return RetryClass::throttling;
  }
  if (contains(k_transient_codes, code)) {
    return RetryClass::transient;
  }
  switch (failure.http_status) {
    case 500:
    case 502:
    case 503:
    case 504:
      return RetryClass::transient;
    default:
      return RetryClass::none;
  }
}

RetryDecision RetryPolicy::decide(const Failure& failure, int attempt, bool idempotent) {
  RetryDecision decision;
  decision.retry_class = classify(failure);
  if (decision.retry_class == RetryClass::none || attempt >= m_settings.max_attempts) {
    return decision;
  }
  if (!idempotent) {
    // A throttled request was refused before any work; a connection that never opened carried
    // nothing. Anything else (timeout, reset, 5xx) may have launched instances already.
    bool surely_unprocessed =
        decision.retry_class == RetryClass::throttling ||
        (failure.transport_error && *failure.transport_error == TransportError::Kind::connect);
    if (!surely_unprocessed) {
      return decision;
    }
  }
  int cost = decision.retry_class == RetryClass::throttling ? m_settings.throttling_cost
                                                            : m_settings.transient_cost;
  {
    std::lock_guard lock(m_mutex);
    if (m_quota < cost) {
      return decision;  // quota empty: fail fast rather than pile onto a struggling service
    }
    m_quota -= cost;
  }
  milliseconds base = decision.retry_class == RetryClass::throttling ? m_settings.throttling_base
                                                                     : m_settings.transient_base;
  // Cap before jitter (2026 rule), so the expected delay keeps growing up to the cap.
  double exponential = static_cast<double>(base.count()) * std::pow(2.0, attempt - 1);
  double capped = std::min(exponential, static_cast<double>(m_settings.max_backoff.count()));
  double r = std::clamp(m_random(), 0.0, 1.0);
  milliseconds delay(static_cast<long long>(r * capped));
  if (failure.retry_after) {
    delay = std::clamp(*failure.retry_after, delay, delay + m_settings.max_retry_after_extra);
  }
  decision.retry = true;
  decision.delay = delay;
  return decision;
}

void RetryPolicy::on_success(int cost_spent) {
  std::lock_guard lock(m_mutex);
  m_quota = std::min(m_settings.quota_capacity, m_quota + (cost_spent > 0 ? cost_spent : 1));
}

int RetryPolicy::quota() const {
  std::lock_guard lock(m_mutex);
  return m_quota;
}

Response RetryPolicy::execute(
    const std::function<Response(int attempt)>& send_once,
    const std::function<std::optional<Failure>(const Response&)>& failure_of, bool idempotent) {
  int spent = 0;
  for (int attempt = 1;; ++attempt) {
    Failure failure;
    std::optional<Response> response;
    try {
      response = send_once(attempt);
    } catch (const TransportError& e) {
      failure.transport_error = e.kind();
      RetryDecision decision = decide(failure, attempt, idempotent);
      if (!decision.retry) {
        throw;
      }
      spent += decision.retry_class == RetryClass::throttling ? m_settings.throttling_cost
                                                              : m_settings.transient_cost;
      m_sleep(decision.delay);
      continue;
    }
    std::optional<Failure> failed = failure_of(*response);
    if (!failed) {
      on_success(spent);
      return std::move(*response);
    }
    RetryDecision decision = decide(*failed, attempt, idempotent);
    if (!decision.retry) {
      return std::move(*response);
    }
    spent += decision.retry_class == RetryClass::throttling ? m_settings.throttling_cost
                                                            : m_settings.transient_cost;
    m_sleep(decision.delay);
  }
}

std::optional<milliseconds> parse_retry_after(const std::string& value) {
  long long ms = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (ec != std::errc{} || ptr != value.data() + value.size() || ms < 0) {
    return std::nullopt;
  }
  return milliseconds(ms);
}

}  // namespace gm::http
