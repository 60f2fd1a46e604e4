#include "machine/connect.h"

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
  return ssh::Session::connect(options);
}

}  // namespace gm::machine
