#include "support/dockerd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace gm::testing {

namespace fs = std::filesystem;

namespace {
constexpr const char* k_dockerd = "/usr/sbin/dockerd";
constexpr const char* k_client = "/usr/bin/docker";  // the daemon's own client, not a newer one
constexpr const char* k_busybox = "/bin/busybox";
}  // namespace

std::optional<std::string> DockerdFixture::unavailable() {
  if (::access(k_dockerd, X_OK) != 0 || ::access(k_client, X_OK) != 0) {
    return std::string("no Docker daemon here (Debian: apt-get install docker.io)");
  }
  if (::access(k_busybox, X_OK) != 0) {
    return std::string("no busybox for the test image (Debian: apt-get install busybox-static)");
  }
  if (::geteuid() != 0) {
    return std::string("dockerd needs root");
  }
  return std::nullopt;
}

DockerdFixture::DockerdFixture() {
  const fs::path dir = m_dir.path();
  SpawnOptions o;
  o.stdout_path = dir / "dockerd.log";
  o.stderr_path = dir / "dockerd.log";
  m_daemon = std::make_unique<Process>(
      std::vector<std::string>{k_dockerd, "--data-root", (dir / "data").string(), "--exec-root",
                               (dir / "exec").string(), "--pidfile", (dir / "dockerd.pid").string(),
                               "-H", "unix://" + socket().string(), "--bridge=none",
                               "--iptables=false", "--ip-masq=false"},
      o);
  bool up = false;
  for (int i = 0; i < 600 && !up; ++i) {  // a safety net, not a timing assertion
    up = docker({"version"}).status == 0;
    if (!up) {
      if (!m_daemon->is_running()) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::ifstream log_in(dir / "dockerd.log");
  std::string log((std::istreambuf_iterator<char>(log_in)), std::istreambuf_iterator<char>());
  if (!up) {
    throw std::runtime_error("dockerd did not come up: " + log);
  }
  fs::create_directories(dir / "rootfs/bin");
  fs::copy_file(k_busybox, dir / "rootfs/bin/busybox");
  for (const char* tool : {"sh", "echo", "cat", "sleep", "ls", "mkdir", "env", "test", "true"}) {
    fs::create_symlink("busybox", dir / "rootfs/bin" / tool);
  }
  CaptureResult tar = run_capture(
      {"tar", "-C", (dir / "rootfs").string(), "-cf", (dir / "rootfs.tar").string(), "."});
  CaptureResult imported = docker({"import", (dir / "rootfs.tar").string(), k_image});
  if (tar.status != 0 || imported.status != 0) {
    throw std::runtime_error("cannot import the busybox image: " + tar.err + imported.err);
  }
  fs::create_directories(client_dir());
  std::ofstream wrapper(client_dir() / "docker");
  wrapper << "#!/bin/sh\nexec " << k_client << " -H unix://" << socket().string() << " \"$@\"\n";
  wrapper.close();
  fs::permissions(client_dir() / "docker", fs::perms::owner_all);
  // docker-compose (v1) finds the daemon through DOCKER_HOST.
  std::ofstream compose(client_dir() / "docker-compose");
  compose << "#!/bin/sh\nDOCKER_HOST=unix://" << socket().string()
          << " exec /usr/bin/docker-compose \"$@\"\n";
  compose.close();
  fs::permissions(client_dir() / "docker-compose", fs::perms::owner_all);
}

DockerdFixture::~DockerdFixture() {
  // Containers first (dockerd would stop them too, slower), then the daemon by its pid; its
  // containerd goes with it.
  remove_containers();
  docker(
      {"network", "prune", "-f"});  // a compose network's bridge, should a test not get to `down`
  m_daemon->stop(std::chrono::seconds(20));
}

void DockerdFixture::remove_containers() const {
  CaptureResult ids = docker({"ps", "-aq"});
  std::vector<std::string> rm = {"rm", "-f"};
  std::istringstream in(ids.out);
  for (std::string id; in >> id;) {
    rm.push_back(id);
  }
  if (rm.size() > 2) {
    docker(rm);
  }
}

CaptureResult DockerdFixture::docker(std::vector<std::string> args) const {
  args.insert(args.begin(), {k_client, "-H", "unix://" + socket().string()});
  return run_capture(args);
}

}  // namespace gm::testing
