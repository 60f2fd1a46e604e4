// Helpers shared by several verbs.
#include "cli/verbs.h"

#include "machine/setup.h"
#include "util/prompt.h"

#include <map>

namespace gm::cli {

std::string gpu_summary(const MachineRecord& record) {
  if (record.facts.contains("probe") && record.facts["probe"].contains("summary")) {
    return record.facts["probe"]["summary"].get<std::string>();
  }
  std::map<std::string, int> by_id = machine::nvidia_gpus_on_pci(record);
  if (by_id.empty()) {
    // Cloud drivers know the type's GPUs before any probe (ec2: DescribeInstanceTypes).
    if (std::optional<int> n = machine::expected_gpus(record)) {
      return std::to_string(*n) + "x " +
             (record.size.gpu_model.empty() ? std::string("GPU") : record.size.gpu_model);
    }
    return "-";
  }
  std::string out;
  for (const auto& [id, n] : by_id) {
    out += (out.empty() ? "" : ",") + std::to_string(n) + "x 10de:" + id;
  }
  return out;
}

nlohmann::json machine_summary(const MachineRecord& record) {
  auto or_null = [](const std::string& s) {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
  };
  return {
      {"name", record.name},
      {"driver", record.driver},
      {"state", record.last_state.empty() ? "unknown" : record.last_state},
      {"ip", record.ssh.host.empty() ? nlohmann::json(nullptr) : nlohmann::json(record.ssh.host)},
      {"ssh_port", record.ssh.port},
      {"ssh_user", record.ssh.user},
      {"region", or_null(record.size.region)},
      {"instance_type", or_null(record.size.instance_type)},
      {"gpu", gpu_summary(record)},
      {"created_at", record.created_at},
  };
}

bool confirm(const Context& ctx, const std::string& question) {
  // Scripts and CI are never asked: no terminal, no prompt.
  return ctx.globals().yes || !util::terminal_attached() || util::ask_yes_no(question);
}

}  // namespace gm::cli
