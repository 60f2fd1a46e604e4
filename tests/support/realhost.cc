#include "support/realhost.h"

#include "ssh/session.h"
#include "util/shell.h"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace gm::testing {

namespace fs = std::filesystem;

namespace {

const fs::path k_support = fs::path(GM_SOURCE_DIR) / "tests/support/realhost";

std::string run_checked(const std::vector<std::string>& argv) {
  CaptureResult r = run_capture(argv);
  if (r.status != 0) {
    throw std::runtime_error(argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + " failed (" +
                             std::to_string(r.status) + "): " + r.err);
  }
  return r.out;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

/// "ssh-ed25519 AAAA..." without the comment.
std::string key_line(const std::string& text) {
  std::istringstream in(text);
  std::string type, blob;
  in >> type >> blob;
  return type + " " + blob;
}

/// uid and gid of user in the root's /etc/passwd.
std::pair<uid_t, gid_t> owner_in(const fs::path& root, const std::string& user) {
  std::istringstream in(read_text(root / "etc/passwd"));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, ':');) {
      f.push_back(x);
    }
    if (f.size() > 3 && f[0] == user) {
      return {static_cast<uid_t>(std::stoul(f[2])), static_cast<gid_t>(std::stoul(f[3]))};
    }
  }
  throw std::runtime_error("RealHost: no user " + user + " in the image");
}

/// Pids of processes whose root directory is root (what is left of a container).
std::vector<int> processes_in(const fs::path& root) {
  std::vector<int> pids;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::error_code link_ec;
    if (fs::read_symlink(e.path() / "root", link_ec) == root) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

constexpr const char* k_user = "admin";

}  // namespace

bool realhost_required() {
  const char* v = std::getenv("GM_REALHOST_REQUIRED");
  return v != nullptr && std::string(v) == "1";
}

RealHostImage realhost_image() {
  static const RealHostImage image = [] {
    RealHostImage i;
    if (geteuid() != 0) {
      i.unavailable = "needs root (it mounts an overlay and runs systemd-nspawn)";
      return i;
    }
    if (access("/usr/bin/systemd-nspawn", X_OK) != 0) {
      i.unavailable =
          "systemd-nspawn is not installed (scripts/setup.sh installs systemd-container)";
      return i;
    }
    CaptureResult r = run_capture({(k_support / "build-image.sh").string(), "--path"});
    i.root = first_line(r.out);
    if (r.status != 0 || i.root.empty() || !fs::is_directory(i.root)) {
      i.unavailable = "the image " + i.root.string() +
                      " is not built: run tests/support/realhost/build-image.sh (scripts/test.sh "
                      "builds it)";
    }
    return i;
  }();
  return image;
}

RealHost::RealHost(RealHostOptions options) {
  const RealHostImage image = realhost_image();
  if (!image.unavailable.empty()) {
    throw std::runtime_error("real test host: " + image.unavailable);
  }
  m_root = m_dir / "root";
  for (const char* d : {"root", "upper", "work"}) {
    fs::create_directories(m_dir / d);
  }
  const std::string data = "lowerdir=" + image.root.string() +
                           ",upperdir=" + (m_dir / "upper").string() +
                           ",workdir=" + (m_dir / "work").string();
  if (::mount("overlay", m_root.c_str(), "overlay", 0, data.c_str()) != 0) {
    throw std::runtime_error("RealHost: mount overlay on " + m_root.string() + ": " +
                             std::strerror(errno));
  }
  m_mounted = true;
  try {
    m_port = free_port("127.0.0.1");
    // The hostname nspawn gives it resolves (sudo asks), without a name server.
    write_text(m_root / "etc/hosts", "127.0.0.1 localhost\n127.0.1.1 gm-realhost\n::1 localhost\n");
    write_text(m_root / "etc/ssh/sshd_config.d/50-gm-listen.conf",
               "ListenAddress 127.0.0.1:" + std::to_string(m_port) + "\n");

    // The login user's key: the fixture's own, authorized for admin.
    run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gm-realhost-client", "-f",
                 (m_dir / "client_ed25519").string()});
    const fs::path ssh_dir = m_root / "home" / k_user / ".ssh";
    fs::create_directories(ssh_dir);
    write_text(ssh_dir / "authorized_keys", read_text(m_dir / "client_ed25519.pub"), 0600);
    auto [uid, gid] = owner_in(m_root, k_user);
    for (const fs::path& p : {ssh_dir, ssh_dir / "authorized_keys"}) {
      if (::chown(p.c_str(), uid, gid) != 0) {
        throw std::runtime_error("RealHost: chown " + p.string() + ": " + std::strerror(errno));
      }
    }
    fs::permissions(ssh_dir, fs::perms::owner_all);

    if (options.user_data) {
      const fs::path seed = m_root / "var/lib/cloud/seed/nocloud";
      fs::create_directories(seed);
      write_text(seed / "user-data", *options.user_data, 0600);
      write_text(seed / "meta-data", options.meta_data, 0600);
    }
    if (options.cloud_init_disabled) {
      write_text(m_root / "etc/cloud/cloud-init.disabled", "");
    }
    for (const std::string& unit : options.masked_units) {
      fs::create_symlink("/dev/null", m_root / "etc/systemd/system" / unit);
    }
    for (const auto& [path, content] : options.files) {
      fs::create_directories((m_root / path.substr(1)).parent_path());
      write_text(m_root / path.substr(1), content);
    }
    boot(options.nspawn_args);
  } catch (...) {
    shut_down();
    throw;
  }
}

RealHost::~RealHost() {
  shut_down();
}

void RealHost::boot(const std::vector<std::string>& nspawn_args) {
  SpawnOptions spawn;
  spawn.stdout_path = m_dir / "console.log";
  spawn.stderr_path = m_dir / "console.log";
  // No host systemd or D-Bus here: --register=no --keep-unit. No network flag: the host's
  // network namespace, where sshd binds 127.0.0.1:port. Our own resolv.conf (none) and clock.
  std::vector<std::string> argv{"systemd-nspawn",
                                "--quiet",
                                "--boot",
                                "--register=no",
                                "--keep-unit",
                                "--console=read-only",
                                "--resolv-conf=off",
                                "--timezone=off",
                                "--link-journal=no",
                                "--machine=gm-realhost",
                                "--directory=" + m_root.string()};
  argv.insert(argv.end(), nspawn_args.begin(), nspawn_args.end());
  m_nspawn = std::make_unique<Process>(argv, spawn);
  std::unique_ptr<ssh::Session> session;
  try {
    session = connect();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("RealHost: sshd did not answer: ") + e.what() +
                             "\nconsole:\n" + console());
  }
}

void RealHost::shut_down() {
  if (m_nspawn) {
    // SIGTERM makes nspawn send SIGRTMIN+3 to systemd: an orderly poweroff.
    m_nspawn->stop(std::chrono::seconds(30));
    m_nspawn.reset();
  }
  if (!m_mounted) {
    return;
  }
  std::vector<int> left = processes_in(m_root);
  for (int i = 0; i < 50 && !left.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    left = processes_in(m_root);
  }
  for (int pid : left) {
    std::cerr << "RealHost: process " << pid << " outlived the container; killing it\n";
    ::kill(pid, SIGKILL);
  }
  for (int i = 0; i < 50; ++i) {
    if (::umount2(m_root.c_str(), 0) == 0) {
      m_mounted = false;
      return;
    }
    if (errno != EBUSY) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cerr << "RealHost: umount " << m_root << ": " << std::strerror(errno) << "\n";
  ::umount2(m_root.c_str(), MNT_DETACH);
  m_mounted = false;
}

SshTarget RealHost::target() const {
  SshTarget t;
  t.host = "127.0.0.1";
  t.port = m_port;
  t.user = k_user;
  t.key_path = (m_dir / "client_ed25519").string();
  t.host_key = key_line(read_text(m_root / "etc/ssh/ssh_host_ed25519_key.pub"));
  return t;
}

std::unique_ptr<ssh::Session> RealHost::connect() const {
  ssh::ConnectOptions o;
  o.target = target();
  // The key on disk may change under us while cloud-init replaces it: trust what sshd shows,
  // then check it is the one on disk now.
  o.host_key_policy = ssh::HostKeyPolicy::trust_on_first_use;
  o.retry_for = std::chrono::seconds(60);
  o.connect_timeout = std::chrono::seconds(2);
  return ssh::Session::connect(o);
}

ssh::ExecResult RealHost::run_root(const std::string& command, std::string_view stdin_data) const {
  return connect()->run("sudo -n sh -c " + util::shell_quote(command), stdin_data);
}

std::string RealHost::wait_until_running() const {
  ssh::ExecResult r = run_root(
      "systemctl is-system-running --wait; systemctl --failed --no-legend --plain | cut -d' ' -f1");
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') {
    out.pop_back();
  }
  return out;
}

std::string RealHost::console() const {
  std::error_code ec;
  if (!fs::exists(m_dir / "console.log", ec)) {
    return {};
  }
  return read_text(m_dir / "console.log");
}

// ---------------------------------------------------------------- stand-in packages and repo

fs::path build_standin_deb(const StandinDeb& deb, const fs::path& dir) {
  std::vector<std::string> argv{(k_support / "apt-repo.sh").string(),
                                "deb",
                                dir.string(),
                                deb.name,
                                deb.version,
                                "--arch",
                                deb.arch};
  for (const auto& [flag, value] : {std::pair{"--depends", deb.depends},
                                    {"--provides", deb.provides},
                                    {"--conflicts", deb.conflicts}}) {
    if (!value.empty()) {
      argv.insert(argv.end(), {flag, value});
    }
  }
  int n = 0;
  for (const auto& [path, content] : deb.files) {
    const fs::path local = dir / (".file-" + deb.name + "-" + std::to_string(n++));
    write_text(local, content, 0755);
    argv.insert(argv.end(), {"--file", local.string() + "=" + path});
  }
  if (deb.fail_postinst) {
    argv.push_back("--fail-postinst");
  }
  return first_line(run_checked(argv));
}

LoopbackAptRepo::LoopbackAptRepo(std::string suite,
                                 const std::map<std::string, std::vector<StandinDeb>>& components)
    : m_suite(std::move(suite)) {
  std::vector<std::string> argv{(k_support / "apt-repo.sh").string(), "build",
                                (m_dir / "repo").string(), m_suite};
  for (const auto& [component, debs] : components) {
    const fs::path debdir = m_dir / ("debs-" + component);
    fs::create_directories(debdir);
    for (const StandinDeb& d : debs) {
      build_standin_deb(d, debdir);
    }
    argv.push_back(component + "=" + debdir.string());
  }
  run_checked(argv);
  m_server = std::make_unique<LoopbackHttpServer>(m_dir / "repo", m_dir / "http.log");
}

LoopbackAptRepo::~LoopbackAptRepo() = default;

std::string LoopbackAptRepo::url() const {
  return m_server->url();
}

LoopbackHttpServer::LoopbackHttpServer(const fs::path& dir, const fs::path& log)
    : m_port(free_port("127.0.0.1")) {
  SpawnOptions spawn;
  spawn.stdout_path = log;
  spawn.stderr_path = log;
  m_server = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/python3", "-m", "http.server", std::to_string(m_port),
                               "--bind", "127.0.0.1", "--directory", dir.string()},
      spawn);
  for (int i = 0; i < 100 && !port_accepts("127.0.0.1", m_port); ++i) {
    if (!m_server->is_running()) {
      throw std::runtime_error("LoopbackHttpServer: http.server exited: " + read_text(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

LoopbackHttpServer::~LoopbackHttpServer() {
  m_server->stop();
}

std::string LoopbackHttpServer::url() const {
  return "http://127.0.0.1:" + std::to_string(m_port);
}

std::string LoopbackAptRepo::keyring() const {
  return read_text(m_dir / "repo/keyring.gpg");
}

std::string LoopbackAptRepo::sources(const std::string& keyring_path,
                                     const std::string& components) const {
  return "Types: deb\nURIs: " + url() + "\nSuites: " + m_suite + "\nComponents: " + components +
         "\nSigned-By: " + keyring_path + "\n";
}

void LoopbackAptRepo::install_into(const RealHost& host, const std::string& name,
                                   const std::string& components) const {
  const std::string keyring_path = "/etc/apt/keyrings/" + name + ".gpg";
  fs::create_directories(host.root() / "etc/apt/keyrings");
  write_text(host.root() / keyring_path.substr(1), keyring());
  write_text(host.root() / ("etc/apt/sources.list.d/" + name + ".sources"),
             sources(keyring_path, components));
}

}  // namespace gm::testing
