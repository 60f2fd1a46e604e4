// The provisioning plan: which steps run on this host, with which driver branch and kernel module
// flavour, decided from the host's facts and the user's overrides alone (no I/O), so that
// `provision --dry-run` and the unit tests see exactly what a real run would do.
#pragma once

#include "provision/facts.h"
#include "provision/mirrors.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::provision {

/// Kernel module flavour of the NVIDIA driver.
enum class DriverFlavour { open, proprietary };
/// "open" or "proprietary".
std::string_view to_string(DriverFlavour flavour);
/// Inverse of to_string(); nullopt for anything else.
std::optional<DriverFlavour> parse_flavour(std::string_view text);

/// What the user may force (`--driver-branch`, `--driver-flavour`, `--verify-image`,
/// `--no-gsp`, the `--*-mirror` repositories).
struct Overrides {
  std::optional<int> driver_branch;
  std::optional<DriverFlavour> driver_flavour;
  /// Image for the container check; empty means the default (k_default_verify_image).
  std::string verify_image;
  /// false skips `docker run --gpus all` (hosts that can never pull images).
  bool verify_container = true;
  /// `--no-gsp`: proprietary modules loaded with GSP firmware off (NVreg_EnableGpuFirmware=0),
  /// the known workaround for GSP hangs on g4dn, g5 and g5g. Never a default.
  bool no_gsp = false;
  /// Repository mirrors (enterprise Artifactory/Nexus, a test's loopback repository).
  Mirrors mirrors;
};

/// The first branch without proprietary kernel modules (DIG 620 "Proprietary Kernel Modules
/// Removed").
inline constexpr int k_first_open_only_branch = 620;

/// Checks what needs no host: proprietary modules or --no-gsp with a branch that has none, and
/// the mirror URLs. Throws UsageError naming the flag. plan_for() checks it too.
void validate_overrides(const Overrides& overrides);

/// The choices a machine keeps (branch, flavour, no_gsp, mirrors) as JSON, for a record to carry
/// them to later runs and the boot-time prelude; empty when none is made.
nlohmann::json driver_overrides_to_json(const Overrides& overrides);
/// \a base with the choices in \a doc for each group \a base leaves unset: the driver choices
/// (branch, flavour, no_gsp) as one group, the mirrors as another. So a run that names a branch
/// keeps the machine's mirrors, and one that names a mirror keeps its branch. What \a doc holds
/// that this does not know is ignored.
Overrides driver_overrides_from_json(const nlohmann::json& doc, Overrides base = {});

/// A small image with no CUDA version requirement: the toolkit injects nvidia-smi, so it works on
/// every branch from 470 on (nvidia/cuda images refuse drivers older than their CUDA).
inline constexpr std::string_view k_default_verify_image = "ubuntu:24.04";

/// The steps, in the order they run.
enum class StepId { wait, facts, driver, reboot, fabric, docker, toolkit, verify };
/// "wait", "facts", "driver", ...
std::string_view to_string(StepId step);

/// One step of the plan.
struct PlannedStep {
  StepId id = StepId::wait;
  /// false: the facts already show it done (or it does not apply); no round trip is spent.
  bool run = true;
  /// Why it runs or why it is skipped, for the user.
  std::string reason;
  /// The script under src/ ("provision/scripts/ubuntu/driver.sh"); empty for skipped steps.
  std::string script;
};

/// The result of plan_for().
struct Plan {
  OsFamily os = OsFamily::unsupported;
  std::string host_description;  ///< "Ubuntu 24.04.1 LTS, kernel 6.8.0-1015-aws, x86_64".
  bool has_gpu = false;
  GpuGeneration generation = GpuGeneration::unknown;  ///< Oldest GPU's generation.
  int driver_branch = 0;                              ///< 470, 580, 595...; 0 without GPUs.
  DriverFlavour flavour = DriverFlavour::open;
  bool install_driver = false;  ///< false where a matching driver is already loaded.
  bool nvswitch = false;        ///< Fabric Manager needed.
  bool nvlsm = false;           ///< NVLink subnet manager needed (gen-4 NVSwitch, Hopper+).
  std::string verify_image;     ///< Empty: no container check.
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
  std::vector<PlannedStep> steps;
  /// GM_* parameters every script of this plan gets.
  std::map<std::string, std::string> env;

  /// The step with that id (every plan has all of them, run or skipped).
  const PlannedStep& step(StepId id) const;
};

/// The plan for a host. Throws UsageError for overrides the GPUs cannot use (proprietary modules
/// on Blackwell, open modules before Turing, a branch too new for the GPU) and UnsupportedError
/// for an operating system without a recipe.
Plan plan_for(const Facts& facts, const Overrides& overrides);

/// The plan as `provision --dry-run` prints it: the decisions, then each step with the commands
/// its script would run (taken from the scripts' own "# plan:" lines).
std::string render_plan(const Plan& plan);

/// The text sent to `bash -s` for one step: { GM_* parameters; lib.sh; the step's script(s); }
/// </dev/null. extra_env is added to (and overrides) the plan's parameters.
std::string compose_script(const Plan& plan, std::string_view step_name,
                           const std::vector<std::string>& scripts,
                           const std::map<std::string, std::string>& extra_env = {});

}  // namespace gm::provision
