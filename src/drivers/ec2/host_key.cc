#include "drivers/ec2/host_key.h"

#include "gm/error.h"
#include "machine/connect.h"
#include "ssh/wire.h"
#include "util/assets.h"
#include "util/log.h"

#include <chrono>
#include <thread>

namespace gm::drivers::ec2 {

namespace {

/// How long sshd may take to come back with the new key after SIGHUP (it re-executes itself).
constexpr std::chrono::seconds k_reload_wait{30};

std::string run_phase(ssh::Session& session, const MachineRecord& record,
                      const std::string& phase) {
  ssh::ExecResult r = session.run("sh -s " + phase, util::asset("drivers/ec2/host_key.sh"));
  if (r.exit_status != 0) {
    throw Error("machine '" + record.name + "'",
                "cannot replace the host key that came in user data (" + phase + ")", r.err,
                "the login user needs passwordless sudo; run the same command again, the "
                "replacement resumes where it stopped");
  }
  return r.out;
}

/// Connects with the new key pinned. Until sshd has re-executed, the old listener may still
/// answer with the old key, so a mismatch is retried until k_reload_wait has passed.
void connect_renewed(const MachineRecord& renewed, DriverHost& host) {
  const auto deadline = std::chrono::steady_clock::now() + k_reload_wait;
  while (true) {
    host.check_interrupted();
    try {
      machine::connect(renewed, k_reload_wait);
      return;
    } catch (const SshError& e) {
      if (e.stage() != SshError::Stage::hostkey || std::chrono::steady_clock::now() > deadline) {
        throw;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

void replace_user_data_host_key(MachineRecord& record, Ec2Config& cfg, DriverHost& host) {
  if (cfg.host_key_replaced) {
    return;
  }
  host.phase("replacing the host key from user data with one made on the host");
  std::string next = cfg.host_key_next;
  if (next.empty()) {
    std::string out = run_phase(*machine::connect(record), record, "prepare");
    std::optional<ssh::wire::PublicKeyLine> key = ssh::wire::parse_public_key_line(out);
    if (!key || key->type != "ssh-ed25519") {
      throw Error("machine '" + record.name + "'", "the host printed no new ed25519 host key", out,
                  "run the same command again");
    }
    next = key->type + " " + key->base64;
    cfg.host_key_next = next;
    record.driver_config = cfg;
    host.save(record);  // made on the host: known here before it can be put in use
  }
  MachineRecord renewed = record;
  renewed.ssh.host_key = next;
  try {
    machine::connect(renewed);  // an earlier run already put it in use
  } catch (const SshError& e) {
    if (e.stage() != SshError::Stage::hostkey) {
      throw;
    }
    run_phase(*machine::connect(record), record, "activate");
    connect_renewed(renewed, host);
  }
  record.ssh.host_key = next;
  cfg.host_key_next.clear();
  cfg.host_key_replaced = true;
  record.driver_config = cfg;
  host.save(record);
  util::info("replaced the host key from user data by one made on the host: " +
             ssh::fingerprint_sha256(next));
}

}  // namespace gm::drivers::ec2
