#include "cli/machine_file.h"

#include "gm/error.h"
#include "support/process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace gm::cli {
namespace {

using ::testing::HasSubstr;

const MachineFileKeys k_keys = {{"driver", "no-provision", "ec2-spot", "ec2-tag"},
                                {"no-provision", "ec2-spot"}};

class MachineFile : public ::testing::Test {
 protected:
  Options load(const std::string& text) {
    gm::testing::write_text(path, text);
    return load_machine_file(path, k_keys);
  }
  /// The UsageError load() throws for text (fails the test when it throws nothing or another).
  std::string refusal(const std::string& text) {
    try {
      load(text);
    } catch (const UsageError& e) {
      return e.what();
    }
    ADD_FAILURE() << "accepted: " << text;
    return {};
  }

  gm::testing::TempDir dir{"gm-machine-file"};
  std::filesystem::path path = dir / "machine.yaml";
};

// YAML 1.1 booleans, as yaml-cpp reads them: `ec2-spot: no` must not ask for a spot instance.
TEST_F(MachineFile, SwitchesTakeYamlBooleans) {
  for (const char* yes : {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "y"}) {
    EXPECT_EQ(load(std::string("no-provision: ") + yes + "\n")["no-provision"],
              std::vector<std::string>{"true"})
        << yes;
  }
  for (const char* no : {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "n"}) {
    EXPECT_EQ(load(std::string("ec2-spot: ") + no + "\n")["ec2-spot"],
              std::vector<std::string>{"false"})
        << no;
  }
}

TEST_F(MachineFile, AnythingElseForASwitchIsRefusedNamingKeyAndFile) {
  for (const char* bad : {"maybe", "1", "nope", "yEs", "[yes]", "{a: b}"}) {
    std::string what = refusal(std::string("ec2-spot: ") + bad + "\n");
    EXPECT_THAT(what, HasSubstr(path.string())) << bad;
    EXPECT_THAT(what, HasSubstr("ec2-spot")) << bad;
    EXPECT_THAT(what, HasSubstr("true or false")) << bad;
  }
}

TEST_F(MachineFile, NonScalarValuesAreUsageErrors) {
  EXPECT_THAT(refusal("ec2-tag: {team: [a, b]}\n"), HasSubstr("ec2-tag"));
  EXPECT_THAT(refusal("ec2-tag: [[a]]\n"), HasSubstr("ec2-tag"));
  EXPECT_THAT(refusal("? [a, b]\n: c\n"), HasSubstr("keys must be option names"));
}

TEST_F(MachineFile, ADirectoryIsAUsageError) {
  try {
    load_machine_file(dir.path(), k_keys);
    ADD_FAILURE() << "a directory was read as a machine file";
  } catch (const UsageError& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("is a directory"));
  }
}

TEST_F(MachineFile, TagMapsAndListsStillRead) {
  Options o = load("ec2-tag: {team: ml, env: dev}\ndriver: ec2\n");
  EXPECT_EQ(o["ec2-tag"], (std::vector<std::string>{"team=ml", "env=dev"}));
  EXPECT_EQ(o["driver"], std::vector<std::string>{"ec2"});
}

}  // namespace
}  // namespace gm::cli
