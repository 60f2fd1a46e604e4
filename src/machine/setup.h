// After a machine exists: provisioning (driver, Docker, toolkit) and the GPU probe, shared by
// `create`, `provision` and `probe`. Results are cached in the record's facts.
#pragma once

#include "machine/machine_host.h"
#include "probe/probe.h"
#include "provision/provisioner.h"

#include <map>
#include <optional>
#include <string>

namespace gm::machine {

/// The overrides to provision with: \a given, with each group of choices it leaves unset (the
/// driver choices: branch, flavour, --no-gsp; the repository mirrors) taken from the record
/// (record.provision.overrides), as the create or provision that last named any left it.
/// So a later repair run cannot quietly undo --no-gsp, a pinned branch or a mirror; naming any
/// choice of a group replaces that group.
provision::Overrides remembered_overrides(const MachineRecord& record,
                                          const provision::Overrides& given);

/// Provisions the machine over one SSH session (plus one per reboot), showing a phase line per
/// step, and stores facts, plan and versions in the record (saved through host). The driver
/// choices are remembered_overrides(record, overrides), kept in the record for the next run.
provision::ProvisionResult provision_machine(MachineRecord& record, MachineHost& host,
                                             const provision::Overrides& overrides);

/// Installs the autostop agent for the record's setting (if any, and not yet on the host unless
/// \a again) over a fresh session and notes it in the record, saved through host.
void install_autostop(MachineRecord& record, MachineHost& host, bool again = false);

/// Runs the GPU probe and caches its report and summary in record.facts["probe"].
probe::ProbeResult probe_machine(MachineRecord& record, MachineHost& host,
                                 const probe::ProbeOptions& options);

/// GPUs the machine's instance type has (cloud drivers); nullopt when unknown or none.
std::optional<int> expected_gpus(const MachineRecord& record);

/// NVIDIA GPUs the host's PCI facts show, by device id ("1eb8") -> count.
std::map<std::string, int> nvidia_gpus_on_pci(const MachineRecord& record);

/// True when the record's facts show an NVIDIA GPU (instance type, provisioning or host facts).
bool has_nvidia_gpu(const MachineRecord& record);

}  // namespace gm::machine
