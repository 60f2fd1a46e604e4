#include "machine/connect.h"

#include "gm/driver.h"
#include "gm/error.h"

#include <thread>

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

std::string boot_id(ssh::RemoteShell& shell) {
  ssh::ExecResult r = shell.run("cat \"${GM_SYSROOT:-}/proc/sys/kernel/random/boot_id\"");
  std::string id = r.exit_status == 0 ? r.out : std::string();
  while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) {
    id.pop_back();
  }
  return id;
}

bool is_unreachable(const SshError& e) {
  return e.stage() != SshError::Stage::hostkey && e.stage() != SshError::Stage::auth &&
         e.stage() != SshError::Stage::keyfile;
}

std::unique_ptr<ssh::Session> wait_for_new_boot(const MachineRecord& record, DriverHost& host,
                                                const std::string& old_boot,
                                                std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool saw_down = false;
  while (std::chrono::steady_clock::now() < deadline) {
    host.check_interrupted();
    try {
      std::unique_ptr<ssh::Session> session = connect(record);
      std::string now_boot = boot_id(*session);
      if (saw_down || (!now_boot.empty() && now_boot != old_boot)) {
        return session;
      }
    } catch (const SshError& e) {
      if (!is_unreachable(e)) {
        throw;
      }
      saw_down = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  throw Error("machine '" + record.name + "'",
              "did not come back from the reboot within " +
                  std::to_string(std::chrono::duration_cast<std::chrono::minutes>(limit).count()) +
                  " minutes",
              {}, "check the host's console; `gpumachine status " + record.name + "` asks again");
}

}  // namespace gm::machine
