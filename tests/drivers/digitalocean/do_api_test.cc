// The typed DigitalOcean client against a scripted transport: pagination against the configured
// base, the retry policy's handling of 429 (retry-after, ratelimit-reset) and of a failed create,
// error bodies of both shapes, the key fingerprint, and the token's sources and redaction.
#include "drivers/digitalocean/do_api.h"

#include "gm/error.h"
#include "ssh/keys.h"
#include "support/fake_transport.h"
#include "support/process.h"
#include "support/scoped_env.h"
#include "util/log.h"

#include <gtest/gtest.h>

#include <chrono>

namespace gm::drivers::digitalocean {
namespace {

using std::chrono::milliseconds;

struct Client {
  test::FakeTransport* transport = nullptr;
  std::vector<milliseconds> sleeps;
  std::unique_ptr<DoApi> api;

  Client() {
    auto fake = std::make_unique<test::FakeTransport>();
    transport = fake.get();
    api = std::make_unique<DoApi>("dop_v1_unit", "http://127.0.0.1:9", std::move(fake),
                                  [this](milliseconds d) { sleeps.push_back(d); });
  }
};

std::string size_json(const std::string& slug) {
  return R"({"slug":")" + slug + R"(","vcpus":1,"memory":1024,"disk":25,"price_hourly":0.5,)" +
         R"("price_monthly":1,"regions":["nyc3"],"available":true})";
}

TEST(DoApi, PagesFollowNextAgainstTheConfiguredBase) {
  Client c;
  c.transport->push(200, R"({"sizes":[)" + size_json("a") +
                             R"(],"links":{"pages":{"next":"https://api.digitalocean.com/v2/)"
                             R"(sizes?page=2&per_page=200","last":"https://api.digitalocean.com/)"
                             R"(v2/sizes?page=2&per_page=200"}},"meta":{"total":2}})");
  c.transport->push(200, R"({"sizes":[)" + size_json("b") + R"(],"links":{},"meta":{"total":2}})");
  std::vector<Size> sizes = c.api->sizes();
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[1].slug, "b");
  ASSERT_EQ(c.transport->requests.size(), 2u);
  EXPECT_EQ(c.transport->requests[0].url, "http://127.0.0.1:9/v2/sizes?per_page=200&page=1");
  EXPECT_EQ(c.transport->requests[1].url, "http://127.0.0.1:9/v2/sizes?per_page=200&page=2");
  EXPECT_EQ(c.transport->requests[0].headers.at(0),
            (std::pair<std::string, std::string>{"Authorization", "Bearer dop_v1_unit"}));
}

TEST(DoApi, ThrottlingWaitsForRetryAfterOrTheRateLimitReset) {
  Client c;
  c.transport->push(429, R"({"id":"too_many_requests","message":"API Rate limit exceeded."})",
                    {{"retry-after", "3"}});
  c.transport->push(200, R"({"droplet":{"id":7,"status":"active"}})");
  EXPECT_EQ(c.api->droplet(7)->id, 7);
  ASSERT_EQ(c.sleeps.size(), 1u);
  EXPECT_GE(c.sleeps[0], milliseconds(3000));

  auto reset = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() +
               4;
  c.transport->push(429, "",
                    {{"ratelimit-remaining", "0"}, {"ratelimit-reset", std::to_string(reset)}});
  c.transport->push(200, R"({"droplet":{"id":7,"status":"off"}})");
  EXPECT_EQ(c.api->droplet(7)->status, "off");
  ASSERT_EQ(c.sleeps.size(), 2u);
  EXPECT_GE(c.sleeps[1], milliseconds(2000));
}

TEST(DoApi, ACreateIsNotResentAfterAServerErrorButIsAfterThrottling) {
  Client c;
  c.transport->push(500, R"({"id":"server_error","message":"Unexpected server-side error"})");
  try {
    c.api->create_droplet({.name = "n", .size = "s", .image = "i"});
    FAIL() << "no error";
  } catch (const CloudError& e) {
    EXPECT_EQ(e.http_status(), 500);
    EXPECT_EQ(e.code(), "server_error");
  }
  EXPECT_EQ(c.transport->requests.size(), 1u);
  c.transport->push(429, R"({"id":"too_many_requests","message":"API Rate limit exceeded."})");
  c.transport->push(202, R"({"droplet":{"id":9,"status":"new"},"links":{"actions":[)"
                         R"({"id":3169590176,"rel":"create"}]}})");
  auto [droplet, action] = c.api->create_droplet({.name = "n", .size = "s", .image = "i"});
  EXPECT_EQ(droplet.id, 9);
  EXPECT_EQ(action, 3169590176LL);  // beyond 2^31
  EXPECT_EQ(c.transport->requests.size(), 3u);
}

TEST(DoApi, ErrorBodiesOfBothShapesAndNotFound) {
  Client c;
  c.transport->push(400, R"({"error":"tag name is invalid","messages":null,"root_causes":[]})",
                    {{"x-request-id", "req-1"}});
  try {
    c.api->create_tag("a=b");
    FAIL() << "no error";
  } catch (const CloudError& e) {
    EXPECT_EQ(e.message(), "tag name is invalid");
    EXPECT_EQ(e.request_id(), "req-1");
  }
  c.transport->push(401, R"({"id":"unauthorized","message":"Unable to authenticate you."})");
  try {
    c.api->sizes();
    FAIL() << "no error";
  } catch (const CloudError& e) {
    EXPECT_NE(e.hint().find("DIGITALOCEAN_ACCESS_TOKEN"), std::string::npos);
  }
  c.transport->push(404, R"({"id":"not_found","message":"gone"})");
  EXPECT_FALSE(c.api->delete_droplet(5));
}

TEST(DoApi, KeyFingerprintIsOpenSshsMd5) {
  testing::TempDir dir;
  std::filesystem::path key = dir.path() / "id_ed25519";
  ssh::ensure_key_pair(key, "test");
  testing::CaptureResult r =
      testing::run_capture({"ssh-keygen", "-E", "md5", "-lf", key.string() + ".pub"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string expected = r.out.substr(r.out.find("MD5:") + 4, 47);
  EXPECT_EQ(key_fingerprint(testing::read_text(key.string() + ".pub")), expected);
}

TEST(DoApi, TokenFromDoctlsConfigContextAndRedacted) {
  testing::TempDir dir;
  test::EnvVar env("DIGITALOCEAN_ACCESS_TOKEN", "");
  test::EnvVar xdg("XDG_CONFIG_HOME", dir.path().string());
  EXPECT_FALSE(find_token().has_value());
  EXPECT_THROW(access_token(), Error);
  std::filesystem::create_directories(dir.path() / "doctl");
  testing::write_text(dir.path() / "doctl/config.yaml",
                      "access-token: dop_v1_default_one\ncontext: Work\nauth-contexts:\n"
                      "  work: dop_v1_work_context_token\n");
  EXPECT_EQ(access_token(), "dop_v1_work_context_token");
  EXPECT_EQ(util::redact("token dop_v1_work_context_token here").find("work_context"),
            std::string::npos);
  test::EnvVar set("DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_from_the_environment");
  EXPECT_EQ(access_token(), "dop_v1_from_the_environment");
}

}  // namespace
}  // namespace gm::drivers::digitalocean
