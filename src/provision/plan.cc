#include "provision/plan.h"

#include "gm/error.h"
#include "util/assets.h"
#include "util/shell.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace gm::provision {

namespace {

constexpr std::string_view k_scripts = "provision/scripts/";

int branch_of(std::string_view version) {
  int major = 0;
  std::from_chars(version.data(), version.data() + version.size(), major);
  return major;
}

bool is_pre_turing(GpuGeneration g) {
  return g != GpuGeneration::unknown && g < GpuGeneration::turing;
}

std::string script_path(std::string_view relative) {
  return std::string(k_scripts) + std::string(relative);
}

// The branch and flavour the GPUs call for when the user forces nothing.
std::pair<int, DriverFlavour> default_driver(GpuGeneration oldest) {
  switch (oldest) {
    case GpuGeneration::kepler:
      return {470, DriverFlavour::proprietary};
    case GpuGeneration::maxwell:
    case GpuGeneration::pascal:
    case GpuGeneration::volta:
      return {580, DriverFlavour::proprietary};
    default:
      return {595, DriverFlavour::open};
  }
}

// Throws when the forced branch/flavour cannot drive these GPUs; the subject is the flag.
void check_overrides(GpuGeneration oldest, GpuGeneration newest, int branch, DriverFlavour flavour,
                     const Overrides& o) {
  const std::string oldest_name(to_string(oldest));
  if (newest == GpuGeneration::blackwell && is_pre_turing(oldest)) {
    throw UsageError("host",
                     "Blackwell GPUs need the open kernel modules and " + oldest_name +
                         " GPUs the proprietary ones; one driver cannot serve both",
                     "provision a host with one kind of GPU");
  }
  if (flavour == DriverFlavour::proprietary && newest == GpuGeneration::blackwell) {
    throw UsageError("--driver-flavour proprietary",
                     "Blackwell GPUs work only with the open kernel modules",
                     "drop --driver-flavour, or pass --driver-flavour open");
  }
  if (flavour == DriverFlavour::open && is_pre_turing(oldest)) {
    throw UsageError("--driver-flavour open",
                     oldest_name +
                         " GPUs need the proprietary kernel modules (the open ones "
                         "need Turing or newer)",
                     "drop --driver-flavour, or pass --driver-flavour proprietary");
  }
  if (!o.driver_branch) {
    return;
  }
  const std::string flag = "--driver-branch " + std::to_string(branch);
  if (oldest == GpuGeneration::kepler && branch != 470) {
    throw UsageError(flag, "Kepler GPUs (K80) are supported only by the 470 branch",
                     "pass --driver-branch 470, or drop it");
  }
  if (is_pre_turing(oldest) && oldest != GpuGeneration::kepler && branch > 580) {
    throw UsageError(flag, "branch 580 is the last to support " + oldest_name + " GPUs",
                     "pass --driver-branch 580, or drop it");
  }
  if (branch < 470) {
    throw UsageError(flag, "branches older than 470 are not supported",
                     "pass a current branch such as 580 or 595, or drop it");
  }
  if (flavour == DriverFlavour::open && branch < 515) {
    throw UsageError(flag, "the open kernel modules exist from branch 515 on",
                     "pass --driver-flavour proprietary, or a newer branch");
  }
}

// A loaded driver is kept when it works (module and userspace agree) and satisfies everything the
// user forced and the GPUs need; replacing a working driver unasked would only risk the host.
bool loaded_driver_matches(const Facts& f, const Overrides& o, GpuGeneration oldest,
                           GpuGeneration newest) {
  if (!f.driver_consistent()) {
    return false;
  }
  const int loaded = branch_of(f.loaded_driver_version);
  if (o.driver_branch && *o.driver_branch != loaded) {
    return false;
  }
  if (o.driver_flavour && to_string(*o.driver_flavour) != f.loaded_flavour) {
    return false;
  }
  if (oldest == GpuGeneration::kepler && loaded != 470) {
    return false;
  }
  if (is_pre_turing(oldest) && loaded > 580) {
    return false;
  }
  if (newest == GpuGeneration::blackwell && f.loaded_flavour != "open") {
    return false;
  }
  if (o.no_gsp && (f.loaded_flavour != "proprietary" || f.gsp_param != "0")) {
    return false;
  }
  return true;
}

PlannedStep make_step(StepId id, bool run, std::string reason, std::string script = {}) {
  return PlannedStep{id, run, std::move(reason), run ? std::move(script) : std::string()};
}

std::string with_os_dir(OsFamily os, std::string_view name, bool apt_shared) {
  if (os == OsFamily::al2023) {
    return script_path("al2023/" + std::string(name));
  }
  if (apt_shared) {
    return script_path("apt/" + std::string(name));
  }
  return script_path(std::string(to_string(os)) + "/" + std::string(name));
}

// Replaces ${NAME} with env's value (unknown names are left as they are).
std::string substitute(std::string_view text, const std::map<std::string, std::string>& env) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 2, "${") == 0) {
      size_t end = text.find('}', i);
      if (end != std::string_view::npos) {
        auto it = env.find(std::string(text.substr(i + 2, end - i - 2)));
        if (it != env.end()) {
          out += it->second;
          i = end + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace

std::string_view to_string(DriverFlavour flavour) {
  return flavour == DriverFlavour::open ? "open" : "proprietary";
}

std::optional<DriverFlavour> parse_flavour(std::string_view text) {
  if (text == "open") {
    return DriverFlavour::open;
  }
  if (text == "proprietary") {
    return DriverFlavour::proprietary;
  }
  return std::nullopt;
}

std::string_view to_string(StepId step) {
  switch (step) {
    case StepId::wait:
      return "wait";
    case StepId::facts:
      return "facts";
    case StepId::driver:
      return "driver";
    case StepId::fabric:
      return "fabric";
    case StepId::reboot:
      return "reboot";
    case StepId::docker:
      return "docker";
    case StepId::toolkit:
      return "toolkit";
    case StepId::verify:
      return "verify";
  }
  return "?";
}

const PlannedStep& Plan::step(StepId id) const {
  for (const PlannedStep& s : steps) {
    if (s.id == id) {
      return s;
    }
  }
  throw std::out_of_range("plan has no step " + std::string(to_string(id)));
}

nlohmann::json driver_overrides_to_json(const Overrides& o) {
  nlohmann::json j = nlohmann::json::object();
  if (o.driver_branch) {
    j["driver_branch"] = *o.driver_branch;
  }
  if (o.driver_flavour) {
    j["driver_flavour"] = std::string(to_string(*o.driver_flavour));
  }
  if (o.no_gsp) {
    j["no_gsp"] = true;
  }
  mirrors_to_json(o.mirrors, j);
  return j;
}

Overrides driver_overrides_from_json(const nlohmann::json& j, Overrides base) {
  Overrides o = std::move(base);
  if (!j.is_object()) {
    return o;
  }
  if (!o.driver_branch && !o.driver_flavour && !o.no_gsp) {
    if (auto it = j.find("driver_branch"); it != j.end() && it->is_number_integer()) {
      o.driver_branch = it->get<int>();
    }
    if (auto it = j.find("driver_flavour"); it != j.end() && it->is_string()) {
      o.driver_flavour = parse_flavour(it->get<std::string>());
    }
    if (auto it = j.find("no_gsp"); it != j.end() && it->is_boolean()) {
      o.no_gsp = it->get<bool>();
    }
  }
  if (o.mirrors.empty()) {
    o.mirrors = mirrors_from_json(j);
  }
  return o;
}

void validate_overrides(const Overrides& o) {
  checked_mirrors(o.mirrors);
  if (!o.driver_branch || *o.driver_branch < k_first_open_only_branch) {
    return;
  }
  const std::string branch = std::to_string(*o.driver_branch);
  const std::string problem = "branch " + branch +
                              " has no proprietary kernel modules (NVIDIA removed them from " +
                              std::to_string(k_first_open_only_branch) + " on)";
  if (o.no_gsp) {
    throw UsageError("--no-gsp", problem + ", and only those can turn GSP off",
                     "pass --driver-branch 595 (or 580) with --no-gsp, or drop --no-gsp");
  }
  if (o.driver_flavour == DriverFlavour::proprietary) {
    throw UsageError("--driver-flavour proprietary", problem,
                     "pass --driver-branch 595 (or 580) for proprietary modules, or drop "
                     "--driver-flavour");
  }
}

Plan plan_for(const Facts& f, const Overrides& o) {
  validate_overrides(o);
  Plan plan;
  plan.os = f.os_family();
  plan.host_description =
      (f.os_pretty_name.empty() ? f.os_id + " " + f.os_version_id : f.os_pretty_name) +
      ", kernel " + f.kernel + ", " + f.arch;
  if (plan.os == OsFamily::unsupported) {
    throw UnsupportedError(
        "host",
        "no provisioning recipe for " + (f.os_pretty_name.empty()
                                             ? "\"" + f.os_id + " " + f.os_version_id + "\""
                                             : f.os_pretty_name),
        "use " + supported_systems());
  }
  plan.has_gpu = f.has_gpu();
  plan.env = {{"GM_OS_ID", f.os_id},
              {"GM_OS_VERSION", f.os_version_id},
              {"GM_HAS_GPU", plan.has_gpu ? "1" : "0"}};
  add_mirror_env(o.mirrors, plan.env);
  if (!f.user.empty()) {
    plan.env["GM_USER"] = f.user;
  }
  if (f.dlami) {
    plan.notes.push_back("AWS Deep Learning AMI: driver, Docker and the toolkit come preinstalled");
  }

  plan.steps.push_back(make_step(StepId::wait, true, "cloud-init and the package manager's lock",
                                 script_path("wait.sh")));
  plan.steps.push_back(
      make_step(StepId::facts, true, "one read-only look at the host", script_path("facts.sh")));

  if (!plan.has_gpu) {
    plan.notes.push_back("no NVIDIA GPU on this host");
    for (StepId id : {StepId::driver, StepId::reboot, StepId::fabric}) {
      plan.steps.push_back(make_step(id, false, "no NVIDIA GPU"));
    }
  } else {
    GpuGeneration oldest = f.oldest_generation();
    GpuGeneration newest = f.newest_generation();
    if (oldest == GpuGeneration::unknown) {
      plan.warnings.push_back("unrecognised NVIDIA GPU; assuming Turing or newer");
      oldest = GpuGeneration::turing;
      newest = std::max(newest, GpuGeneration::turing);
    }
    plan.generation = oldest;
    auto [branch, flavour] = default_driver(oldest);
    if (o.driver_branch) {
      branch = *o.driver_branch;
    }
    if (o.driver_flavour) {
      flavour = *o.driver_flavour;
    }
    if (o.no_gsp) {
      // GSP firmware can be turned off only in the proprietary modules.
      if (o.driver_flavour == DriverFlavour::open) {
        throw UsageError("--no-gsp", "the open kernel modules always run the GSP firmware",
                         "drop --driver-flavour open (--no-gsp uses the proprietary modules)");
      }
      if (newest == GpuGeneration::blackwell) {
        throw UsageError("--no-gsp", "Blackwell GPUs need the open modules, which need GSP",
                         "drop --no-gsp");
      }
      flavour = DriverFlavour::proprietary;
    }
    check_overrides(oldest, newest, branch, flavour, o);
    if (oldest == GpuGeneration::kepler) {
      plan.warnings.push_back(
          "Kepler GPUs (K80) need the 470 branch, which NVIDIA no longer maintains (end of life; "
          "CUDA 11.4 at most)");
    }
    if (f.secure_boot == "enabled" && plan.os != OsFamily::ubuntu) {
      plan.warnings.push_back(
          "Secure Boot is on: DKMS-built modules will not load; only Ubuntu's precompiled signed "
          "modules do");
    }

    const bool keep = loaded_driver_matches(f, o, oldest, newest);
    plan.install_driver = !keep;
    if (keep) {
      plan.driver_branch = branch_of(f.loaded_driver_version);
      plan.flavour = f.loaded_flavour == "open" ? DriverFlavour::open : DriverFlavour::proprietary;
      if (plan.driver_branch != branch && !o.driver_branch) {
        plan.notes.push_back("keeping the loaded driver " + f.loaded_driver_version +
                             " (pass --driver-branch " + std::to_string(branch) +
                             " to replace it)");
      }
      plan.steps.push_back(
          make_step(StepId::driver, false,
                    "driver " + f.loaded_driver_version + " (" + f.loaded_flavour + ") is loaded"));
    } else {
      plan.driver_branch = branch;
      plan.flavour = flavour;
      std::string reason =
          "install driver " + std::to_string(branch) + " (" + std::string(to_string(flavour)) + ")";
      if (!f.loaded_driver_version.empty()) {
        reason += "; " + f.loaded_driver_version + " is loaded";
      }
      plan.steps.push_back(
          make_step(StepId::driver, true, reason, with_os_dir(plan.os, "driver.sh", false)));
    }

    std::vector<std::string> why;
    if (f.nouveau_loaded) {
      why.push_back("nouveau is loaded");
    }
    if (!f.loaded_driver_version.empty() && !f.userspace_driver_version.empty() &&
        f.loaded_driver_version != f.userspace_driver_version) {
      why.push_back("module " + f.loaded_driver_version + " is loaded but the driver is " +
                    f.userspace_driver_version);
    }
    if (plan.install_driver) {
      why.push_back(f.reboot_required ? "a kernel update is pending"
                                      : "if the new module cannot simply be loaded");
    } else if (f.loaded_driver_version.empty() && !f.userspace_driver_version.empty()) {
      why.push_back("the driver is installed but not loaded");
    }
    if (why.empty()) {
      plan.steps.push_back(
          make_step(StepId::reboot, false, "the driver is loaded; nothing pending"));
    } else {
      std::string reason;
      for (const std::string& w : why) {
        reason += (reason.empty() ? "" : "; ") + w;
      }
      plan.steps.push_back(make_step(StepId::reboot, true, reason, script_path("reboot.sh")));
    }

    plan.nvswitch = f.nvswitch_count > 0;
    plan.nvlsm = plan.nvswitch && newest >= GpuGeneration::hopper;
    if (plan.nvswitch) {
      plan.steps.push_back(make_step(StepId::fabric, true,
                                     std::to_string(f.nvswitch_count) +
                                         " NVSwitch: Fabric Manager" +
                                         (plan.nvlsm ? " and the NVLink subnet manager" : ""),
                                     script_path("fabric.sh")));
    } else {
      plan.steps.push_back(make_step(StepId::fabric, false, "no NVSwitch"));
    }

    plan.env["GM_BRANCH"] = std::to_string(plan.driver_branch);
    plan.env["GM_FLAVOUR"] = std::string(to_string(plan.flavour));
    plan.env["GM_NO_GSP"] = o.no_gsp ? "1" : "0";
    plan.env["GM_NVSWITCH"] = plan.nvswitch ? "1" : "0";
    plan.env["GM_NVLSM"] = plan.nvlsm ? "1" : "0";
    // Only the "# plan:" lines use these; they name what the scripts compute themselves.
    const bool open = plan.flavour == DriverFlavour::open;
    plan.env["GM_OPEN_SUFFIX"] = open ? "-open" : "";
    plan.env["GM_DKMS_PACKAGE"] = open ? "nvidia-open" : "cuda-drivers";
    plan.env["GM_DNF_STREAM"] = std::to_string(plan.driver_branch) + (open ? "-open" : "-dkms");
    plan.env["GM_KMOD_PACKAGE"] = open ? "kmod-nvidia-open-dkms" : "kmod-nvidia-latest-dkms";
  }

  if (f.docker_installed && f.docker_active && f.user_in_docker_group) {
    plan.steps.push_back(
        make_step(StepId::docker, false, "docker " + f.docker_version + " is running"));
  } else {
    plan.steps.push_back(make_step(
        StepId::docker, true,
        f.docker_installed ? "enable docker and the docker group" : "install Docker Engine",
        with_os_dir(plan.os, "docker.sh", true)));
  }

  if (!plan.has_gpu) {
    plan.steps.push_back(make_step(StepId::toolkit, false, "no NVIDIA GPU"));
  } else if (f.toolkit_installed && f.docker_nvidia_runtime) {
    plan.steps.push_back(make_step(StepId::toolkit, false,
                                   "toolkit " + f.toolkit_version + " configured for docker"));
  } else {
    plan.steps.push_back(make_step(StepId::toolkit, true,
                                   f.toolkit_installed ? "configure the nvidia runtime for docker"
                                                       : "install the NVIDIA Container Toolkit",
                                   with_os_dir(plan.os, "toolkit.sh", true)));
  }

  if (plan.has_gpu && o.verify_container) {
    plan.verify_image =
        o.verify_image.empty() ? std::string(k_default_verify_image) : o.verify_image;
  }
  plan.env["GM_IMAGE"] = plan.verify_image;
  plan.steps.push_back(make_step(StepId::verify, true,
                                 plan.has_gpu ? "nvidia-smi, docker, a GPU container" : "docker",
                                 script_path("verify.sh")));
  return plan;
}

std::string render_plan(const Plan& plan) {
  std::ostringstream out;
  out << "host: " << plan.host_description << "\n";
  if (plan.has_gpu) {
    out << "gpu: " << to_string(plan.generation) << (plan.nvswitch ? ", NVSwitch" : "") << "\n";
    out << "driver: " << plan.driver_branch << " (" << to_string(plan.flavour) << ")"
        << (plan.install_driver ? "" : ", already loaded") << "\n";
  }
  for (const std::string& w : plan.warnings) {
    out << "warning: " << w << "\n";
  }
  for (const std::string& n : plan.notes) {
    out << "note: " << n << "\n";
  }
  out << "steps:\n";
  // Values only the host or the options know, named for the reader.
  std::map<std::string, std::string> shown = plan.env;
  shown.emplace("GM_USER", "<ssh user>");
  shown.emplace("GM_WAIT_TIMEOUT", "<wait timeout>");
  int number = 0;
  for (const PlannedStep& s : plan.steps) {
    out << "  " << ++number << ". " << to_string(s.id) << (s.run ? "" : " (skip)") << ": "
        << s.reason << "\n";
    if (!s.run) {
      continue;
    }
    std::istringstream script{std::string(util::asset(s.script))};
    std::string line;
    while (std::getline(script, line)) {
      constexpr std::string_view k_marker = "# plan: ";
      if (line.starts_with(k_marker)) {
        out << "       $ " << substitute(std::string_view(line).substr(k_marker.size()), shown)
            << "\n";
      }
    }
  }
  return out.str();
}

std::string compose_script(const Plan& plan, std::string_view step_name,
                           const std::vector<std::string>& scripts,
                           const std::map<std::string, std::string>& extra_env) {
  std::map<std::string, std::string> env = plan.env;
  for (const auto& [k, v] : extra_env) {
    env[k] = v;
  }
  env["GM_STEP"] = std::string(step_name);
  // The braces make bash read everything before running anything (see lib.sh).
  std::string text = "{\n";
  for (const auto& [k, v] : env) {
    text += k + "=" + util::shell_quote(v) + "\n";
  }
  text += util::asset(script_path("lib.sh"));
  for (const std::string& s : scripts) {
    text += "\n";
    text += util::asset(s);
  }
  text += "\n} </dev/null\n";
  return text;
}

}  // namespace gm::provision
