// The first questions a new user asks the binary: its version, its verbs, a verb's options with
// examples, and what a mistyped flag should have been.
#include "cli/app.h"
#include "cli_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace gm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(HelpCli, VersionFlagsPrintTheVersion) {
  CliRunner cli;
  for (const char* flag : {"--version", "-V"}) {
    CaptureResult r = cli.run({flag});
    EXPECT_EQ(r.status, 0) << flag << ": " << r.err;
    EXPECT_EQ(r.out, std::string("gpumachine ") + GM_VERSION + "\n") << flag;
  }
}

TEST(HelpCli, HelpListsTheVerbs) {
  CliRunner cli;
  CaptureResult r = cli.run({"help"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("create"));
  EXPECT_THAT(r.out, HasSubstr("jupyter"));
  EXPECT_THAT(r.out, HasSubstr("gpumachine help VERB"));
}

TEST(HelpCli, EveryVerbsHelpHasItsOptionsAndExamples) {
  CliRunner cli;
  for (const cli::VerbEntry& verb : cli::verb_table()) {
    CaptureResult r = cli.run({"help", verb.name});
    EXPECT_EQ(r.status, 0) << verb.name << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("\nExamples:\n  ")) << verb.name;
    std::size_t examples = r.out.find("Examples:");
    ASSERT_NE(examples, std::string::npos) << verb.name;
    EXPECT_THAT(r.out.substr(examples), HasSubstr("gpumachine " + std::string(verb.name)))
        << verb.name;
  }
  CaptureResult r = cli.run({"help", "jupyter"});
  EXPECT_THAT(r.out, HasSubstr("--port"));
  EXPECT_THAT(r.out, HasSubstr("gpumachine jupyter gpu1"));
}

TEST(HelpCli, HelpOfAMistypedVerbSuggestsTheVerb) {
  CliRunner cli;
  CaptureResult r = cli.run({"help", "jupiter"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown verb (did you mean 'jupyter'?)"));
}

TEST(HelpCli, MistypedGlobalOptionIsNamedNotTakenForAVerb) {
  CliRunner cli;
  CaptureResult r = cli.run({"--frmat", "json", "ls"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("option '--frmat': unknown option (did you mean '--format'?)"));
  EXPECT_THAT(r.err, Not(HasSubstr("unknown verb")));
  EXPECT_EQ(r.out, "");
}

TEST(HelpCli, MistypedVerbOptionGetsDidYouMean) {
  CliRunner cli;
  CaptureResult r = cli.run({"ls", "--cachd"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("option '--cachd': unknown option (did you mean '--cached'?)"));
  EXPECT_THAT(r.err, HasSubstr("gpumachine help ls"));
  // Global options after the verb are still suggested.
  r = cli.run({"ls", "--cached", "--quite"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("did you mean '--quiet'?"));
}

TEST(HelpCli, GlobalOptionsStillWorkBeforeAndAfterTheVerb) {
  CliRunner cli;
  EXPECT_EQ(cli.run({"--format", "json", "ls", "--cached"}).status, 0);
  EXPECT_EQ(cli.run({"--format=json", "-q", "ls", "--cached"}).status, 0);
  EXPECT_EQ(cli.run({"ls", "--cached", "--format", "json"}).status, 0);
}

}  // namespace
}  // namespace gm::testing
