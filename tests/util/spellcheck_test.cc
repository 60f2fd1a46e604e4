#include "util/spellcheck.h"

#include <gtest/gtest.h>

namespace gm::util {

TEST(Spellcheck, SuggestsCloseVerb) {
  EXPECT_EQ(closest_match("crate", {"create", "ls", "rm"}), "create");
  EXPECT_EQ(closest_match("xyzzy", {"create", "ls", "rm"}), std::nullopt);
  EXPECT_EQ(did_you_mean("sttus", {"status", "start"}), " (did you mean 'status'?)");
}

}  // namespace gm::util
