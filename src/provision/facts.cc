#include "provision/facts.h"

#include "gm/error.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <utility>

namespace gm::provision {

namespace {

struct KnownDevice {
  std::uint16_t id;
  GpuGeneration generation;
};

// The GPUs EC2 and common hosts carry (ids from the PCI id registry).
constexpr std::array k_known_devices = {
    KnownDevice{0x102d, GpuGeneration::kepler},     // K80
    KnownDevice{0x13f2, GpuGeneration::maxwell},    // M60
    KnownDevice{0x1db1, GpuGeneration::volta},      // V100 SXM2 16 GB
    KnownDevice{0x1db4, GpuGeneration::volta},      // V100 PCIe 16 GB
    KnownDevice{0x1db5, GpuGeneration::volta},      // V100 SXM2 32 GB
    KnownDevice{0x1eb8, GpuGeneration::turing},     // T4
    KnownDevice{0x2237, GpuGeneration::ampere},     // A10G
    KnownDevice{0x20b0, GpuGeneration::ampere},     // A100 SXM4 40 GB
    KnownDevice{0x20b2, GpuGeneration::ampere},     // A100 SXM4 80 GB
    KnownDevice{0x20f1, GpuGeneration::ampere},     // A100 PCIe 40 GB
    KnownDevice{0x27b8, GpuGeneration::ada},        // L4
    KnownDevice{0x26b9, GpuGeneration::ada},        // L40S
    KnownDevice{0x2330, GpuGeneration::hopper},     // H100 SXM5 80 GB
    KnownDevice{0x2331, GpuGeneration::hopper},     // H100 PCIe
    KnownDevice{0x2339, GpuGeneration::hopper},     // H100 SXM5 94 GB
    KnownDevice{0x2335, GpuGeneration::hopper},     // H200
    KnownDevice{0x2901, GpuGeneration::blackwell},  // B200
};

struct IdRange {
  std::uint16_t first;
  std::uint16_t last;
  GpuGeneration generation;
};

// NVIDIA hands out device ids in blocks per generation; this catches GPUs the table lacks.
constexpr std::array k_id_ranges = {
    IdRange{0x0fc0, 0x12ff, GpuGeneration::kepler},
    IdRange{0x1340, 0x13ff, GpuGeneration::maxwell},
    IdRange{0x1400, 0x14ff, GpuGeneration::maxwell},
    IdRange{0x1500, 0x15ff, GpuGeneration::pascal},
    IdRange{0x1600, 0x17ff, GpuGeneration::maxwell},
    IdRange{0x1b00, 0x1cff, GpuGeneration::pascal},
    IdRange{0x1d80, 0x1dff, GpuGeneration::volta},
    IdRange{0x1e00, 0x1fff, GpuGeneration::turing},
    IdRange{0x2080, 0x20ff, GpuGeneration::ampere},
    IdRange{0x2100, 0x21ff, GpuGeneration::turing},
    IdRange{0x2200, 0x22ff, GpuGeneration::ampere},
    IdRange{0x2300, 0x23ff, GpuGeneration::hopper},
    IdRange{0x2400, 0x25ff, GpuGeneration::ampere},
    IdRange{0x2600, 0x28ff, GpuGeneration::ada},
    IdRange{0x2900, 0x29ff, GpuGeneration::blackwell},
    IdRange{0x2b00, 0x2cff, GpuGeneration::blackwell},
};

constexpr std::array<std::uint16_t, 2> k_nvswitch_ids = {0x1af1, 0x22a3};

template <typename T>
T parse_hex(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
  }
  T value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return value;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool flag(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

const nlohmann::json& object(const nlohmann::json& j, const char* key) {
  static const nlohmann::json empty = nlohmann::json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

}  // namespace

std::string_view to_string(GpuGeneration generation) {
  switch (generation) {
    case GpuGeneration::kepler:
      return "kepler";
    case GpuGeneration::maxwell:
      return "maxwell";
    case GpuGeneration::pascal:
      return "pascal";
    case GpuGeneration::volta:
      return "volta";
    case GpuGeneration::turing:
      return "turing";
    case GpuGeneration::ampere:
      return "ampere";
    case GpuGeneration::ada:
      return "ada";
    case GpuGeneration::hopper:
      return "hopper";
    case GpuGeneration::blackwell:
      return "blackwell";
    case GpuGeneration::unknown:
      break;
  }
  return "unknown";
}

GpuGeneration generation_for_device_id(std::uint16_t device_id) {
  for (const KnownDevice& d : k_known_devices) {
    if (d.id == device_id) {
      return d.generation;
    }
  }
  if (is_nvswitch_device_id(device_id)) {
    return GpuGeneration::unknown;
  }
  for (const IdRange& r : k_id_ranges) {
    if (device_id >= r.first && device_id <= r.last) {
      return r.generation;
    }
  }
  return GpuGeneration::unknown;
}

bool is_nvswitch_device_id(std::uint16_t device_id) {
  return std::find(k_nvswitch_ids.begin(), k_nvswitch_ids.end(), device_id) != k_nvswitch_ids.end();
}

bool is_nvswitch(std::uint16_t device_id, std::uint32_t class_code) {
  return is_nvswitch_device_id(device_id) || (class_code >> 8) == 0x0680;
}

std::string_view to_string(OsFamily os) {
  switch (os) {
    case OsFamily::ubuntu:
      return "ubuntu";
    case OsFamily::debian:
      return "debian";
    case OsFamily::al2023:
      return "al2023";
    case OsFamily::unsupported:
      break;
  }
  return "unsupported";
}

namespace {
// The releases with a recipe: os-release ID and VERSION_ID, in the order the hint names them.
struct OsRecipe {
  std::string_view id;
  std::string_view version;
  std::string_view name;
  OsFamily family;
};
constexpr OsRecipe k_os_recipes[] = {
    {"ubuntu", "22.04", "Ubuntu", OsFamily::ubuntu},
    {"ubuntu", "24.04", "Ubuntu", OsFamily::ubuntu},
    {"ubuntu", "26.04", "Ubuntu", OsFamily::ubuntu},
    {"debian", "12", "Debian", OsFamily::debian},
    {"debian", "13", "Debian", OsFamily::debian},
    {"amzn", "2023", "Amazon Linux", OsFamily::al2023},
};
}  // namespace

OsFamily Facts::os_family() const {
  for (const OsRecipe& r : k_os_recipes) {
    if (os_id == r.id && os_version_id == r.version) {
      return r.family;
    }
  }
  return OsFamily::unsupported;
}

std::string supported_systems() {
  // "Ubuntu 22.04, 24.04 or 26.04, Debian 12 or 13, or Amazon Linux 2023"
  std::vector<std::string> groups;
  for (size_t i = 0; i < std::size(k_os_recipes);) {
    size_t end = i;
    while (end < std::size(k_os_recipes) && k_os_recipes[end].name == k_os_recipes[i].name) {
      ++end;
    }
    std::string group(k_os_recipes[i].name);
    for (size_t v = i; v < end; ++v) {
      group += (v == i ? " " : v + 1 == end ? " or " : ", ") + std::string(k_os_recipes[v].version);
    }
    groups.push_back(std::move(group));
    i = end;
  }
  std::string out;
  for (size_t g = 0; g < groups.size(); ++g) {
    out += (g == 0 ? "" : g + 1 == groups.size() ? ", or " : ", ") + groups[g];
  }
  return out;
}

GpuGeneration Facts::oldest_generation() const {
  if (gpus.empty()) {
    return GpuGeneration::unknown;
  }
  // Unknown GPUs do not vote: an unrecognised id must not drag the branch down to Kepler.
  GpuGeneration oldest = GpuGeneration::unknown;
  for (const Gpu& g : gpus) {
    if (g.generation != GpuGeneration::unknown &&
        (oldest == GpuGeneration::unknown || g.generation < oldest)) {
      oldest = g.generation;
    }
  }
  return oldest;
}

GpuGeneration Facts::newest_generation() const {
  GpuGeneration newest = GpuGeneration::unknown;
  for (const Gpu& g : gpus) {
    newest = std::max(newest, g.generation);
  }
  return newest;
}

bool Facts::driver_consistent() const {
  return !loaded_driver_version.empty() && loaded_driver_version == userspace_driver_version;
}

Facts parse_facts(const nlohmann::json& json) {
  if (!json.is_object()) {
    throw Error("facts", "the facts script did not print a JSON object", json.dump());
  }
  Facts f;
  f.raw = json;
  const nlohmann::json& os = object(json, "os");
  f.os_id = str(os, "id");
  f.os_version_id = str(os, "version_id");
  f.os_codename = str(os, "codename");
  f.os_pretty_name = str(os, "pretty_name");
  f.kernel = str(json, "kernel");
  f.arch = str(json, "arch");
  f.user = str(json, "user");
  if (auto it = json.find("uid"); it != json.end() && it->is_number_integer()) {
    f.uid = it->get<int>();
  }
  f.package_manager = str(json, "package_manager");
  if (auto it = json.find("pci"); it != json.end() && it->is_array()) {
    for (const nlohmann::json& d : *it) {
      PciDevice dev{str(d, "slot"), parse_hex<std::uint16_t>(str(d, "device")),
                    parse_hex<std::uint32_t>(str(d, "class"))};
      f.nvidia_devices.push_back(dev);
      if (is_nvswitch(dev.device_id, dev.class_code)) {
        ++f.nvswitch_count;
      } else if ((dev.class_code >> 16) == 0x03) {  // display controllers: VGA 0300, 3D 0302
        f.gpus.push_back({dev.slot, dev.device_id, generation_for_device_id(dev.device_id)});
      }
    }
  }
  f.secure_boot = str(json, "secure_boot").empty() ? "unknown" : str(json, "secure_boot");
  f.nouveau_loaded = flag(json, "nouveau_loaded");
  const nlohmann::json& driver = object(json, "driver");
  f.loaded_driver_version = str(driver, "loaded_version");
  f.loaded_flavour = str(driver, "loaded_flavour");
  f.userspace_driver_version = str(driver, "userspace_version");
  f.module_version = str(driver, "module_version");
  f.smi_error = str(driver, "smi_error");
  f.gsp_param = str(driver, "gsp_param");
  f.reboot_required = flag(json, "reboot_required");
  f.dlami = flag(json, "dlami");
  f.cloud_init = flag(json, "cloud_init");
  const nlohmann::json& docker = object(json, "docker");
  f.docker_installed = flag(docker, "installed");
  f.docker_version = str(docker, "version");
  f.docker_active = flag(docker, "active");
  f.user_in_docker_group = flag(docker, "user_in_group");
  const nlohmann::json& toolkit = object(json, "toolkit");
  f.toolkit_installed = flag(toolkit, "installed");
  f.toolkit_version = str(toolkit, "version");
  f.docker_nvidia_runtime = flag(toolkit, "docker_runtime");
  return f;
}

nlohmann::json to_json(const Facts& facts) {
  nlohmann::json j = facts.raw;
  nlohmann::json gpus = nlohmann::json::array();
  for (const Gpu& g : facts.gpus) {
    char id[8];
    std::snprintf(id, sizeof id, "%04x", g.device_id);
    gpus.push_back({{"slot", g.slot}, {"device_id", id}, {"generation", to_string(g.generation)}});
  }
  j["gpus"] = std::move(gpus);
  j["nvswitch_count"] = facts.nvswitch_count;
  j["os_family"] = to_string(facts.os_family());
  return j;
}

}  // namespace gm::provision
