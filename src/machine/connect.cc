#include "machine/connect.h"

#include "gm/driver.h"
#include "gm/error.h"

namespace gm::machine {

std::unique_ptr<ssh::Session> connect(const MachineRecord& record,
                                      std::chrono::milliseconds retry_for) {
  if (record.ssh.host.empty()) {
    throw Error("machine '" + record.name + "'", "has no address yet", {},
                "run `gpumachine create " + record.name + "` to finish creating it");
  }
  ssh::ConnectOptions options;
  options.target = record.ssh;
  options.host_key_policy = ssh::HostKeyPolicy::pinned;
  options.retry_for = retry_for;
  options.subject = "machine '" + record.name + "'";
  try {
    return ssh::Session::connect(options);
  } catch (const SshError& e) {
    if (e.stage() != SshError::Stage::connect) {
      throw;
    }
    // The driver may know why nothing answers (a firewall rule for an old address).
    std::string why = find_driver(record.driver).make()->explain_unreachable(record);
    if (why.empty()) {
      throw;
    }
    throw SshError(e.stage(), e.subject(), e.problem(), e.cause(), why);
  }
}

}  // namespace gm::machine
