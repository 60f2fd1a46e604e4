#include "ssh/forward.h"

#include "gm/error.h"

#include <gtest/gtest.h>

namespace gm::ssh {
namespace {

TEST(ForwardSpecParse, AcceptsTheDocumentedForms) {
  ForwardSpec one = parse_forward_spec("8888");
  EXPECT_EQ(one.local_addr, "127.0.0.1");
  EXPECT_EQ(one.local_port, 8888);
  EXPECT_EQ(one.remote_host, "127.0.0.1");
  EXPECT_EQ(one.remote_port, 8888);

  ForwardSpec three = parse_forward_spec("8080:localhost:80");
  EXPECT_EQ(three.local_addr, "127.0.0.1");
  EXPECT_EQ(three.local_port, 8080);
  EXPECT_EQ(three.remote_host, "localhost");
  EXPECT_EQ(three.remote_port, 80);

  ForwardSpec four = parse_forward_spec("127.0.0.2:0:10.0.0.5:6006");
  EXPECT_EQ(four.local_addr, "127.0.0.2");
  EXPECT_EQ(four.local_port, 0);
  EXPECT_EQ(four.remote_host, "10.0.0.5");

  ForwardSpec v6 = parse_forward_spec("[::1]:9000:[::1]:22");
  EXPECT_EQ(v6.local_addr, "::1");
  EXPECT_EQ(v6.remote_host, "::1");
  EXPECT_EQ(v6.describe(), "[::1]:9000 -> [::1]:22");
}

TEST(ForwardSpecParse, RejectsMalformedSpecsAsUsageErrors) {
  for (const char* text : {"", "x", "0", "65536", "-1", "1:2", "1:h:", ":h:2", "1:h:99999",
                           "a:1:h:2:3", "[::1:1:h:2", "8080::80"}) {
    try {
      parse_forward_spec(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const UsageError& e) {
      EXPECT_EQ(e.exit_code(), 2);
    }
  }
}

TEST(ForwardSpecParse, SuggestsTheWantedPortWhenFree) {
  int port = suggest_free_port("127.0.0.1", 0);
  ASSERT_GT(port, 0);
  EXPECT_EQ(suggest_free_port("127.0.0.1", port), port);
}

}  // namespace
}  // namespace gm::ssh
