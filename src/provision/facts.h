// Host facts the provisioner plans from: what the facts script (scripts/facts.sh) prints as JSON,
// parsed into values, plus the PCI device id -> GPU generation table.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gm::provision {

/// NVIDIA GPU architecture generations, oldest first (so they compare by age).
enum class GpuGeneration {
  unknown,
  kepler,
  maxwell,
  pascal,
  volta,
  turing,
  ampere,
  ada,
  hopper,
  blackwell
};

/// Lowercase name ("turing").
std::string_view to_string(GpuGeneration generation);
/// The generation of an NVIDIA GPU by PCI device id: the known table first, then the id ranges
/// NVIDIA allocates per generation; unknown for anything else.
GpuGeneration generation_for_device_id(std::uint16_t device_id);
/// True when the id names an NVSwitch (0x1af1 gen-3 for A100, 0x22a3 gen-4 for H100/H200).
bool is_nvswitch_device_id(std::uint16_t device_id);
/// True for an NVIDIA PCI function that is an NVSwitch: a known id, or any NVIDIA device of
/// class 0680 ("bridge, other"), which is how NVSwitches of every generation (B200's too)
/// appear and how NVIDIA's Fabric Manager guide counts them.
bool is_nvswitch(std::uint16_t device_id, std::uint32_t class_code);

/// The operating systems the provisioner has recipes for.
enum class OsFamily { ubuntu, debian, al2023, unsupported };
/// "ubuntu", "debian", "al2023", "unsupported".
std::string_view to_string(OsFamily os);
/// The releases with a recipe, for hints: "Ubuntu 22.04, 24.04 or 26.04, Debian 12 or 13, or
/// Amazon Linux 2023".
std::string supported_systems();

/// One NVIDIA PCI function (vendor 10de).
struct PciDevice {
  std::string slot;              ///< "0000:00:1e.0".
  std::uint16_t device_id = 0;   ///< 0x1eb8.
  std::uint32_t class_code = 0;  ///< 0x030200 (3D controller), 0x068000 (bridge: NVSwitch).
};

/// One GPU with its generation.
struct Gpu {
  std::string slot;
  std::uint16_t device_id = 0;
  GpuGeneration generation = GpuGeneration::unknown;
};

/// Everything the plan depends on, gathered in one remote round trip.
struct Facts {
  std::string os_id;          ///< "ubuntu", "debian", "amzn".
  std::string os_version_id;  ///< "24.04", "12", "2023".
  std::string os_codename;    ///< "noble", "bookworm", empty on AL2023.
  std::string os_pretty_name;
  std::string kernel;  ///< uname -r.
  std::string arch;    ///< uname -m.
  std::string user;    ///< The login user (joins the docker group).
  int uid = -1;
  std::string package_manager;  ///< "apt", "dnf" or "none".

  std::vector<PciDevice> nvidia_devices;  ///< Every vendor-10de function, GPUs and switches.
  std::vector<Gpu> gpus;                  ///< The display/3D controllers among them.
  int nvswitch_count = 0;

  std::string secure_boot = "unknown";  ///< "enabled", "disabled", "unsupported", "unknown".
  bool nouveau_loaded = false;
  std::string loaded_driver_version;  ///< /sys/module/nvidia/version; empty when not loaded.
  std::string loaded_flavour;         ///< "open" or "proprietary" from /proc/driver/nvidia/version.
  std::string userspace_driver_version;  ///< nvidia-smi or libnvidia-ml's version; empty if none.
  std::string module_version;            ///< modinfo -F version nvidia (on disk for this kernel).
  std::string smi_error;                 ///< First line nvidia-smi printed when it failed.
  std::string gsp_param;  ///< Loaded module's EnableGpuFirmware ("0": GSP off); "" if unknown.
  bool reboot_required = false;  ///< /var/run/reboot-required, dnf needs-restarting -r.
  bool dlami = false;            ///< AWS Deep Learning AMI (/opt/dlami).
  bool cloud_init = false;

  bool docker_installed = false;
  std::string docker_version;
  bool docker_active = false;
  bool user_in_docker_group = false;
  bool toolkit_installed = false;
  std::string toolkit_version;
  bool docker_nvidia_runtime = false;  ///< /etc/docker/daemon.json names the nvidia runtime.

  nlohmann::json raw = nlohmann::json::object();  ///< The script's JSON as received.

  /// Which recipe applies (from os_id / version).
  OsFamily os_family() const;
  bool has_gpu() const { return !gpus.empty(); }
  /// The oldest generation among the GPUs (it decides the branch); unknown without GPUs.
  GpuGeneration oldest_generation() const;
  /// The newest generation among the GPUs (Blackwell forces the open modules).
  GpuGeneration newest_generation() const;
  /// A driver is loaded and nvidia-smi's userspace agrees with it.
  bool driver_consistent() const;
};

/// Parses the facts script's JSON. Missing fields keep their defaults; throws gm::Error when the
/// text is not a JSON object.
Facts parse_facts(const nlohmann::json& json);
/// The facts as stored in MachineRecord::facts["host"] (the raw JSON plus derived GPU fields).
nlohmann::json to_json(const Facts& facts);

}  // namespace gm::provision
