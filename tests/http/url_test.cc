#include "http/url.h"

#include <gtest/gtest.h>

#include "gm/error.h"

namespace gm::http {
namespace {

TEST(HttpUrl, SplitsAndBuildsAuthority) {
  Url url = parse_url("https://EC2.us-east-1.amazonaws.com:443/a/b?x=1");
  EXPECT_EQ(url.scheme, "https");
  EXPECT_EQ(url.host, "ec2.us-east-1.amazonaws.com");
  EXPECT_EQ(url.path, "/a/b");
  EXPECT_EQ(url.query, "x=1");
  EXPECT_EQ(url.authority(), "ec2.us-east-1.amazonaws.com");
  EXPECT_EQ(parse_url("http://127.0.0.1:8080").authority(), "127.0.0.1:8080");
  EXPECT_EQ(parse_url("http://127.0.0.1:8080").path, "/");
  EXPECT_EQ(parse_url("http://[::1]:9000/").host, "::1");
  EXPECT_EQ(parse_url("http://[::1]:9000/").authority(), "[::1]:9000");
  EXPECT_THROW(parse_url("ftp://x/"), UsageError);
  EXPECT_THROW(parse_url("ec2.amazonaws.com"), UsageError);
  EXPECT_THROW(parse_url("http://h:99999/"), UsageError);
}

TEST(HttpUrl, LoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.4.5.6"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("localhost.example.com"));
  EXPECT_FALSE(is_loopback_host("169.254.169.254"));
}

}  // namespace
}  // namespace gm::http
