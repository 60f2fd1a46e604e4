// `probe --container` pulls a missing image before it runs, with the pull's progress on stderr
// (as `jupyter` does): against a real dockerd on a loopback generic machine. No registry can be
// reached here, so the machine's curl plays the Engine API's pull stream and makes the image
// from the fixture's busybox one; the image names a loopback registry, so a pull that was not
// made beforehand fails inside `docker run` without leaving this host.
#include "cli/machine_env.h"
#include "support/dockerd.h"

#include <gmock/gmock.h>

namespace gm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* k_image = "127.0.0.1:1/gm-pulled:test";

// The machine's curl: the Engine API's pull stream; the image is there afterwards.
std::string curl_stub(const std::filesystem::path& dir) {
  return "#!/bin/bash\necho \"$*\" >>" + (dir / "curl.log").string() + k_engine_pull_stream +
         "docker tag " + DockerdFixture::k_image + " " + k_image + "\n";
}

TEST(ProbePullCli, AMissingImageIsPulledWithItsProgressBeforeTheContainerRuns) {
  if (std::optional<std::string> why = DockerdFixture::unavailable()) {
    GTEST_SKIP() << *why;
  }
  DockerdFixture docker;
  TempDir tools("gm-probe-pull");
  write_text(tools / "curl", curl_stub(tools.path()), 0755);
  CliMachine machine("gpu1", tools.path().string() + ":" + docker.client_dir().string() +
                                 ":/usr/bin:/bin:/usr/sbin:/sbin");
  std::vector<std::string> probe = {"--format",    "json",    "probe", machine.name(),
                                    "--container", "--image", k_image};

  CaptureResult r = machine.gm(probe);
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out << r.err;  // progress stays off stdout
  std::string pulling = std::string("pulling ") + k_image + " on gpu1";
  EXPECT_THAT(r.err, HasSubstr(pulling + " ..."));
  EXPECT_THAT(r.err, HasSubstr(pulling + ": 5.0 MB in "));
  EXPECT_THAT(r.err, Not(HasSubstr("\r")));  // plain lines without a terminal
  EXPECT_THAT(read_text(tools / "curl.log"),
              HasSubstr(std::string("/images/create?fromImage=") + k_image));
  // The container ran the pulled image (this dockerd has no GPUs, so `--gpus all` fails there),
  // rather than pulling it itself.
  std::string container = doc.at("container").dump();
  EXPECT_THAT(container, HasSubstr("docker run --gpus all failed"));
  EXPECT_THAT(container, Not(HasSubstr("Unable to find image")));

  // Present now: nothing to pull, nothing said about it.
  CaptureResult again = machine.gm(probe);
  EXPECT_TRUE(nlohmann::json::parse(again.out, nullptr, false).is_object()) << again.err;
  EXPECT_THAT(again.err, Not(HasSubstr("pulling")));

  // -q: pulled again, silently.
  ASSERT_EQ(docker.docker({"rmi", k_image}).status, 0);
  probe.insert(probe.begin(), "-q");
  CaptureResult quiet = machine.gm(probe);
  EXPECT_TRUE(nlohmann::json::parse(quiet.out, nullptr, false).is_object()) << quiet.err;
  EXPECT_THAT(quiet.err, Not(HasSubstr("pulling")));
  EXPECT_EQ(docker.docker({"image", "inspect", k_image}).status, 0);
}

}  // namespace
}  // namespace gm::testing
