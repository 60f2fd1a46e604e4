#include "machine/setup.h"

#include "cost/autostop.h"
#include "gm/error.h"
#include "machine/connect.h"
#include "machine/image_pull.h"
#include "util/log.h"
#include "util/time.h"

#include <chrono>
#include <cstdlib>

namespace gm::machine {

namespace {
constexpr std::chrono::minutes k_reboot_wait{10};

/// Set only by the test binary (tests/support/main.cc): the boot id of the machine running the
/// tests, whose loopback sshds would otherwise let a test provision the test machine itself.
void refuse_test_machine(ssh::RemoteShell& shell, const MachineRecord& record) {
  const char* refused = std::getenv("GM_TEST_REFUSE_BOOT_ID");
  if (refused == nullptr || *refused == '\0') {
    return;
  }
  if (boot_id(shell).starts_with(refused)) {
    throw Error("machine '" + record.name + "'",
                "refusing to provision the machine that runs the tests", {},
                "pass --no-provision, or log in to a simulated host (tests/support/simhost)");
  }
}
}  // namespace

provision::Overrides remembered_overrides(const MachineRecord& record,
                                          const provision::Overrides& given) {
  return provision::driver_overrides_from_json(record.provision.overrides, given);
}

provision::ProvisionResult provision_machine(MachineRecord& record, MachineHost& host,
                                             const provision::Overrides& overrides) {
  provision::ProvisionOptions options;
  options.overrides = remembered_overrides(record, overrides);
  nlohmann::json chosen = provision::driver_overrides_to_json(options.overrides);
  if (record.provision.overrides != chosen) {
    record.provision.overrides = chosen;
    host.save(record);  // asked for now, kept even if this run fails
  }
  host.phase("provisioning: connecting");
  std::unique_ptr<ssh::Session> session = connect(record, std::chrono::minutes(5));
  refuse_test_machine(*session, record);
  options.subject = "machine '" + record.name + "'";
  provision::Callbacks callbacks;
  callbacks.on_step_start = [&](provision::StepId step, std::string_view reason) {
    host.check_interrupted();
    std::string text = "provisioning: " + std::string(provision::to_string(step));
    if (!reason.empty()) {
      text += " (" + std::string(reason) + ")";
    }
    host.phase(text);
  };
  callbacks.on_output = [&](std::string_view line) { host.debug(line); };
  callbacks.on_progress = [&](std::string_view text) { host.detail(text); };
  callbacks.on_note = [&](std::string_view note) { util::info("note: " + std::string(note)); };
  provision::ReconnectFn reconnect = [&]() -> std::unique_ptr<ssh::RemoteShell> {
    host.phase("provisioning: waiting for the host to reboot");
    return connect(record, k_reboot_wait);
  };
  provision::ProvisionResult result = provision::provision(*session, reconnect, options, callbacks);
  host.finish();
  nlohmann::json found = result.record_facts();
  // Merge host facts: provisioning knows more about GPUs, the driver knows cpus and memory.
  if (!record.facts.contains("host") || !record.facts["host"].is_object()) {
    record.facts["host"] = nlohmann::json::object();
  }
  record.facts["host"].update(found["host"]);
  record.facts["provision"] = found["provision"];
  record.facts["provision"]["at"] = util::rfc3339(std::chrono::system_clock::now());
  host.save(record);
  // The agent goes on again last, over a fresh session (a reboot may have ended the first).
  install_autostop(record, host, true);
  return result;
}

void install_autostop(MachineRecord& record, MachineHost& host, bool again) {
  std::optional<cost::AutostopSettings> autostop = cost::autostop_from_record(record);
  if (!autostop || (cost::agent_on_host(record) && !again)) {
    return;
  }
  host.phase("installing the autostop agent (" + cost::describe(*autostop) + ")");
  cost::apply_on_host(*connect(record, std::chrono::minutes(1)), autostop,
                      "machine '" + record.name + "'");
  host.finish();
  cost::set_agent_on_host(record, true);
  host.save(record);
}

probe::ProbeResult probe_machine(MachineRecord& record, MachineHost& host,
                                 const probe::ProbeOptions& options) {
  std::unique_ptr<ssh::Session> session = connect(record, std::chrono::seconds(30));
  if (options.container) {
    // Before the phase line: a multi-GB image shows its own progress, not a silent phase.
    pull_image(*session, record.name, options.container_image);
  }
  host.phase(options.container ? "probing the GPU (host and container)" : "probing the GPU");
  probe::ProbeResult result = probe::run_probe(*session, options);
  host.finish();
  record.facts["probe"] = {
      {"at", util::rfc3339(std::chrono::system_clock::now())},
      {"summary", probe::gpu_summary(result.host)},
      {"exit_code", probe::verdict_exit_code(result)},
      {"report", probe::to_json(result)},
  };
  host.save(record);
  return result;
}

std::optional<int> expected_gpus(const MachineRecord& record) {
  if (record.size.gpu_count > 0) {
    return record.size.gpu_count;
  }
  return std::nullopt;
}

std::map<std::string, int> nvidia_gpus_on_pci(const MachineRecord& record) {
  std::map<std::string, int> by_id;
  const nlohmann::json& facts = record.facts;
  if (!facts.contains("host") || !facts["host"].contains("nvidia_pci_devices")) {
    return by_id;
  }
  // Display and 3D controllers only: NVSwitches and audio functions share vendor 10de.
  for (const auto& d : facts["host"]["nvidia_pci_devices"]) {
    std::string cls = d.value("class", "");
    if (cls.starts_with("0x0300") || cls.starts_with("0x0302")) {
      std::string id = d.value("device_id", "?");
      ++by_id[id.starts_with("0x") ? id.substr(2) : id];
    }
  }
  return by_id;
}

bool has_nvidia_gpu(const MachineRecord& record) {
  if (expected_gpus(record) || !nvidia_gpus_on_pci(record).empty()) {
    return true;
  }
  const nlohmann::json& facts = record.facts;
  return facts.contains("host") && facts["host"].contains("gpus") &&
         facts["host"]["gpus"].is_array() && !facts["host"]["gpus"].empty();
}

}  // namespace gm::machine
