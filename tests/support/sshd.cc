#include "support/sshd.h"

#include <pwd.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>
#include <thread>

namespace gm::testing {

namespace {

void run_checked(const std::vector<std::string>& argv) {
  CaptureResult r = run_capture(argv);
  if (r.status != 0) {
    throw std::runtime_error(argv[0] + " failed (" + std::to_string(r.status) + "): " + r.err);
  }
}

std::string strip_comment(const std::string& line) {
  std::istringstream in(line);
  std::string type;
  std::string blob;
  in >> type >> blob;
  return type + " " + blob;
}

}  // namespace

SshdFixture::SshdFixture(SshdOptions options) : m_options(std::move(options)) {
  if (m_options.host.rfind("127.", 0) != 0) {
    throw std::runtime_error("SshdFixture: " + m_options.host + " is not a loopback address");
  }
  passwd* pw = getpwuid(geteuid());
  if (pw == nullptr) {
    throw std::runtime_error("SshdFixture: no passwd entry for the current user");
  }
  m_user = pw->pw_name;
  if (m_options.port == 0) {
    m_options.port = free_port(m_options.host);
  }
  run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gm-test-host", "-f",
               host_key_path().string()});
  m_host_public_key = strip_comment(read_text(host_key_path().string() + ".pub"));
  if (m_options.authorized_keys.empty()) {
    run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gm-test-client", "-f",
                 client_key_path().string()});
    m_options.authorized_keys.push_back(read_text(client_key_path().string() + ".pub"));
  }
  write_config();
  std::filesystem::create_directories("/run/sshd");
  start();
}

SshdFixture::~SshdFixture() {
  stop();
}

void SshdFixture::write_config() {
  std::string keys;
  for (const std::string& key : m_options.authorized_keys) {
    std::string line = key;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
      line.pop_back();
    }
    keys += (m_options.key_options.empty() ? "" : m_options.key_options + " ") + line + "\n";
  }
  write_text(m_dir / "authorized_keys", keys, 0600);

  std::ostringstream config;
  config << "ListenAddress " << m_options.host << ":" << m_options.port << "\n"
         << "HostKey " << host_key_path().string() << "\n"
         << "PidFile " << (m_dir / "sshd.pid").string() << "\n"
         << "AuthorizedKeysFile " << (m_dir / "authorized_keys").string() << "\n"
         << "UsePAM no\n"
         << "StrictModes no\n"
         << "PermitRootLogin yes\n"
         << "PasswordAuthentication no\n"
         << "KbdInteractiveAuthentication no\n"
         << "UseDNS no\n"
         << "PrintMotd no\n"
         << "MaxStartups 100\n"
         << "MaxSessions 100\n"
         << "PermitUserEnvironment " << (m_options.key_options.empty() ? "no" : "yes") << "\n"
         << "Subsystem sftp " << m_options.sftp_subsystem << "\n";
  for (const std::string& line : m_options.extra_config) {
    config << line << "\n";
  }
  write_text(m_dir / "sshd_config", config.str(), 0600);
}

void SshdFixture::start() {
  if (m_process && m_process->is_running()) {
    return;
  }
  SpawnOptions spawn;
  spawn.stderr_path = m_dir / "sshd.log";
  spawn.stdout_path = m_dir / "sshd.log";
  std::vector<std::string> argv = m_options.launcher;
  for (std::string word : {"/usr/sbin/sshd", "-D", "-e", "-f"}) {
    argv.push_back(word);
  }
  argv.push_back((m_dir / "sshd_config").string());
  m_process = std::make_unique<Process>(argv, spawn);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!m_process->is_running()) {
      throw std::runtime_error("sshd exited at start: " + log());
    }
    if (port_accepts(m_options.host, m_options.port)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  m_process->stop();
  throw std::runtime_error("sshd did not listen on " + m_options.host + ":" +
                           std::to_string(m_options.port) + ": " + log());
}

void SshdFixture::stop() {
  if (m_process) {
    m_process->stop();
    m_process.reset();
  }
}

void SshdFixture::restart() {
  stop();
  start();
}

bool SshdFixture::is_running() {
  return m_process && m_process->is_running();
}

std::string SshdFixture::log() const {
  try {
    return read_text(m_dir / "sshd.log");
  } catch (const std::runtime_error&) {
    return {};
  }
}

SshTarget SshdFixture::target() const {
  SshTarget t;
  t.host = m_options.host;
  t.port = m_options.port;
  t.user = m_user;
  t.key_path = client_key_path().string();
  t.host_key = m_host_public_key;
  return t;
}

}  // namespace gm::testing
