#include "util/progress.h"

#include <gtest/gtest.h>

namespace gm::util {
namespace {

TEST(Progress, HumanBytes) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(999), "999 B");
  EXPECT_EQ(human_bytes(1000), "1.0 kB");
  EXPECT_EQ(human_bytes(10485760), "10.5 MB");
  EXPECT_EQ(human_bytes(4'200'000'000ULL), "4.2 GB");
}

TEST(Progress, DescribesBytesRateAndTimeLeft) {
  EXPECT_EQ(Progress::describe(45'000'000, 120'000'000, 3.0),
            "45.0 MB / 120.0 MB (38%), 15.0 MB/s, 5s left");
  // An unknown total: bytes and rate only.
  EXPECT_EQ(Progress::describe(2'000'000, 0, 2.0), "2.0 MB, 1.0 MB/s");
  // Nothing moved yet: no rate to divide by.
  EXPECT_EQ(Progress::describe(0, 5'000, 1.0), "0 B / 5.0 kB (0%)");
  EXPECT_EQ(Progress::describe(1'000'000, 301'000'000, 1.0),
            "1.0 MB / 301.0 MB (0%), 1.0 MB/s, 5m00s left");
}

}  // namespace
}  // namespace gm::util
