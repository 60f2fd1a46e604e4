// One setup function per verb (each in its own file), and the helpers verbs share.
#pragma once

#include "cli/app.h"
#include "cli/machine_file.h"
#include "gm/machine.h"
#include "provision/plan.h"

#include <string>

namespace gm::cli {

void setup_create(CLI::App& app, Dispatch& dispatch);
void setup_ls(CLI::App& app, Dispatch& dispatch);
void setup_status(CLI::App& app, Dispatch& dispatch);
void setup_ip(CLI::App& app, Dispatch& dispatch);
void setup_inspect(CLI::App& app, Dispatch& dispatch);
void setup_ssh(CLI::App& app, Dispatch& dispatch);
void setup_scp(CLI::App& app, Dispatch& dispatch);
void setup_rm(CLI::App& app, Dispatch& dispatch);
void setup_restart(CLI::App& app, Dispatch& dispatch);
void setup_start(CLI::App& app, Dispatch& dispatch);
void setup_stop(CLI::App& app, Dispatch& dispatch);
void setup_kill(CLI::App& app, Dispatch& dispatch);
void setup_gc(CLI::App& app, Dispatch& dispatch);
void setup_ssh_config(CLI::App& app, Dispatch& dispatch);
void setup_version(CLI::App& app, Dispatch& dispatch);
void setup_provision(CLI::App& app, Dispatch& dispatch);
void setup_probe(CLI::App& app, Dispatch& dispatch);
void setup_forward(CLI::App& app, Dispatch& dispatch);
void setup_jupyter(CLI::App& app, Dispatch& dispatch);
void setup_tensorboard(CLI::App& app, Dispatch& dispatch);
void setup_ray(CLI::App& app, Dispatch& dispatch);
void setup_env(CLI::App& app, Dispatch& dispatch);
void setup_prices(CLI::App& app, Dispatch& dispatch);
void setup_autostop(CLI::App& app, Dispatch& dispatch);
void setup_ssh_allow(CLI::App& app, Dispatch& dispatch);
void setup_run(CLI::App& app, Dispatch& dispatch);
void setup_jobs(CLI::App& app, Dispatch& dispatch);
void setup_logs(CLI::App& app, Dispatch& dispatch);
void setup_attach(CLI::App& app, Dispatch& dispatch);
void setup_cancel(CLI::App& app, Dispatch& dispatch);
void setup_sync(CLI::App& app, Dispatch& dispatch);
void setup_compose(CLI::App& app, Dispatch& dispatch);

/// The provisioning flags `create` and `provision` share.
struct ProvisionFlags {
  int driver_branch = 0;
  std::string driver_flavour;
  std::string verify_image;
  bool no_gsp = false;
  provision::Mirrors mirrors;
  /// Registers --driver-branch, --driver-flavour, --verify-image, --no-gsp and the
  /// --docker-mirror, --cuda-mirror, --toolkit-mirror repository bases on sub.
  void add_to(CLI::App& sub);
  /// Validated overrides (provision::validate_overrides); throws UsageError for a bad flavour,
  /// a choice no branch allows or a mirror URL the scripts cannot use.
  provision::Overrides overrides() const;
};

/// The keys a machine file (and a task file's `create:`) may hold.
MachineFileKeys machine_file_keys();

/// `gpumachine create NAME` with `file` as the machine file's options (read from `source`, which
/// errors name); returns create's exit status.
int create_machine(Context& ctx, const std::string& name, const Options& file,
                   const std::string& source);

/// Removes one machine as `gpumachine rm` does (no question asked); returns rm's JSON entry.
nlohmann::json remove_one(Context& ctx, const std::string& name, bool force);

/// The summary every listing verb shares (docs/cli.md "machine summary").
nlohmann::json machine_summary(const MachineRecord& record);

/// A short GPU description from cached facts ("1x T4", "-").
std::string gpu_summary(const MachineRecord& record);

/// Asks "question [y/N]" on the terminal and returns the answer; true without asking under --yes
/// or when there is no terminal to ask on (scripts and CI are never prompted).
bool confirm(const Context& ctx, const std::string& question);

}  // namespace gm::cli
