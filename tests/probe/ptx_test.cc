// PTX target selection and the generated PTX itself, driven through the payload's developer
// modes (--select-target, --emit-ptx) and checked with NVIDIA's ptxas where it is installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <regex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "probe/local_shell.h"

namespace gm::probe {
namespace {

const std::string k_payload = std::string(GM_SOURCE_DIR) + "/src/probe/payload.py";
const std::string k_ptxas = "/usr/local/cuda/bin/ptxas";

struct Selection {
  int cc;
  int driver;
  std::string target;
  std::string version;
};

// The minimum ISA per base target (nvidia-facts.md §5 rule 3, cross-checked against ptxas 13 for
// sm_75 and up), and the clamp to what the driver's JIT knows (rule 1).
const std::vector<Selection> k_selections = {
    {35, 11040, "sm_35", "3.1"},
    {37, 11040, "sm_37", "4.1"},
    {50, 12000, "sm_50", "4.0"},
    {52, 12000, "sm_52", "4.1"},
    {53, 12000, "sm_53", "4.2"},
    {60, 12000, "sm_60", "5.0"},
    {61, 12000, "sm_61", "5.0"},
    {62, 12000, "sm_62", "5.0"},
    {70, 12000, "sm_70", "6.0"},
    {72, 12000, "sm_72", "6.1"},
    {75, 13000, "sm_75", "6.3"},
    {80, 13000, "sm_80", "7.0"},
    {86, 13000, "sm_86", "7.1"},
    {87, 13000, "sm_87", "7.4"},
    {89, 13000, "sm_89", "7.8"},
    {90, 13000, "sm_90", "7.8"},
    {100, 13000, "sm_100", "8.6"},
    {103, 13000, "sm_103", "8.8"},
    {110, 13000, "sm_110", "9.0"},
    {120, 13000, "sm_120", "8.7"},
    {121, 13000, "sm_121", "8.8"},
    // Clamped by the device: CC 8.8 has no base target of its own here, an unknown future
    // GPU gets the highest known target.
    {88, 13000, "sm_87", "7.4"},
    {130, 13020, "sm_121", "8.8"},
    // Clamped by the driver: R470 (CUDA 11.4) knows PTX 7.4 at most, CUDA 12.6 knows 8.5, CUDA 9.2
    // knows 6.2.
    {90, 11040, "sm_87", "7.4"},
    {120, 12060, "sm_90", "7.8"},
    {75, 9020, "sm_72", "6.1"},
};

test::LocalShell& shell() {
  static test::LocalShell s;
  return s;
}

nlohmann::json select(int cc, int driver) {
  auto r = shell().run("python3 " + k_payload + " --select-target " + std::to_string(cc) +
                       " --driver-version " + std::to_string(driver));
  EXPECT_EQ(r.exit_status, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(ProbePtx, SelectsTargetAndLowestVersionForEveryComputeCapability) {
  for (const Selection& s : k_selections) {
    auto j = select(s.cc, s.driver);
    EXPECT_EQ(j["target"], s.target) << "cc " << s.cc << " driver " << s.driver;
    EXPECT_EQ(j["version"], s.version) << "cc " << s.cc << " driver " << s.driver;
  }
}

TEST(ProbePtx, FallbacksAfterNativeTargetInFactsFileOrder) {
  auto j = select(90, 13000);
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& c : j["candidates"]) {
    got.emplace_back(c["target"], c["version"]);
  }
  std::vector<std::pair<std::string, std::string>> want = {
      {"sm_90", "7.8"}, {"sm_75", "6.3"}, {"sm_50", "4.0"}, {"sm_35", "4.3"}};
  EXPECT_EQ(got, want);
  // Never an arch- or family-specific target, and never above the device.
  for (const Selection& s : k_selections) {
    const nlohmann::json selection = select(s.cc, s.driver);  // outlives the loop
    for (const auto& c : selection["candidates"]) {
      std::string t = c["target"];
      EXPECT_TRUE(std::regex_match(t, std::regex("sm_[0-9]+"))) << t;
      EXPECT_LE(std::stoi(t.substr(3)), s.cc);
    }
  }
}

std::set<std::string> ptxas_archs() {
  auto r = shell().run(k_ptxas + " --help");
  std::set<std::string> archs;
  std::regex re("'(sm_[0-9]+)'");
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), re); it != std::sregex_iterator();
       ++it) {
    archs.insert((*it)[1]);
  }
  return archs;
}

// Assembles the payload's PTX for target/version; returns ptxas's exit status and stderr.
std::pair<int, std::string> assemble(const std::string& target, const std::string& version,
                                     const std::string& kernel) {
  const std::string dir = testing::TempDir();
  const std::string ptx = dir + "/gm_probe_" + target + "_" + kernel + ".ptx";
  auto emit = shell().run("python3 " + k_payload + " --emit-ptx " + target + " --ptx-version " +
                          version + " --kernel " + kernel + " > " + ptx);
  EXPECT_EQ(emit.exit_status, 0) << emit.err;
  auto r = shell().run(k_ptxas + " -arch=" + target + " " + ptx + " -o /dev/null");
  std::filesystem::remove(ptx);
  return {r.exit_status, r.err};
}

TEST(ProbePtx, GeneratedPtxAssemblesWithPtxas) {
  if (!std::filesystem::exists(k_ptxas)) {
    GTEST_SKIP() << k_ptxas << " is not installed";
  }
  const auto archs = ptxas_archs();
  ASSERT_FALSE(archs.empty()) << "could not read ptxas's target list";
  // The native choices, plus the fallbacks with their own versions.
  std::vector<std::pair<std::string, std::string>> cases;
  for (const Selection& s : k_selections) {
    cases.emplace_back(s.target, s.version);
  }
  cases.insert(cases.end(), {{"sm_75", "6.3"}, {"sm_50", "4.0"}, {"sm_35", "4.3"}});
  std::set<std::string> validated, skipped;
  for (const auto& [target, version] : cases) {
    if (!archs.contains(target)) {
      skipped.insert(target);
      continue;
    }
    auto [rc, err] = assemble(target, version, "all");
    EXPECT_EQ(rc, 0) << target << " / PTX " << version << ":\n" << err;
    validated.insert(target);
  }
  // Each kernel on its own too, so --kernel emits complete modules.
  for (const std::string kernel : {"check", "copy", "fma"}) {
    if (archs.contains("sm_90")) {
      EXPECT_EQ(assemble("sm_90", "7.8", kernel).first, 0) << kernel;
    }
  }
  std::string v, s;
  for (const auto& t : validated)
    v += " " + t;
  for (const auto& t : skipped)
    s += " " + t;
  std::cout << "[ptxas] validated:" << v << "\n[ptxas] not supported by this ptxas, skipped:" << s
            << "\n";
  RecordProperty("ptxas_validated", v);
  RecordProperty("ptxas_skipped", s);
  EXPECT_FALSE(validated.empty());
}

TEST(ProbePtx, PtxasRejectsVersionBelowTargetMinimum) {
  // Proves the check above is not vacuous: ptxas does enforce the .version/.target pairing
  // the selection table encodes.
  if (!std::filesystem::exists(k_ptxas) || !ptxas_archs().contains("sm_90")) {
    GTEST_SKIP() << "ptxas with sm_90 is not installed";
  }
  auto [rc, err] = assemble("sm_90", "7.7", "all");
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("does not support .target sm_90"), std::string::npos) << err;
}

}  // namespace
}  // namespace gm::probe
