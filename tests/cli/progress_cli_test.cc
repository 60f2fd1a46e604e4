// Long transfers say what they move: `scp` without a terminal prints plain progress lines on
// stderr (a live line is for terminals), nothing on stdout, and nothing at all with -q.
#include "cli/machine_env.h"
#include "util/crypto.h"

#include <gmock/gmock.h>

namespace gm::testing {
namespace {

using ::testing::HasSubstr;

TEST(ProgressCli, ScpShowsPlainProgressOnStderrOnly) {
  CliMachine machine;
  TempDir dir("gm-progress");
  write_text(dir / "data.bin", util::random_bytes(3'000'000));
  std::string remote = (machine.remote_home() / "data.bin").string();

  CaptureResult up = machine.gm({"scp", (dir / "data.bin").string(), "gpu1:" + remote});
  ASSERT_EQ(up.status, 0) << up.err;
  EXPECT_EQ(up.out, "");
  EXPECT_THAT(up.err, HasSubstr("uploading " + (dir / "data.bin").string() + " (3.0 MB) ..."));
  EXPECT_THAT(up.err, HasSubstr("uploading " + (dir / "data.bin").string() + ": 3.0 MB in "));
  EXPECT_THAT(up.err, ::testing::Not(HasSubstr("\r")));  // no live line without a terminal

  CaptureResult down =
      machine.gm({"--format", "json", "scp", "gpu1:" + remote, (dir / "back.bin").string()});
  ASSERT_EQ(down.status, 0) << down.err;
  EXPECT_TRUE(nlohmann::json::parse(down.out).is_object()) << down.out;  // stdout: JSON only
  EXPECT_THAT(down.err, HasSubstr("downloading gpu1:" + remote + " (3.0 MB) ..."));
  EXPECT_THAT(down.err, HasSubstr("downloading gpu1:" + remote + ": 3.0 MB in "));

  // A directory: its total is known up front too.
  std::filesystem::create_directories(dir / "tree" / "sub");
  write_text(dir / "tree" / "a", std::string(600'000, 'a'));
  write_text(dir / "tree" / "sub" / "b", std::string(400'000, 'b'));
  CaptureResult tree = machine.gm(
      {"scp", "-r", (dir / "tree").string(), "gpu1:" + (machine.remote_home() / "tree").string()});
  ASSERT_EQ(tree.status, 0) << tree.err;
  EXPECT_THAT(tree.err, HasSubstr("(1.0 MB) ..."));

  CaptureResult quiet = machine.gm({"-q", "scp", (dir / "data.bin").string(), "gpu1:" + remote});
  ASSERT_EQ(quiet.status, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
  EXPECT_EQ(quiet.out, "");
}

}  // namespace
}  // namespace gm::testing
