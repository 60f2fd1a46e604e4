#include "http/retry.h"

#include <gtest/gtest.h>

#include <vector>

namespace gm::http {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

Failure status(int http_status, std::string code = {}) {
  Failure f;
  f.http_status = http_status;
  f.error_code = std::move(code);
  return f;
}

Failure transport(TransportError::Kind kind) {
  Failure f;
  f.transport_error = kind;
  return f;
}

// A policy whose random source returns \a r and whose sleeps are recorded.
struct Harness {
  explicit Harness(double r, RetrySettings settings = {}) : random(r) {
    policy = std::make_unique<RetryPolicy>(
        settings, [this](milliseconds d) { sleeps.push_back(d); }, [this] { return random; });
  }
  double random;
  std::vector<milliseconds> sleeps;
  std::unique_ptr<RetryPolicy> policy;
};

TEST(RetryPolicy, ClassifiesThrottlingTransientAndFinal) {
  EXPECT_EQ(RetryPolicy::classify(status(503, "RequestLimitExceeded")), RetryClass::throttling);
  EXPECT_EQ(RetryPolicy::classify(status(400, "ThrottlingException")), RetryClass::throttling);
  EXPECT_EQ(RetryPolicy::classify(status(400, "Client.RequestLimitExceeded")),
            RetryClass::throttling);
  EXPECT_EQ(RetryPolicy::classify(status(429)), RetryClass::throttling);
  EXPECT_EQ(RetryPolicy::classify(status(500, "InternalError")), RetryClass::transient);
  EXPECT_EQ(RetryPolicy::classify(status(400, "RequestTimeout")), RetryClass::transient);
  EXPECT_EQ(RetryPolicy::classify(status(502)), RetryClass::transient);
  EXPECT_EQ(RetryPolicy::classify(status(504)), RetryClass::transient);
  EXPECT_EQ(RetryPolicy::classify(transport(TransportError::Kind::io)), RetryClass::transient);
  EXPECT_EQ(RetryPolicy::classify(transport(TransportError::Kind::timeout)), RetryClass::transient);
  EXPECT_EQ(RetryPolicy::classify(status(400, "InvalidParameterValue")), RetryClass::none);
  EXPECT_EQ(RetryPolicy::classify(status(401, "AuthFailure")), RetryClass::none);
  EXPECT_EQ(RetryPolicy::classify(status(404)), RetryClass::none);
  // Capacity errors arrive as 5xx but must not be hot-retried in the same zone.
  EXPECT_EQ(RetryPolicy::classify(status(500, "InsufficientInstanceCapacity")), RetryClass::none);
}

TEST(RetryPolicy, FullJitterStaysWithinExponentialBoundsPerBase) {
  for (double r : {0.0, 0.25, 0.5, 0.999}) {
    Harness h(r);
    for (int attempt = 1; attempt <= 2; ++attempt) {
      RetryDecision transient = h.policy->decide(status(500), attempt, true);
      ASSERT_TRUE(transient.retry);
      double bound = 50.0 * (1 << (attempt - 1));
      EXPECT_EQ(transient.delay, milliseconds(static_cast<long long>(r * bound)));
      EXPECT_LE(transient.delay.count(), bound);

      RetryDecision throttled =
          h.policy->decide(status(503, "RequestLimitExceeded"), attempt, true);
      ASSERT_TRUE(throttled.retry);
      double tbound = 1000.0 * (1 << (attempt - 1));
      EXPECT_EQ(throttled.delay, milliseconds(static_cast<long long>(r * tbound)));
    }
  }
}

TEST(RetryPolicy, RealRandomDelaysAreSpreadBetweenZeroAndTheBound) {
  RetrySettings settings;
  settings.quota_capacity = 1'000'000;  // this test is about jitter, not the quota
  RetryPolicy policy(settings, [](milliseconds) {});
  milliseconds lowest = 1h;
  milliseconds highest = 0ms;
  for (int i = 0; i < 200; ++i) {
    RetryDecision d = policy.decide(status(503, "Throttling"), 2, true);
    ASSERT_TRUE(d.retry);
    lowest = std::min(lowest, d.delay);
    highest = std::max(highest, d.delay);
    EXPECT_GE(d.delay, 0ms);
    EXPECT_LE(d.delay, 2000ms);
  }
  EXPECT_LT(lowest, 500ms);    // full jitter reaches near zero...
  EXPECT_GT(highest, 1500ms);  // ...and near the bound
}

TEST(RetryPolicy, CapAppliesBeforeJitter) {
  RetrySettings settings;
  settings.max_attempts = 10;
  Harness h(0.999, settings);
  RetryDecision d = h.policy->decide(status(503, "Throttling"), 8, true);  // 1 s * 2^7 = 128 s
  ASSERT_TRUE(d.retry);
  EXPECT_EQ(d.delay, milliseconds(19980));
  EXPECT_LE(d.delay, settings.max_backoff);
}

TEST(RetryPolicy, RetryAfterIsHonouredWithinFiveSecondsOfTheBackoff) {
  Harness h(0.5);
  Failure f = status(503, "SlowDown");
  f.retry_after = 3000ms;
  EXPECT_EQ(h.policy->decide(f, 1, true).delay, 3000ms);  // inside [500 ms, 5500 ms]
  f.retry_after = 60000ms;
  EXPECT_EQ(h.policy->decide(f, 1, true).delay, 5500ms);  // clamped to backoff + 5 s
  f.retry_after = 1ms;
  EXPECT_EQ(h.policy->decide(f, 1, true).delay, 500ms);  // never below the backoff
  EXPECT_EQ(parse_retry_after("1500"), 1500ms);
  EXPECT_FALSE(parse_retry_after("soon").has_value());
}

TEST(RetryPolicy, StopsAtMaxAttempts) {
  Harness h(0.5);
  EXPECT_TRUE(h.policy->decide(status(500), 1, true).retry);
  EXPECT_TRUE(h.policy->decide(status(500), 2, true).retry);
  EXPECT_FALSE(h.policy->decide(status(500), 3, true).retry);

  int calls = 0;
  Response last = h.policy->execute(
      [&](int) {
        ++calls;
        return Response{503, {}, "busy"};
      },
      [](const Response& r) -> std::optional<Failure> { return status(r.status); }, true);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(last.status, 503);
  EXPECT_EQ(h.sleeps.size(), 2u);
}

TEST(RetryPolicy, NonIdempotentRequestsAreNotResentAfterAmbiguousFailures) {
  Harness h(0.5);
  EXPECT_FALSE(h.policy->decide(status(500, "InternalError"), 1, false).retry);
  EXPECT_FALSE(h.policy->decide(transport(TransportError::Kind::timeout), 1, false).retry);
  EXPECT_FALSE(h.policy->decide(transport(TransportError::Kind::io), 1, false).retry);
  // Throttled or never connected: the server surely did nothing.
  EXPECT_TRUE(h.policy->decide(status(503, "RequestLimitExceeded"), 1, false).retry);
  EXPECT_TRUE(h.policy->decide(transport(TransportError::Kind::connect), 1, false).retry);

  int calls = 0;
  EXPECT_THROW(h.policy->execute(
                   [&](int) -> Response {
                     ++calls;
                     throw TransportError(TransportError::Kind::timeout, "u", "timed out");
                   },
                   [](const Response&) { return std::optional<Failure>(); }, false),
               TransportError);
  EXPECT_EQ(calls, 1);
}

TEST(RetryPolicy, ExecuteRetriesTransportErrorsThenSucceeds) {
  Harness h(0.5);
  int calls = 0;
  Response r = h.policy->execute(
      [&](int attempt) -> Response {
        ++calls;
        if (attempt == 1) {
          throw TransportError(TransportError::Kind::io, "u", "reset");
        }
        return Response{200, {}, "ok"};
      },
      [](const Response& resp) -> std::optional<Failure> {
        return resp.status == 200 ? std::nullopt : std::optional<Failure>(status(resp.status));
      },
      true);
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(h.sleeps.size(), 1u);
  EXPECT_EQ(h.sleeps[0], 25ms);
}

TEST(RetryPolicy, QuotaRunsOutAndRefillsOnSuccess) {
  RetrySettings settings;
  settings.quota_capacity = 20;
  Harness h(0.5, settings);
  EXPECT_TRUE(h.policy->decide(status(500), 1, true).retry);                // 20 - 14 = 6
  EXPECT_FALSE(h.policy->decide(status(500), 1, true).retry);               // 6 < 14: fail fast
  EXPECT_TRUE(h.policy->decide(status(503, "Throttling"), 1, true).retry);  // 6 - 5 = 1
  EXPECT_EQ(h.policy->quota(), 1);
  h.policy->execute(
      [](int) {
        return Response{200, {}, ""};
      },
      [](const Response&) { return std::optional<Failure>(); }, true);
  EXPECT_EQ(h.policy->quota(), 2);
}

}  // namespace
}  // namespace gm::http
