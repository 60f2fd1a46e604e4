#include "drivers/generic/own_key.h"

#include "gm/error.h"
#include "ssh/interactive.h"
#include "ssh/keys.h"
#include "ssh/known_hosts.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/shell.h"

#include <unistd.h>

#include <filesystem>

namespace gm::drivers::generic {

namespace {

std::string first_line(std::string text) {
  return text.substr(0, text.find('\n'));
}

std::string join_quoted(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& word : argv) {
    out += (out.empty() ? "" : " ") + util::shell_quote(word);
  }
  return out;
}

}  // namespace

std::string append_key_command(const std::string& public_key) {
  std::string key = util::shell_quote(public_key);
  return "umask 077 && mkdir -p ~/.ssh && { grep -qxF " + key +
         " ~/.ssh/authorized_keys 2>/dev/null || echo " + key + " >> ~/.ssh/authorized_keys; }";
}

void install_own_key(const MachineRecord& record, DriverHost& host, const std::string& rsa_key,
                     const std::string& host_key) {
  const std::string subject = "machine '" + record.name + "'";
  std::filesystem::path own_key = record.ssh.key_path;
  std::filesystem::create_directories(own_key.parent_path());
  std::filesystem::permissions(own_key.parent_path(), std::filesystem::perms::owner_all);
  ssh::ensure_key_pair(own_key, "gpumachine-" + record.name);
  std::string public_key = first_line(util::read_file(own_key.string() + ".pub"));

  // The OpenSSH client must accept exactly the host key we verified, nothing it finds elsewhere.
  std::filesystem::path known_hosts = own_key.parent_path() / "known_hosts.rsa-login";
  util::write_file_atomic(
      known_hosts, ssh::known_hosts_line(record.ssh.host, record.ssh.port, host_key) + "\n", 0600);
  SshTarget login = record.ssh;
  login.key_path = rsa_key;
  std::string command = append_key_command(public_key);
  // Without a terminal nothing could answer a passphrase prompt: fail instead of waiting.
  std::vector<std::string> batch;
  if (::isatty(STDIN_FILENO) != 1) {
    batch = {"-o", "BatchMode=yes"};
  }
  std::vector<std::string> argv =
      ssh::openssh_argv("ssh", login, known_hosts, batch, command, false);

  std::string shown = join_quoted(argv);
  bool agreed = host.confirm(
      "Debian 12's libssh2 cannot log in with the RSA key " + rsa_key +
      " (it signs with SHA-1, which OpenSSH 8.8+ refuses). gpumachine can add its own ed25519 "
      "key for this machine (" +
      own_key.string() + ".pub) to " + record.ssh.user + "@" + record.ssh.host +
      "'s ~/.ssh/authorized_keys with one login through your OpenSSH client:\n  " + shown +
      "\nRun it?");
  if (!agreed) {
    std::filesystem::remove(known_hosts);
    throw Error(subject, "cannot log in with the RSA key '" + rsa_key + "'",
                "libssh2 1.10 signs RSA keys only with SHA-1 ssh-rsa, which OpenSSH 8.8 and newer "
                "refuse; adding gpumachine's own ed25519 key to the host was not allowed",
                "pass --yes to let gpumachine run, once: " + shown +
                    "; or add an ed25519 key of yours to the host and pass it with "
                    "--generic-ssh-key");
  }
  util::info("adding gpumachine's ed25519 key to " + record.ssh.user + "@" + record.ssh.host +
             "'s authorized_keys (one login with your OpenSSH client and " + rsa_key + ")");
  int status = ssh::run_openssh(argv);
  std::filesystem::remove(known_hosts);
  if (status != 0) {
    throw Error(subject, "cannot add gpumachine's key to the host",
                "the OpenSSH client exited with status " + std::to_string(status) +
                    " (its message is above)",
                "check that `ssh -i " + rsa_key + " -p " + std::to_string(record.ssh.port) + " " +
                    record.ssh.user + "@" + record.ssh.host + " true` logs in");
  }
}

}  // namespace gm::drivers::generic
