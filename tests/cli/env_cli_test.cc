// `gpumachine env`: the output is run by each installed shell and the variables read back.
#include "cli/machine_env.h"

#include <nlohmann/json.hpp>

namespace gm::testing {
namespace {

class EnvCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    s_machine = new CliMachine("gpu-env");
    ASSERT_EQ(s_machine->gm({"ssh-config", "--install"}).status, 0);
  }
  static void TearDownTestSuite() {
    delete s_machine;
    s_machine = nullptr;
  }
  /// Runs `shell -c script` with the given exports already in the environment.
  CaptureResult in_shell(const std::vector<std::string>& argv, const std::string& script) {
    SpawnOptions o;
    o.env = {{"DOCKER_CONTEXT", "stale"},
             {"DOCKER_TLS_VERIFY", "1"},
             {"HOME", s_machine->user_home().string()}};
    std::vector<std::string> args = argv;
    args.push_back(script);
    return run_capture(args, {}, o);
  }
  static CliMachine* s_machine;
  TempDir m_dir{"gm-env-test"};
};
CliMachine* EnvCli::s_machine = nullptr;

TEST_F(EnvCli, BashEvalSetsDockerHostAndClearsConflicts) {
  CaptureResult r = s_machine->gm({"env", s_machine->name(), "--shell", "bash"});
  ASSERT_EQ(r.status, 0) << r.err;
  write_text(m_dir / "env.sh", r.out);
  const std::string read_back =
      "; printf '%s|%s|%s|%s\\n' \"$DOCKER_HOST\" \"$GPUMACHINE_ACTIVE_MACHINE\" "
      "\"${DOCKER_CONTEXT-unset}\" \"${DOCKER_TLS_VERIFY-unset}\"";
  std::string expected = "ssh://gpu-env|gpu-env|unset|unset\n";
  // Both the quoted and the unquoted eval forms people type.
  CaptureResult quoted =
      in_shell({"bash", "-c"}, "eval \"$(cat " + (m_dir / "env.sh").string() + ")\"" + read_back);
  EXPECT_EQ(quoted.out, expected) << quoted.err;
  CaptureResult unquoted =
      in_shell({"bash", "-c"}, "eval $(cat " + (m_dir / "env.sh").string() + ")" + read_back);
  EXPECT_EQ(unquoted.out, expected) << unquoted.err;

  CaptureResult undo = s_machine->gm({"env", s_machine->name(), "--shell", "bash", "--unset"});
  ASSERT_EQ(undo.status, 0) << undo.err;
  write_text(m_dir / "unset.sh", undo.out);
  CaptureResult cleared = in_shell(
      {"bash", "-c"}, "eval \"$(cat " + (m_dir / "env.sh").string() + ")\"; eval \"$(cat " +
                          (m_dir / "unset.sh").string() + ")\"; echo \"${DOCKER_HOST-unset}\"");
  EXPECT_EQ(cleared.out, "unset\n") << cleared.err;
}

TEST_F(EnvCli, OtherInstalledShellsReadTheSameValues) {
  int checked = 0;
  for (std::string shell : {"zsh", "fish"}) {
    if (run_capture({"sh", "-c", "command -v " + shell}).status != 0) {
      continue;
    }
    CaptureResult r = s_machine->gm({"env", s_machine->name(), "--shell", shell});
    ASSERT_EQ(r.status, 0) << r.err;
    write_text(m_dir / (shell + ".env"), r.out);
    std::string script =
        shell == "fish"
            ? "eval (cat " + (m_dir / "fish.env").string() + " | string collect); echo $DOCKER_HOST"
            : "eval \"$(cat " + (m_dir / "zsh.env").string() + ")\"; echo $DOCKER_HOST";
    CaptureResult got = in_shell({shell, "-c"}, script);
    EXPECT_EQ(got.out, "ssh://gpu-env\n") << shell << ": " << got.err;
    ++checked;
  }
  if (checked == 0) {
    GTEST_SKIP() << "neither zsh nor fish is installed";
  }
}

TEST_F(EnvCli, WithoutTheIncludeEvalFailsLoudlyWithTheFix) {
  std::filesystem::remove(s_machine->user_home() / ".ssh" / "config");
  CaptureResult before = s_machine->gm({"--format", "json", "env", s_machine->name()});
  ASSERT_EQ(before.status, 0) << before.err;
  nlohmann::json doc = nlohmann::json::parse(before.out);
  EXPECT_FALSE(doc.at("ssh_config_included").get<bool>());
  EXPECT_EQ(doc.at("set").at("DOCKER_HOST"), "ssh://gpu-env");
  // The README's line: an error on stderr with the one command that fixes it, a non-zero status
  // from gpumachine and from the eval, and DOCKER_HOST left alone.
  CaptureResult text = s_machine->gm({"env", s_machine->name(), "--shell", "bash"});
  EXPECT_EQ(text.status, 1) << text.err;
  EXPECT_NE(text.err.find("gpumachine: error: env gpu-env"), std::string::npos) << text.err;
  EXPECT_NE(text.err.find("hint: run `gpumachine ssh-config --install` once"), std::string::npos)
      << text.err;
  write_text(m_dir / "failed.sh", text.out);
  CaptureResult evaluated =
      in_shell({"bash", "-c"}, "eval \"$(cat " + (m_dir / "failed.sh").string() +
                                   ")\" && echo ran; echo \"status $? ${DOCKER_HOST-unset}\"");
  EXPECT_EQ(evaluated.out, "status 1 unset\n") << evaluated.err;
  // Undoing needs no ssh config.
  EXPECT_EQ(s_machine->gm({"env", s_machine->name(), "--unset"}).status, 0);

  ASSERT_EQ(s_machine->gm({"ssh-config", "--install"}).status, 0);
  CaptureResult after = s_machine->gm({"--format", "json", "env", s_machine->name()});
  EXPECT_TRUE(nlohmann::json::parse(after.out).at("ssh_config_included").get<bool>());
  CaptureResult text_after = s_machine->gm({"env", s_machine->name(), "--shell", "bash"});
  EXPECT_EQ(text_after.status, 0) << text_after.err;
  EXPECT_NE(text_after.out.find("export DOCKER_HOST=\"ssh://gpu-env\";"), std::string::npos);
  // Where -v paths live is said where the user sees it (stderr survives the eval).
  EXPECT_NE(text_after.err.find("bind mounts"), std::string::npos) << text_after.err;
  EXPECT_NE(text_after.err.find("gpu-env's file system"), std::string::npos) << text_after.err;
  // With the Include in place, the system ssh resolves the machine as Docker's ssh:// will.
  SpawnOptions o;
  o.env = s_machine->env();
  CaptureResult ssh =
      run_capture({"ssh", "-F", (s_machine->user_home() / ".ssh" / "config").string(), "-o",
                   "BatchMode=yes", s_machine->name(), "echo", "reached"},
                  {}, o);
  EXPECT_EQ(ssh.out, "reached\n") << ssh.err;
}

TEST_F(EnvCli, UnknownShellIsAUsageError) {
  CaptureResult r = s_machine->gm({"env", s_machine->name(), "--shell", "tcsh"});
  EXPECT_EQ(r.status, 2) << r.err;
}

}  // namespace
}  // namespace gm::testing
