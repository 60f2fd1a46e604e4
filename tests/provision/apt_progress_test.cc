// apt's status lines become a progress text, and the provisioner's output handling stays bounded.
#include "provision/apt_progress.h"
#include "provision/provisioner.h"
#include "provision/step_error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gm::provision {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(AptProgress, NeedToGetReadsApt26SizesWithAndWithoutACachedPart) {
  EXPECT_EQ(AptProgress::need_to_get("Need to get 21.4 kB of archives."), 21400u);
  EXPECT_EQ(AptProgress::need_to_get("Need to get 312 MB of archives."), 312000000u);
  EXPECT_EQ(AptProgress::need_to_get("Need to get 12.3 MB/312 MB of archives."), 12300000u);
  EXPECT_EQ(AptProgress::need_to_get("Need to get 1,024 B of archives."), 1024u);
  EXPECT_EQ(AptProgress::need_to_get("Need to get 0 B of archives."), 0u);
  EXPECT_FALSE(AptProgress::need_to_get("Need to get lots of archives."));
  EXPECT_FALSE(AptProgress::need_to_get("Need to get 5 parsecs of archives."));
  EXPECT_FALSE(AptProgress::need_to_get("Get:1 http://deb.debian.org/debian x [21.4 kB]"));
}

// The lines real apt 2.6 (Debian 12) printed for `apt-get -q -o APT::Status-Fd=1`.
TEST(AptProgress, DownloadShowsBytesOfTheAnnouncedTotalAndHidesTheStatusLines) {
  AptProgress apt;
  EXPECT_FALSE(apt.read("Need to get 312 MB of archives."));
  EXPECT_FALSE(apt.text());
  EXPECT_TRUE(apt.read("dlstatus:1:0.0000:Retrieving file 1 of 12"));
  EXPECT_THAT(*apt.text(), StartsWith("downloading packages: 0 B / 312.0 MB (0%)"));
  EXPECT_FALSE(
      apt.read("Get:1 http://deb.debian.org/debian bookworm/main amd64 cowsay all "
               "3.03+dfsg2-8 [21.4 kB]"));
  EXPECT_TRUE(apt.read("dlstatus:4:50.0000:Retrieving file 4 of 12"));
  EXPECT_THAT(*apt.text(), StartsWith("downloading packages: 156.0 MB / 312.0 MB (50%)"));
  EXPECT_TRUE(
      apt.read("pmstatus:nvidia-kernel-dkms:41.6667:Installing nvidia-kernel-dkms (amd64)"));
  EXPECT_EQ(*apt.text(), "installing packages (41%): Installing nvidia-kernel-dkms (amd64)");
}

TEST(AptProgress, UpdateWithoutAnnouncedSizeShowsThePercentOnly) {
  AptProgress apt;
  EXPECT_TRUE(apt.read("dlstatus:2:37.5000:Retrieving file 2 of 4"));
  EXPECT_EQ(*apt.text(), "downloading (37%)");
}

TEST(AptProgress, MalformedStatusLinesAreOrdinaryOutput) {
  AptProgress apt;
  EXPECT_FALSE(apt.read("dlstatus:1"));
  EXPECT_FALSE(apt.read("dlstatus:1:lots:x"));
  EXPECT_FALSE(apt.read("dlstatus:1:nan:x"));
  EXPECT_FALSE(apt.read("pmerror:/var/cache/apt/archives/x.deb:50:trying to overwrite"));
  EXPECT_FALSE(apt.text());
}

// Prints a fixed output for every command and fails.
class ScriptedShell : public ssh::RemoteShell {
 public:
  explicit ScriptedShell(std::vector<std::string> chunks) : m_chunks(std::move(chunks)) {}
  int exec(const std::string&, const ssh::OutputSink& on_stdout, const ssh::OutputSink&,
           std::string_view) override {
    for (const std::string& c : m_chunks) {
      on_stdout(c);
    }
    return 1;
  }
  void upload(const std::string&, std::string_view, unsigned) override {}

 private:
  std::vector<std::string> m_chunks;
};

TEST(ProvisionOutput, StatusLinesGoToProgressNotToOutputOrTheErrorTail) {
  ScriptedShell shell({"Need to get 10.0 MB of archives.\n", "dlstatus:1:50.0000:Retrieving\n",
                       "error: no space left\n"});
  Callbacks cb;
  std::vector<std::string> progress;
  std::vector<std::string> output;
  cb.on_progress = [&](std::string_view t) { progress.emplace_back(t); };
  cb.on_output = [&](std::string_view l) { output.emplace_back(l); };
  try {
    provision(shell, nullptr, {}, cb);
    FAIL() << "the step failed";
  } catch (const StepError& e) {
    ASSERT_EQ(progress.size(), 1u);
    EXPECT_THAT(progress[0], StartsWith("downloading packages: 5.0 MB / 10.0 MB (50%)"));
    for (const std::string& line : e.log_tail()) {
      EXPECT_THAT(line, ::testing::Not(StartsWith("dlstatus:")));
    }
    EXPECT_THAT(output, ::testing::Not(::testing::Contains(StartsWith("dlstatus:"))));
    EXPECT_THAT(e.what(), HasSubstr("no space left"));
  }
}

// A host command that prints without newlines must not grow the client's memory without bound:
// the line is cut at 1 MiB, and what follows the newline is read as usual.
TEST(ProvisionOutput, AnEndlessLineIsCutAndTheNextLineStillCounts) {
  std::vector<std::string> chunks(48, std::string(64 * 1024, 'x'));  // 3 MiB, no newline
  chunks.emplace_back("\nerror: disk full\n");
  ScriptedShell shell(chunks);
  try {
    provision(shell, nullptr, {}, {});
    FAIL() << "the step failed";
  } catch (const StepError& e) {
    ASSERT_FALSE(e.log_tail().empty());
    size_t longest = 0;
    for (const std::string& line : e.log_tail()) {
      longest = std::max(longest, line.size());
    }
    EXPECT_LE(longest, (1u << 20) + 64);
    EXPECT_THAT(e.log_tail().front(), HasSubstr("[line cut at 1 MiB]"));
    EXPECT_THAT(e.what(), HasSubstr("disk full"));
  }
}

}  // namespace
}  // namespace gm::provision
