// Helpers shared by several verbs.
#include "cli/verbs.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>

namespace gm::cli {

std::string gpu_summary(const MachineRecord& record) {
  if (record.facts.contains("probe") && record.facts["probe"].contains("summary")) {
    return record.facts["probe"]["summary"].get<std::string>();
  }
  const nlohmann::json* devices = nullptr;
  if (record.facts.contains("host") && record.facts["host"].contains("nvidia_pci_devices")) {
    devices = &record.facts["host"]["nvidia_pci_devices"];
  }
  if (devices == nullptr) {
    // Cloud drivers know the type's GPUs before any probe (ec2: DescribeInstanceTypes).
    if (record.facts.contains("instance_type") &&
        record.facts["instance_type"].value("gpu_count", 0) > 0) {
      const nlohmann::json& t = record.facts["instance_type"];
      return std::to_string(t["gpu_count"].get<int>()) + "x " + t.value("gpu_name", "GPU");
    }
    return "-";
  }
  // Count display/3D controllers only; NVSwitches and audio functions share vendor 10de.
  std::map<std::string, int> by_id;
  for (const auto& d : *devices) {
    std::string cls = d.value("class", "");
    if (cls.starts_with("0x0300") || cls.starts_with("0x0302")) {
      ++by_id[d.value("device_id", "?")];
    }
  }
  if (by_id.empty()) {
    return "-";
  }
  std::string out;
  for (const auto& [id, n] : by_id) {
    out += (out.empty() ? "" : ",") + std::to_string(n) +
           "x 10de:" + (id.starts_with("0x") ? id.substr(2) : id);
  }
  return out;
}

nlohmann::json machine_summary(const MachineRecord& record) {
  const nlohmann::json& cfg = record.driver_config;
  return {
      {"name", record.name},
      {"driver", record.driver},
      {"state", record.last_state.empty() ? "unknown" : record.last_state},
      {"ip", record.ssh.host.empty() ? nlohmann::json(nullptr) : nlohmann::json(record.ssh.host)},
      {"ssh_port", record.ssh.port},
      {"ssh_user", record.ssh.user},
      {"region", cfg.contains("region") ? cfg["region"] : nlohmann::json(nullptr)},
      {"instance_type",
       cfg.contains("instance_type") ? cfg["instance_type"] : nlohmann::json(nullptr)},
      {"gpu", gpu_summary(record)},
      {"created_at", record.created_at},
  };
}

bool confirm(const Context& ctx, const std::string& question) {
  if (ctx.globals().yes) {
    return true;
  }
  if (::isatty(STDIN_FILENO) != 1 || ::isatty(STDERR_FILENO) != 1) {
    return false;
  }
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace gm::cli
