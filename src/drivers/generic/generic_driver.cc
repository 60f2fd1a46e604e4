#include "drivers/generic/generic_driver.h"

#include "drivers/generic/own_key.h"

#include "gm/error.h"
#include "machine/connect.h"
#include "ssh/known_hosts.h"
#include "ssh/session.h"
#include "util/assets.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/net.h"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <sstream>

namespace gm::drivers::generic {

namespace {

constexpr std::chrono::minutes k_reboot_deadline{10};
/// The host facts script takes a second; a host that does not answer in this long never will.
constexpr std::chrono::minutes k_facts_timeout{2};

std::string single(const Options& options, const std::string& name, std::string fallback = {}) {
  auto it = options.find(name);
  if (it == options.end() || it->second.empty()) {
    return fallback;
  }
  return it->second.back();
}

std::string default_key_path() {
  for (const char* name : {"~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"}) {
    std::filesystem::path p = util::expand_user(name);
    if (std::filesystem::exists(p)) {
      return p.string();
    }
  }
  return {};
}

/// The generic driver's own settings (record.driver_config).
struct GenericConfig {
  std::string host_key_fingerprint;  ///< --generic-host-key-fingerprint; empty: none given.
  bool ssh_agent = false;            ///< --generic-ssh-agent.
  /// The user's RSA key that installs the machine's own key (own_key.h); empty: not needed.
  std::string rsa_login_key;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GenericConfig, host_key_fingerprint, ssh_agent,
                                                rsa_login_key)

class GenericDriver final : public Driver {
 public:
  std::string_view name() const override { return "generic"; }
  Capabilities capabilities() const override { return {.power = false, .reboot = true}; }

  void configure(const Options& options, MachineRecord& record) override {
    std::string host = single(options, "generic-ip-address");
    if (host.empty()) {
      throw UsageError("--generic-ip-address", "required by the generic driver",
                       "give the host's address, e.g. --generic-ip-address 192.0.2.10");
    }
    std::string port_text = single(options, "generic-ssh-port", "22");
    int port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
        port > 65535) {
      throw UsageError("--generic-ssh-port " + port_text, "not a port number",
                       "use a number from 1 to 65535");
    }
    std::string key = single(options, "generic-ssh-key", default_key_path());
    if (key.empty()) {
      throw UsageError("--generic-ssh-key", "no key given and none found in ~/.ssh",
                       "pass the private key that logs in to the host: --generic-ssh-key PATH");
    }
    std::filesystem::path key_path = std::filesystem::absolute(util::expand_user(key));
    if (::access(key_path.c_str(), R_OK) != 0) {
      throw UsageError("--generic-ssh-key " + key, "cannot read the key file",
                       "check the path and its permissions");
    }
    std::string fingerprint = single(options, "generic-host-key-fingerprint");
    if (!fingerprint.empty() && !fingerprint.starts_with("SHA256:")) {
      throw UsageError(
          "--generic-host-key-fingerprint " + fingerprint, "expected an OpenSSH SHA256 fingerprint",
          "get it on the host with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`");
    }
    // Where the machine's own key goes (create.cc sets it): an RSA key cannot log in through
    // libssh2 1.10, so create installs that one with the RSA key's help (own_key.h).
    std::string own_key = record.ssh.key_path;
    record.ssh.host = host;
    record.ssh.port = port;
    record.ssh.user = single(options, "generic-ssh-user", "root");
    record.ssh.key_path = key_path.string();
    GenericConfig config{.host_key_fingerprint = fingerprint,
                         .ssh_agent = options.contains("generic-ssh-agent")};
    if (!own_key.empty() && ssh::is_rsa_key(key_path)) {
      config.rsa_login_key = key_path.string();
      record.ssh.key_path = own_key;
    }
    record.driver_config = config;
  }

  void create(MachineRecord& record, DriverHost& host) override {
    host.phase("connecting to " + record.ssh.user + "@" + record.ssh.host + ":" +
               std::to_string(record.ssh.port));
    const auto config = record.driver_config.get<GenericConfig>();
    ssh::ConnectOptions options;
    options.target = record.ssh;
    options.subject = "machine '" + record.name + "'";
    options.use_agent = config.ssh_agent;
    options.retry_for = std::chrono::seconds(10);
    options.command_timeout = k_facts_timeout;  // a host that never answers fails clearly
    std::filesystem::path user_known_hosts = util::expand_user("~/.ssh/known_hosts");
    ssh::KnownHost known =
        ssh::lookup_known_host(user_known_hosts, record.ssh.host, record.ssh.port);
    options.revoked_host_keys = known.revoked;
    options.expected_fingerprint = config.host_key_fingerprint;
    if (known.key) {
      // The user already trusts a key for this host: require exactly that one.
      options.target.host_key = *known.key;
      options.host_key_policy = ssh::HostKeyPolicy::pinned;
    } else if (known.cert_authority && options.expected_fingerprint.empty()) {
      // Trusting whatever key answers would bypass the CA the user relies on.
      throw Error("machine '" + record.name + "'",
                  "~/.ssh/known_hosts trusts a certificate authority for " + record.ssh.host +
                      ", and gpumachine cannot check host certificates",
                  "libssh2 1.10 does not negotiate OpenSSH host certificates",
                  "pin the host's own key instead: --generic-host-key-fingerprint SHA256:... "
                  "(on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)");
    } else {
      options.host_key_policy = ssh::HostKeyPolicy::trust_on_first_use;
    }
    const std::string& rsa_key = config.rsa_login_key;
    if (!rsa_key.empty()) {
      // Verify the host key first (the OpenSSH login must meet the same key), then install
      // the machine's own key with the RSA key, then log in natively with the pinned key.
      ssh::ConnectOptions first = options;
      first.host_key_only = true;
      std::string verified = ssh::Session::connect(first)->host_key();
      install_own_key(record, host, rsa_key, verified);
      host.check_interrupted();
      host.phase("connecting to " + record.ssh.user + "@" + record.ssh.host +
                 " with gpumachine's key");
      options.target.host_key = verified;
      options.host_key_policy = ssh::HostKeyPolicy::pinned;
    }
    std::unique_ptr<ssh::Session> session = ssh::Session::connect(options);
    record.ssh.host_key = session->host_key();
    std::string fingerprint = ssh::fingerprint_sha256(record.ssh.host_key);
    if (known.key) {
      util::info("host key " + fingerprint + " matches ~/.ssh/known_hosts");
    } else if (!options.expected_fingerprint.empty()) {
      util::info("host key " + fingerprint + " matches --generic-host-key-fingerprint");
    } else {
      util::info("pinned host key " + fingerprint + " on first use");
    }
    host.check_interrupted();
    host.phase("collecting host facts");
    record.facts["host"] = collect_host_facts(*session);
    record.last_state = std::string(to_string(MachineState::running));
  }

  MachineState state(MachineRecord& record, DriverHost&) override {
    try {
      machine::connect(record);
      return MachineState::running;
    } catch (const SshError& e) {
      if (machine::is_unreachable(e)) {
        return MachineState::unreachable;
      }
      throw;
    }
  }

  void restart(MachineRecord& record, DriverHost& host) override {
    host.phase("rebooting " + record.name);
    std::string old_boot;
    {
      std::unique_ptr<ssh::Session> session = machine::connect(record);
      old_boot = machine::boot_id(*session);
      // Backgrounded with a delay so this command returns before the host goes down.
      ssh::ExecResult r = session->run(
          "if [ \"$(id -u)\" -ne 0 ] && ! sudo -n true 2>/dev/null; then "
          "echo 'passwordless sudo is required to reboot' >&2; exit 50; fi; "
          "S=; [ \"$(id -u)\" -ne 0 ] && S='sudo -n'; "
          "nohup sh -c \"sleep 1; $S reboot\" >/dev/null 2>&1 </dev/null &");
      if (r.exit_status != 0) {
        throw Error("machine '" + record.name + "'", "cannot reboot", r.err,
                    "let the SSH user run `sudo reboot` without a password");
      }
    }
    host.phase("waiting for " + record.name + " to come back");
    std::unique_ptr<ssh::Session> session =
        machine::wait_for_new_boot(record, host, old_boot, k_reboot_deadline);
    record.facts["host"] = collect_host_facts(*session);
    record.last_state = std::string(to_string(MachineState::running));
  }

  std::vector<std::string> remove(MachineRecord& record, DriverHost&) override {
    return {"removed the local record of '" + record.name +
            "'; the host itself was not touched (generic driver)"};
  }
};

}  // namespace

nlohmann::json parse_host_facts(std::string_view text) {
  nlohmann::json facts = nlohmann::json::object();
  nlohmann::json gpus = nlohmann::json::array();
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    std::string key = line.substr(0, eq);
    std::string value = line.substr(eq + 1);
    if (key == "nvidia_pci") {
      std::istringstream parts(value);
      std::string address, device, pci_class;
      parts >> address >> device >> pci_class;
      gpus.push_back({{"pci_address", address}, {"device_id", device}, {"class", pci_class}});
    } else if (key == "cpus" || key == "memory_kib") {
      long long n = 0;
      std::from_chars(value.data(), value.data() + value.size(), n);
      facts[key] = n;
    } else {
      facts[key] = value;
    }
  }
  facts["nvidia_pci_devices"] = gpus;
  return facts;
}

nlohmann::json collect_host_facts(ssh::RemoteShell& shell) {
  ssh::ExecResult r = shell.run("sh -s", util::asset("drivers/generic/host_facts.sh"));
  if (r.exit_status != 0) {
    throw Error("host facts",
                "the facts script failed with status " + std::to_string(r.exit_status), r.err);
  }
  return parse_host_facts(r.out);
}

DriverInfo driver_info() {
  DriverInfo info;
  info.name = "generic";
  info.description = "an existing Linux host reached by SSH";
  info.flags = {
      {.name = "generic-ip-address", .help = "address or name of the host (required)"},
      {.name = "generic-ssh-port", .help = "SSH port", .default_value = "22"},
      {.name = "generic-ssh-user", .help = "SSH user", .default_value = "root"},
      {.name = "generic-ssh-key",
       .help = "private key that logs in to the host",
       .default_value = "~/.ssh/id_ed25519"},
      {.name = "generic-host-key-fingerprint",
       .help = "expected SHA256 fingerprint of the host key (else pinned on first use)"},
      {.name = "generic-ssh-agent", .help = "try keys from the SSH agent first", .is_switch = true},
  };
  info.make = [] { return std::make_unique<GenericDriver>(); };
  info.list_states = [](std::vector<MachineRecord*>& records, std::chrono::milliseconds timeout) {
    std::vector<std::pair<std::string, int>> endpoints;
    for (const MachineRecord* r : records) {
      endpoints.emplace_back(r->ssh.host, r->ssh.port);
    }
    std::vector<bool> up = util::tcp_reachable(endpoints, timeout);
    for (std::size_t i = 0; i < records.size(); ++i) {
      records[i]->last_state =
          std::string(to_string(up[i] ? MachineState::running : MachineState::unreachable));
    }
  };
  return info;
}

}  // namespace gm::drivers::generic
