#include "util/time.h"

#include <gtest/gtest.h>

namespace gm::util {

TEST(Time, Rfc3339RoundTrip) {
  auto t = parse_rfc3339("2026-11-22T10:04:05Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(rfc3339(*t), "2026-11-22T10:04:05Z");
  EXPECT_EQ(amz_date(*t), "20261122T100405Z");
  EXPECT_TRUE(parse_rfc3339("2026-11-22T10:04:05.123Z"));
  EXPECT_FALSE(parse_rfc3339("yesterday"));
}

TEST(Time, Durations) {
  EXPECT_EQ(parse_duration("1h30m"), std::chrono::seconds(5400));
  EXPECT_EQ(parse_duration("45s"), std::chrono::seconds(45));
  EXPECT_FALSE(parse_duration("30"));
  EXPECT_FALSE(parse_duration("m"));
  EXPECT_EQ(human_duration(std::chrono::seconds(3 * 3600 + 12 * 60)), "3h12m");
}

}  // namespace gm::util
