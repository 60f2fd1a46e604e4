// Repository mirrors: which URLs are accepted, what the scripts get, what a machine keeps.
#include "provision/mirrors.h"
#include "provision/plan.h"

#include "gm/error.h"

#include <gtest/gtest.h>

namespace gm::provision {
namespace {

TEST(Mirrors, HttpAndHttpsUrlsAreAcceptedWithoutTheirTrailingSlash) {
  EXPECT_EQ(
      check_mirror_url("--docker-mirror", "https://artifactory.example.com/artifactory/docker/"),
      "https://artifactory.example.com/artifactory/docker");
  EXPECT_EQ(check_mirror_url("--cuda-mirror", "http://127.0.0.1:8081/repository/cuda-remote"),
            "http://127.0.0.1:8081/repository/cuda-remote");
  EXPECT_EQ(check_mirror_url("--cuda-mirror", "https://nexus.example.com/a%20b/x-y_z~1+2=3,4"),
            "https://nexus.example.com/a%20b/x-y_z~1+2=3,4");
}

TEST(Mirrors, UrlsTheScriptsCannotUseSafelyAreRefusedNamingTheFlag) {
  for (const char* bad :
       {"ftp://mirror.example.com/docker", "mirror.example.com/docker", "https://", "https:///path",
        "https://mirror.example.com/$(reboot)", "https://m.example.com/a b",
        "https://m.example.com/x;reboot", "https://m.example.com/x'y", "https://m.example.com/x\"y",
        "https://m.example.com/`id`", "https://m.example.com/a|b", "https://m.example.com/a#b",
        "https://m.example.com/a&b", "https://m.example.com/a\\b", "https://m.example.com/a\nb"}) {
    SCOPED_TRACE(bad);
    try {
      check_mirror_url("--toolkit-mirror", bad);
      FAIL();
    } catch (const UsageError& e) {
      EXPECT_TRUE(e.subject().starts_with("--toolkit-mirror ")) << e.subject();
      EXPECT_FALSE(e.hint().empty());
    }
  }
}

TEST(Mirrors, CredentialsInTheUrlAreRefusedWithoutRepeatingThem) {
  try {
    check_mirror_url("--docker-mirror", "https://bob:s3cret@artifactory.example.com/docker");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(e.problem().find("credentials"), std::string::npos);
    EXPECT_EQ(e.subject(), "--docker-mirror");
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos);
    EXPECT_EQ(e.hint().find("s3cret"), std::string::npos);
    EXPECT_NE(e.hint().find("auth.conf"), std::string::npos);
  }
}

TEST(Mirrors, ScriptsGetTheMirrorAndTheVendorItStandsFor) {
  std::map<std::string, std::string> env;
  add_mirror_env({"http://127.0.0.1:9/docker", "", ""}, env);
  EXPECT_EQ(env.at("GM_DOCKER_REPO"), "http://127.0.0.1:9/docker");
  EXPECT_EQ(env.at("GM_DOCKER_UPSTREAM"), k_docker_upstream);
  EXPECT_EQ(env.at("GM_CUDA_REPO"), k_cuda_upstream);
  EXPECT_EQ(env.at("GM_TOOLKIT_REPO"), k_toolkit_upstream);
  EXPECT_EQ(env.at("GM_TOOLKIT_UPSTREAM"), k_toolkit_upstream);
}

Facts t4_on_debian() {
  nlohmann::json pci = {{{"slot", "0000:00:1e.0"}, {"device", "0x1eb8"}, {"class", "0x030200"}}};
  return parse_facts({{"os", {{"id", "debian"}, {"version_id", "12"}}}, {"pci", pci}});
}

TEST(Mirrors, ThePlanPassesThemOnAndTheDryRunShowsThem) {
  Overrides o;
  o.mirrors.cuda = "https://nexus.example.com/cuda";
  Plan p = plan_for(t4_on_debian(), o);
  EXPECT_EQ(p.env.at("GM_CUDA_REPO"), "https://nexus.example.com/cuda");
  EXPECT_EQ(p.env.at("GM_DOCKER_REPO"), k_docker_upstream);
  const std::string text = render_plan(p);
  EXPECT_NE(text.find("from https://nexus.example.com/cuda"), std::string::npos) << text;
  o.mirrors.docker = "https://m.example.com/$(reboot)";
  EXPECT_THROW(plan_for(t4_on_debian(), o), UsageError);
}

TEST(Mirrors, TheMachineKeepsThemApartFromTheDriverChoices) {
  Overrides kept;
  kept.driver_branch = 580;
  kept.mirrors.docker = "https://m.example.com/docker";
  const nlohmann::json doc = driver_overrides_to_json(kept);
  EXPECT_EQ(doc, (nlohmann::json{{"driver_branch", 580},
                                 {"docker_mirror", "https://m.example.com/docker"}}));
  EXPECT_EQ(driver_overrides_from_json(doc).mirrors, kept.mirrors);

  // A run that names a driver choice keeps the machine's mirrors...
  Overrides branch;
  branch.driver_flavour = DriverFlavour::proprietary;
  Overrides a = driver_overrides_from_json(doc, branch);
  EXPECT_FALSE(a.driver_branch);
  EXPECT_EQ(a.mirrors.docker, "https://m.example.com/docker");
  // ...and one that names a mirror keeps its driver choices, the named mirrors replacing the kept.
  Overrides mirror;
  mirror.mirrors.toolkit = "https://m.example.com/nvidia";
  Overrides b = driver_overrides_from_json(doc, mirror);
  EXPECT_EQ(b.driver_branch, 580);
  EXPECT_EQ(b.mirrors, (Mirrors{"", "", "https://m.example.com/nvidia"}));
}

}  // namespace
}  // namespace gm::provision
