// Every remote script is clean under shellcheck, alone and as the provisioner sends it (prelude +
// parameters + step), and so is the cloud-init fragment.
#include "provision/plan.h"
#include "provision/provisioner.h"
#include "util/assets.h"

#include "util/gzip.h"
#include "util/shell.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace gm::provision {
namespace {

bool have_shellcheck() {
  return std::system("command -v shellcheck >/dev/null 2>&1") == 0;
}

// shellcheck's findings for text ("" when clean).
std::string shellcheck(std::string_view text, const std::string& extra = "") {
  char tmpl[] = "/tmp/gm-shellcheck-XXXXXX";
  int fd = mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(tmpl) << text;
  std::string cmd = "shellcheck -s bash " + extra + " " + tmpl + " 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
      out.append(buf, n);
    }
    if (pclose(p) == 0) {
      out.clear();
    }
  }
  std::filesystem::remove(tmpl);
  return out;
}

Facts sample_host(const char* os_id, const char* version, bool nvswitch) {
  nlohmann::json pci = {{{"slot", "0000:00:1e.0"}, {"device", "0x2330"}, {"class", "0x030200"}}};
  if (nvswitch) {
    pci.push_back({{"slot", "0000:05:00.0"}, {"device", "0x22a3"}, {"class", "0x068000"}});
  }
  return parse_facts({{"os", {{"id", os_id}, {"version_id", version}}}, {"pci", pci}});
}

TEST(ProvisionScripts, EveryScriptIsShellcheckClean) {
  if (!have_shellcheck()) {
    GTEST_SKIP() << "shellcheck is not installed";
  }
  int checked = 0;
  for (const auto& [path, text] : util::assets()) {
    if (!path.starts_with("provision/scripts/") || !path.ends_with(".sh")) {
      continue;
    }
    ++checked;
    EXPECT_EQ(shellcheck(text), "") << path;
    EXPECT_NE(text.find("set -euo pipefail"), std::string_view::npos)
        << path << " (or lib.sh, which every step is sent with)";
  }
  EXPECT_GE(checked, 12);
}

TEST(ProvisionScripts, ComposedStepsAreShellcheckClean) {
  if (!have_shellcheck()) {
    GTEST_SKIP() << "shellcheck is not installed";
  }
  for (auto [id, version] : {std::pair{"ubuntu", "24.04"}, {"debian", "12"}, {"amzn", "2023"}}) {
    Plan plan = plan_for(sample_host(id, version, true), {});
    for (const PlannedStep& s : plan.steps) {
      if (!s.run) {
        continue;
      }
      // SC2034: plan parameters a given step does not use are expected.
      EXPECT_EQ(shellcheck(compose_script(plan, to_string(s.id), {s.script}), "-e SC2034"), "")
          << id << " " << s.script;
    }
  }
}

TEST(ProvisionScripts, CloudInitPreludeStartsInstallsAndIsClean) {
  PreludeInputs in;
  in.os_id = "ubuntu";
  in.os_version_id = "24.04";
  in.user = "ubuntu";
  in.gpus = {GpuGeneration::turing};
  const std::string text = cloud_init_prelude(in);
  EXPECT_TRUE(text.starts_with("#!/bin/bash\n")) << "cloud-init execs the part";
  EXPECT_NE(text.find("GM_STEP=driver\n"), std::string::npos);
  EXPECT_NE(text.find("GM_STEP=docker\n"), std::string::npos);
  EXPECT_NE(text.find("GM_STEP=toolkit\n"), std::string::npos);
  EXPECT_NE(text.find("linux-modules-nvidia-"), std::string::npos);
  EXPECT_EQ(text.find("GM_STEP=reboot"), std::string::npos) << "the reboot stays with SSH";
  // EC2 takes 16 KiB of user data, which the driver gzips when it is over: leave room for the
  // host key's cloud-config and the user's own part.
  EXPECT_LT(gm::util::gzip(text).size(), 8u * 1024u) << text.size();
  if (have_shellcheck()) {
    EXPECT_EQ(shellcheck(text, "-e SC2034"), "");
  }
  in.gpus.clear();
  const std::string docker_only = cloud_init_prelude(in);
  EXPECT_EQ(docker_only.find("GM_STEP=driver"), std::string::npos);
  EXPECT_NE(docker_only.find("GM_STEP=docker\n"), std::string::npos);
}

// #13: a step keeps running, and its output keeps reaching the host's log, after the SSH
// connection that reads its output is gone (here: the reader of its stdout exits after the first
// line, as sshd's end of the pipe does when the connection drops).
TEST(ProvisionScripts, HostLogKeepsGoingWhenTheReaderGoes) {
  char tmpl[] = "/tmp/gm-droplog-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::filesystem::path dir = tmpl;
  const std::string step =
      "{\nGM_SYSROOT=" + util::shell_quote((dir / "root").string()) + "\nGM_STEP=drop\n" +
      std::string(util::asset("provision/scripts/lib.sh")) +
      "\necho first\n"
      "until [ -e \"$GM_SYSROOT/../reader-gone\" ]; do sleep 0.1; done\n"
      "echo second\necho third\ntouch \"$GM_SYSROOT/../finished\"\n} </dev/null\n";
  std::ofstream(dir / "step.sh") << step;
  const std::string d = util::shell_quote(dir.string());
  const std::string cmd = "cd " + d +
                          " && mkfifo out && { bash step.sh >out 2>&1 & pid=$!; "
                          "head -n 1 <out >first; touch reader-gone; wait $pid; echo $? >rc; }";
  ASSERT_EQ(std::system(("bash -c " + util::shell_quote(cmd)).c_str()), 0);
  auto text = [&](const char* name) {
    std::ifstream in(dir / name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(text("first").rfind("=== ", 0), 0u) << text("first");
  EXPECT_TRUE(std::filesystem::exists(dir / "finished"));
  EXPECT_EQ(text("rc"), "0\n");
  const std::string log = text("root/var/log/gpumachine/provision.log");
  EXPECT_NE(log.find("second\nthird\n"), std::string::npos) << log;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gm::provision
