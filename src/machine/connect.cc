#include "machine/connect.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "machine/machine_host.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/net.h"

#include <algorithm>

namespace gm::machine {

namespace {
std::string subject_of(std::string_view name) {
  return "machine '" + std::string(name) + "'";
}

void check_address(const MachineRecord& record) {
  if (record.ssh.host.empty()) {
    if (record.progress.incomplete) {
      throw Error(subject_of(record.name), "has no address yet", {},
                  "run `gpumachine create " + record.name + "` to finish creating it");
    }
    throw Error(subject_of(record.name), "has no address: it is stopped", {},
                "start it: `gpumachine start " + record.name + "`");
  }
}
}  // namespace

ssh::OpenSshLogin openssh_login(const store::Store& store, const MachineRecord& record) {
  check_address(record);
  return {record.ssh, store.known_hosts_path(record.name), subject_of(record.name)};
}

std::unique_ptr<ssh::Session> connect(const MachineRecord& record,
                                      std::chrono::milliseconds retry_for) {
  check_address(record);
  ssh::ConnectOptions options;
  options.target = record.ssh;
  options.host_key_policy = ssh::HostKeyPolicy::pinned;
  options.retry_for = retry_for;
  options.subject = subject_of(record.name);
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

void wait_for_port(const MachineRecord& record, DriverHost& host,
                   std::chrono::steady_clock::time_point deadline) {
  constexpr std::chrono::milliseconds k_first{10};
  constexpr std::chrono::milliseconds k_most{100};
  constexpr std::chrono::milliseconds k_probe{1000};  // a dropped SYN: try again soon
  std::chrono::milliseconds delay = k_first;
  while (std::chrono::steady_clock::now() < deadline) {
    host.check_interrupted();
    if (util::tcp_reachable({{record.ssh.host, record.ssh.port}}, k_probe).front()) {
      return;
    }
    util::sleep_unless_interrupted(delay);
    delay = std::min(delay * 2, k_most);
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

std::string boot_before_reboot(const MachineRecord& record) {
  if (record.ssh.host.empty()) {
    return {};
  }
  try {
    return boot_id(*connect(record));
  } catch (const SshError& e) {
    if (!is_unreachable(e)) {
      throw;
    }
    return {};
  }
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
    util::sleep_unless_interrupted(std::chrono::milliseconds(300));
  }
  throw Error("machine '" + record.name + "'",
              "did not come back from the reboot within " +
                  std::to_string(std::chrono::duration_cast<std::chrono::minutes>(limit).count()) +
                  " minutes",
              {}, "check the host's console; `gpumachine status " + record.name + "` asks again");
}

MachineState refresh_state(store::Store& store, MachineRecord& record, std::string_view verb,
                           const store::MachineLock* held) {
  const std::string host_before = record.ssh.host;
  MachineState state;
  {
    MachineHost host(store);  // read only: a driver's state() saves nothing
    state = find_driver(record.driver).make()->state(record, host);
  }
  std::string state_text(to_string(state));
  if (record.last_state == state_text && record.ssh.host == host_before) {
    return state;
  }
  record.last_state = state_text;
  try {
    store::MachineLock taken;
    if (held == nullptr) {
      taken = store.lock(record.name, verb, std::chrono::milliseconds(0));
    }
    if (!store.has_record(record.name)) {
      return state;  // removed meanwhile
    }
    MachineRecord fresh = store.load(record.name);
    fresh.last_state = record.last_state;
    if (record.ssh.host != host_before) {
      fresh.ssh.host = record.ssh.host;
    }
    store.save(held != nullptr ? *held : taken, fresh);
  } catch (const LockedError&) {
    util::debug(subject_of(record.name) + ": another command holds its lock; the state " +
                state_text + " is not saved");
  }
  return state;
}

MachineRecord load_for_ssh(store::Store& store, std::string_view name, std::string_view verb,
                           const store::MachineLock* held) {
  MachineRecord record = store.load(name);
  if (!find_driver(record.driver).make()->capabilities().power) {
    return record;  // nothing but the user changes its address
  }
  MachineState state = refresh_state(store, record, verb, held);
  if (state == MachineState::stopped || state == MachineState::stopping) {
    throw Error(subject_of(name), "is " + std::string(to_string(state)), {},
                "start it: `gpumachine start " + std::string(name) + "`");
  }
  if (state == MachineState::terminated) {
    throw Error(subject_of(name), "is terminated", {},
                "`gpumachine rm " + std::string(name) + "` removes its record");
  }
  return record;
}

}  // namespace gm::machine
