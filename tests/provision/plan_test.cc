// The plan, table-driven over OS x GPU x driver state, plus the overrides the GPUs refuse.
#include "provision/plan.h"

#include "gm/error.h"
#include "util/assets.h"

#include <gtest/gtest.h>

#include <tuple>

namespace gm::provision {
namespace {

struct OsCase {
  const char* name;
  const char* id;
  const char* version;
  const char* driver_dir;  // where the driver script lives
  const char* pkg_dir;     // where docker/toolkit scripts live
};
constexpr OsCase k_oses[] = {
    {"ubuntu2204", "ubuntu", "22.04", "ubuntu", "apt"},
    {"ubuntu2404", "ubuntu", "24.04", "ubuntu", "apt"},
    {"debian12", "debian", "12", "debian", "apt"},
    {"al2023", "amzn", "2023", "al2023", "al2023"},
};

struct GpuCase {
  const char* name;
  const char* device;  // "" = no GPU
  int branch;
  DriverFlavour flavour;
  bool nvswitch;
};
constexpr GpuCase k_gpus[] = {
    {"nogpu", "", 0, DriverFlavour::open, false},
    {"k80", "0x102d", 470, DriverFlavour::proprietary, false},
    {"v100", "0x1db1", 580, DriverFlavour::proprietary, false},
    {"t4", "0x1eb8", 595, DriverFlavour::open, false},
    {"a10g", "0x2237", 595, DriverFlavour::open, false},
    {"l4", "0x27b8", 595, DriverFlavour::open, false},
    {"h100nvswitch", "0x2330", 595, DriverFlavour::open, true},
    {"b200", "0x2901", 595, DriverFlavour::open, false},
};

enum class DriverState { fresh, loaded, wrong_version, nouveau };
constexpr DriverState k_states[] = {DriverState::fresh, DriverState::loaded,
                                    DriverState::wrong_version, DriverState::nouveau};
const char* state_name(DriverState s) {
  switch (s) {
    case DriverState::fresh:
      return "fresh";
    case DriverState::loaded:
      return "loaded";
    case DriverState::wrong_version:
      return "wrongversion";
    case DriverState::nouveau:
      return "nouveau";
  }
  return "?";
}

std::string version_of(int branch) {
  return branch == 470 ? "470.256.02" : branch == 580 ? "580.95.05" : "595.91.07";
}

nlohmann::json facts_json(const OsCase& os, const GpuCase& gpu, DriverState state) {
  nlohmann::json pci = nlohmann::json::array();
  // A network card that is not NVIDIA's never shows up (the script filters), so only 10de here.
  if (*gpu.device) {
    for (int i = 0; i < (gpu.nvswitch ? 8 : 1); ++i) {
      pci.push_back({{"slot", "0000:00:1" + std::to_string(i) + ".0"},
                     {"device", gpu.device},
                     {"class", "0x030200"}});
    }
  }
  if (gpu.nvswitch) {
    for (int i = 0; i < 4; ++i) {
      pci.push_back({{"slot", "0000:0" + std::to_string(5 + i) + ":00.0"},
                     {"device", "0x22a3"},
                     {"class", "0x068000"}});
    }
  }
  nlohmann::json driver = {{"loaded_version", ""},
                           {"loaded_flavour", ""},
                           {"userspace_version", ""},
                           {"module_version", ""},
                           {"smi_error", ""}};
  if (*gpu.device && state == DriverState::loaded) {
    driver["loaded_version"] = driver["userspace_version"] = version_of(gpu.branch);
    driver["loaded_flavour"] = std::string(to_string(gpu.flavour));
  }
  if (*gpu.device && state == DriverState::wrong_version) {
    driver["loaded_version"] = gpu.branch == 470 ? "470.199.02" : "580.65.06";
    driver["loaded_flavour"] = std::string(to_string(gpu.flavour));
    driver["userspace_version"] = version_of(gpu.branch);
    driver["smi_error"] = "Failed to initialize NVML: Driver/library version mismatch";
  }
  return {{"os", {{"id", os.id}, {"version_id", os.version}, {"pretty_name", os.name}}},
          {"kernel", "6.8.0-1015-aws"},
          {"arch", "x86_64"},
          {"user", "ubuntu"},
          {"uid", 1000},
          {"pci", pci},
          {"secure_boot", "disabled"},
          {"nouveau_loaded", *gpu.device && state == DriverState::nouveau},
          {"driver", driver},
          {"docker", {{"installed", false}}},
          {"toolkit", {{"installed", false}}}};
}

class PlanMatrix : public ::testing::TestWithParam<std::tuple<OsCase, GpuCase, DriverState>> {};

TEST_P(PlanMatrix, DecidesBranchFlavourAndSteps) {
  const auto& [os, gpu, state] = GetParam();
  const Plan plan = plan_for(parse_facts(facts_json(os, gpu, state)), {});
  const bool has_gpu = *gpu.device != '\0';

  EXPECT_EQ(plan.has_gpu, has_gpu);
  EXPECT_TRUE(plan.step(StepId::wait).run);
  EXPECT_TRUE(plan.step(StepId::facts).run);
  EXPECT_TRUE(plan.step(StepId::verify).run);
  EXPECT_TRUE(plan.step(StepId::docker).run);
  EXPECT_EQ(plan.step(StepId::docker).script,
            std::string("provision/scripts/") + os.pkg_dir + "/docker.sh");
  // Every script a plan names is embedded in the binary.
  for (const PlannedStep& s : plan.steps) {
    if (s.run) {
      EXPECT_NO_THROW(util::asset(s.script)) << s.script;
    }
  }
  EXPECT_NE(render_plan(plan).find("steps:"), std::string::npos);

  if (!has_gpu) {
    EXPECT_FALSE(plan.step(StepId::driver).run);
    EXPECT_FALSE(plan.step(StepId::reboot).run);
    EXPECT_FALSE(plan.step(StepId::fabric).run);
    EXPECT_FALSE(plan.step(StepId::toolkit).run);
    EXPECT_EQ(plan.notes, std::vector<std::string>{"no NVIDIA GPU on this host"});
    EXPECT_EQ(plan.env.at("GM_IMAGE"), "");
    return;
  }

  EXPECT_EQ(plan.driver_branch, gpu.branch);
  EXPECT_EQ(plan.flavour, gpu.flavour);
  EXPECT_EQ(plan.env.at("GM_BRANCH"), std::to_string(gpu.branch));
  EXPECT_EQ(plan.env.at("GM_FLAVOUR"), to_string(gpu.flavour));
  EXPECT_EQ(plan.step(StepId::fabric).run, gpu.nvswitch);
  EXPECT_EQ(plan.nvlsm, gpu.nvswitch);  // the NVSwitch case is an H100: gen-4, needs nvlsm
  EXPECT_TRUE(plan.step(StepId::toolkit).run);
  EXPECT_EQ(plan.verify_image, k_default_verify_image);
  const bool kepler_warned =
      !plan.warnings.empty() && plan.warnings[0].find("Kepler") != std::string::npos;
  EXPECT_EQ(kepler_warned, gpu.branch == 470);

  const PlannedStep& driver = plan.step(StepId::driver);
  const PlannedStep& reboot = plan.step(StepId::reboot);
  switch (state) {
    case DriverState::fresh:
      EXPECT_TRUE(driver.run);
      EXPECT_EQ(driver.script, std::string("provision/scripts/") + os.driver_dir + "/driver.sh");
      EXPECT_TRUE(reboot.run) << "the reboot step decides on the host after the install";
      break;
    case DriverState::loaded:
      EXPECT_FALSE(driver.run);
      EXPECT_FALSE(plan.install_driver);
      EXPECT_FALSE(reboot.run);
      EXPECT_NE(driver.reason.find("is loaded"), std::string::npos) << driver.reason;
      break;
    case DriverState::wrong_version:
      EXPECT_TRUE(driver.run);
      EXPECT_TRUE(reboot.run);
      EXPECT_NE(reboot.reason.find("is loaded but the driver is " + version_of(gpu.branch)),
                std::string::npos)
          << reboot.reason;
      break;
    case DriverState::nouveau:
      EXPECT_TRUE(driver.run);
      EXPECT_TRUE(reboot.run);
      EXPECT_NE(reboot.reason.find("nouveau is loaded"), std::string::npos) << reboot.reason;
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(PlanAllHosts, PlanMatrix,
                         ::testing::Combine(::testing::ValuesIn(k_oses),
                                            ::testing::ValuesIn(k_gpus),
                                            ::testing::ValuesIn(k_states)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) + "_" +
                                  std::get<1>(info.param).name + "_" +
                                  state_name(std::get<2>(info.param));
                         });

Facts host(const char* device, const char* os_id = "ubuntu", const char* version = "24.04") {
  GpuCase gpu{"x", device, 0, DriverFlavour::open, false};
  OsCase os{"x", os_id, version, "", ""};
  return parse_facts(facts_json(os, gpu, DriverState::fresh));
}

TEST(PlanOverrides, ProprietaryOnBlackwellIsRefused) {
  Overrides o;
  o.driver_flavour = DriverFlavour::proprietary;
  try {
    plan_for(host("0x2901"), o);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(e.subject(), "--driver-flavour proprietary");
    EXPECT_NE(e.problem().find("Blackwell"), std::string::npos);
    EXPECT_EQ(e.exit_code(), exit_code::k_usage);
  }
}

TEST(PlanOverrides, OpenModulesBeforeTuringAreRefused) {
  Overrides o;
  o.driver_flavour = DriverFlavour::open;
  EXPECT_THROW(plan_for(host("0x1db1"), o), UsageError);
}

TEST(PlanOverrides, BranchTooNewForVoltaOrKeplerIsRefused) {
  Overrides o;
  o.driver_branch = 595;
  EXPECT_THROW(plan_for(host("0x1db1"), o), UsageError);
  o.driver_branch = 580;
  EXPECT_NO_THROW(plan_for(host("0x1db1"), o));
  EXPECT_THROW(plan_for(host("0x102d"), o), UsageError);
}

TEST(PlanOverrides, BranchAndFlavourCanBeForced) {
  Overrides o;
  o.driver_branch = 580;
  o.driver_flavour = DriverFlavour::proprietary;
  Plan p = plan_for(host("0x1eb8"), o);
  EXPECT_EQ(p.driver_branch, 580);
  EXPECT_EQ(p.flavour, DriverFlavour::proprietary);
  EXPECT_EQ(p.env.at("GM_DNF_STREAM"), "580-dkms");
}

TEST(PlanOverrides, AWorkingOlderDriverIsKeptUnlessABranchIsForced) {
  nlohmann::json j = facts_json(k_oses[1], k_gpus[3], DriverState::loaded);
  j["driver"]["loaded_version"] = j["driver"]["userspace_version"] = "580.95.05";
  j["driver"]["loaded_flavour"] = "open";
  Plan kept = plan_for(parse_facts(j), {});
  EXPECT_FALSE(kept.step(StepId::driver).run);
  EXPECT_EQ(kept.driver_branch, 580);
  ASSERT_FALSE(kept.notes.empty());
  EXPECT_NE(kept.notes[0].find("--driver-branch 595"), std::string::npos);
  Overrides o;
  o.driver_branch = 595;
  EXPECT_TRUE(plan_for(parse_facts(j), o).step(StepId::driver).run);
}

TEST(PlanOverrides, ProprietaryModuleOnBlackwellIsReplaced) {
  nlohmann::json j = facts_json(k_oses[1], k_gpus[7], DriverState::loaded);
  j["driver"]["loaded_flavour"] = "proprietary";
  EXPECT_TRUE(plan_for(parse_facts(j), {}).step(StepId::driver).run);
}

TEST(PlanOverrides, NoGspMeansProprietaryAndIsRefusedWhereItCannotWork) {
  Overrides o;
  o.no_gsp = true;
  Plan p = plan_for(parse_facts(facts_json(k_oses[0], k_gpus[3], DriverState::fresh)), o);
  EXPECT_EQ(p.flavour, DriverFlavour::proprietary);
  EXPECT_EQ(p.env.at("GM_NO_GSP"), "1");
  EXPECT_EQ(plan_for(parse_facts(facts_json(k_oses[0], k_gpus[3], DriverState::fresh)), {})
                .env.at("GM_NO_GSP"),
            "0");

  // A proprietary driver with GSP on is redone (the option needs the driver step and a reload).
  nlohmann::json j = facts_json(k_oses[0], k_gpus[3], DriverState::loaded);
  j["driver"]["loaded_flavour"] = "proprietary";
  j["driver"]["gsp_param"] = "18";
  EXPECT_TRUE(plan_for(parse_facts(j), o).step(StepId::driver).run);
  j["driver"]["gsp_param"] = "0";
  EXPECT_FALSE(plan_for(parse_facts(j), o).step(StepId::driver).run);

  Overrides open = o;
  open.driver_flavour = DriverFlavour::open;
  EXPECT_THROW(plan_for(parse_facts(facts_json(k_oses[0], k_gpus[3], DriverState::fresh)), open),
               UsageError);
  EXPECT_THROW(plan_for(parse_facts(facts_json(k_oses[0], k_gpus[7], DriverState::fresh)), o),
               UsageError);
}

TEST(PlanOverrides, Branch620AndNewerHaveNoProprietaryModules) {
  // R620 removed the proprietary kernel modules: refused offline, before any host is touched.
  Overrides o;
  o.driver_branch = 620;
  o.driver_flavour = DriverFlavour::proprietary;
  try {
    validate_overrides(o);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(e.subject(), "--driver-flavour proprietary");
    EXPECT_NE(e.problem().find("620"), std::string::npos) << e.problem();
    EXPECT_NE(e.hint().find("--driver-branch 595"), std::string::npos) << e.hint();
  }
  EXPECT_THROW(plan_for(host("0x1eb8"), o), UsageError);
  Overrides gsp;
  gsp.driver_branch = 625;
  gsp.no_gsp = true;
  try {
    validate_overrides(gsp);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(e.subject(), "--no-gsp");
  }
  EXPECT_THROW(plan_for(host("0x1eb8"), gsp), UsageError);
  Overrides open;
  open.driver_branch = 620;
  EXPECT_NO_THROW(validate_overrides(open));
  EXPECT_EQ(plan_for(host("0x1eb8"), open).flavour, DriverFlavour::open);
  gsp.driver_branch = 595;
  EXPECT_NO_THROW(validate_overrides(gsp));
}

TEST(PlanOverrides, DriverChoicesRoundTripThroughJson) {
  Overrides o;
  o.driver_branch = 580;
  o.driver_flavour = DriverFlavour::proprietary;
  o.no_gsp = true;
  o.verify_image = "not carried";
  nlohmann::json j = driver_overrides_to_json(o);
  EXPECT_EQ(j, (nlohmann::json{
                   {"driver_branch", 580}, {"driver_flavour", "proprietary"}, {"no_gsp", true}}));
  Overrides back = driver_overrides_from_json(j);
  EXPECT_EQ(back.driver_branch, 580);
  EXPECT_EQ(back.driver_flavour, DriverFlavour::proprietary);
  EXPECT_TRUE(back.no_gsp);
  EXPECT_TRUE(driver_overrides_to_json({}).empty());
  EXPECT_FALSE(driver_overrides_from_json(nullptr).driver_branch);
}

TEST(PlanHosts, UnsupportedOsIsAClearError) {
  try {
    plan_for(host("0x1eb8", "centos", "7"), {});
    FAIL();
  } catch (const UnsupportedError& e) {
    EXPECT_NE(e.hint().find("Ubuntu 22.04, 24.04 or 26.04"), std::string::npos) << e.hint();
  }
}

TEST(PlanHosts, Debian13AndUbuntu2604HaveRecipes) {
  // NVIDIA's tables list both (nvidia-facts-2026-12.md); the scripts take the version from facts.
  EXPECT_EQ(plan_for(host("0x1eb8", "debian", "13"), {}).os, OsFamily::debian);
  EXPECT_EQ(plan_for(host("0x1eb8", "ubuntu", "26.04"), {}).os, OsFamily::ubuntu);
  EXPECT_THROW(plan_for(host("0x1eb8", "debian", "11"), {}), UnsupportedError);
  try {
    plan_for(host("0x1eb8", "ubuntu", "20.04"), {});
    FAIL();
  } catch (const UnsupportedError& e) {
    EXPECT_NE(e.hint().find("Debian 12 or 13"), std::string::npos) << e.hint();
    EXPECT_NE(e.hint().find("26.04"), std::string::npos) << e.hint();
  }
}

TEST(PlanHosts, ReadyHostSkipsEverythingButTheChecks) {
  nlohmann::json j = facts_json(k_oses[0], k_gpus[3], DriverState::loaded);
  j["docker"] = {
      {"installed", true}, {"version", "29.1.3"}, {"active", true}, {"user_in_group", true}};
  j["toolkit"] = {{"installed", true}, {"version", "1.20.1"}, {"docker_runtime", true}};
  Plan p = plan_for(parse_facts(j), {});
  std::vector<StepId> running;
  for (const PlannedStep& s : p.steps) {
    if (s.run) {
      running.push_back(s.id);
    }
  }
  EXPECT_EQ(running, (std::vector<StepId>{StepId::wait, StepId::facts, StepId::verify}));
}

TEST(PlanHosts, SecureBootWarnsWhereOnlyDkmsExists) {
  nlohmann::json j = facts_json(k_oses[2], k_gpus[3], DriverState::fresh);
  j["secure_boot"] = "enabled";
  Plan p = plan_for(parse_facts(j), {});
  ASSERT_FALSE(p.warnings.empty());
  EXPECT_NE(p.warnings[0].find("Secure Boot"), std::string::npos);
}

TEST(PlanRender, DryRunShowsTheCommandsWithTheChosenBranch) {
  Plan p = plan_for(host("0x1eb8"), {});
  const std::string text = render_plan(p);
  EXPECT_NE(text.find("driver: 595 (open)"), std::string::npos) << text;
  EXPECT_NE(text.find("linux-modules-nvidia-595-server-open-$(uname -r)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("nvidia-ctk runtime configure --runtime=docker"), std::string::npos);
  EXPECT_NE(text.find("docker run --rm --gpus all ubuntu:24.04 nvidia-smi"), std::string::npos);
  EXPECT_NE(text.find("fabric (skip): no NVSwitch"), std::string::npos) << text;
}

TEST(PlanFacts, DeviceIdsMapToGenerations) {
  EXPECT_EQ(generation_for_device_id(0x102d), GpuGeneration::kepler);
  for (std::uint16_t id : {0x1db1, 0x1db4, 0x1db5}) {
    EXPECT_EQ(generation_for_device_id(id), GpuGeneration::volta);
  }
  EXPECT_EQ(generation_for_device_id(0x1eb8), GpuGeneration::turing);
  for (std::uint16_t id : {0x2237, 0x20b0, 0x20b2, 0x20f1}) {
    EXPECT_EQ(generation_for_device_id(id), GpuGeneration::ampere);
  }
  EXPECT_EQ(generation_for_device_id(0x27b8), GpuGeneration::ada);
  EXPECT_EQ(generation_for_device_id(0x26b9), GpuGeneration::ada);
  for (std::uint16_t id : {0x2330, 0x2331, 0x2339, 0x2335}) {
    EXPECT_EQ(generation_for_device_id(id), GpuGeneration::hopper);
  }
  EXPECT_EQ(generation_for_device_id(0x2901), GpuGeneration::blackwell);
  EXPECT_EQ(generation_for_device_id(0x22a3), GpuGeneration::unknown);  // NVSwitch, not a GPU
  EXPECT_TRUE(is_nvswitch_device_id(0x22a3));
  EXPECT_TRUE(is_nvswitch_device_id(0x1af1));
  // A switch id not in the list (a newer generation) is still known by its class.
  EXPECT_TRUE(is_nvswitch(0x2901, 0x068000));
  EXPECT_FALSE(is_nvswitch(0x2901, 0x030200));
  EXPECT_FALSE(is_nvswitch(0x10f0, 0x040300));  // HD audio
  EXPECT_EQ(generation_for_device_id(0x0001), GpuGeneration::unknown);
}

TEST(PlanFacts, ParseSeparatesGpusFromSwitchesAndAudio) {
  nlohmann::json j = facts_json(k_oses[0], k_gpus[6], DriverState::fresh);
  j["pci"].push_back({{"slot", "0000:00:1f.1"}, {"device", "0x10f0"}, {"class", "0x040300"}});
  Facts f = parse_facts(j);
  EXPECT_EQ(f.gpus.size(), 8u);
  EXPECT_EQ(f.nvswitch_count, 4);
  EXPECT_EQ(f.nvidia_devices.size(), 13u);
  EXPECT_EQ(f.oldest_generation(), GpuGeneration::hopper);
  EXPECT_THROW(parse_facts(nlohmann::json::array()), Error);
}

TEST(PlanFacts, UnknownGpuAssumesTuringOrNewerWithAWarning) {
  Plan p = plan_for(host("0x0042"), {});
  EXPECT_EQ(p.driver_branch, 595);
  ASSERT_FALSE(p.warnings.empty());
  EXPECT_NE(p.warnings[0].find("unrecognised"), std::string::npos);
}

}  // namespace
}  // namespace gm::provision
