// The per-machine lock: flock on <home>/locks/<name>.lock. The kernel drops the lock when the
// holder exits, however it exits, so a crashed command never leaves a machine locked.
#include "gm/error.h"
#include "store/store.h"
#include "util/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

namespace gm::store {

namespace {

// Short enough to feel immediate when the holder finishes, long enough to cost nothing.
constexpr std::chrono::milliseconds k_poll_interval{50};

/// "pid verb" as the holder wrote it, or "" when unreadable or not written yet.
std::string read_holder(int fd) {
  char buf[256];
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) {
    return {};
  }
  std::string text(buf, static_cast<std::size_t>(n));
  if (auto nl = text.find('\n'); nl != std::string::npos) {
    text.resize(nl);
  }
  return text;
}

std::string describe_holder(const std::string& holder) {
  auto space = holder.find(' ');
  if (holder.empty() || space == std::string::npos || space == 0) {
    return "another gpumachine command";
  }
  return "another gpumachine command (pid " + holder.substr(0, space) + ", `" +
         holder.substr(space + 1) + "`)";
}

}  // namespace

MachineLock::MachineLock(MachineLock&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)),
      m_home(std::move(other.m_home)),
      m_name(std::move(other.m_name)) {}

MachineLock& MachineLock::operator=(MachineLock&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = std::exchange(other.m_fd, -1);
    m_home = std::move(other.m_home);
    m_name = std::move(other.m_name);
  }
  return *this;
}

bool MachineLock::holds(const std::filesystem::path& home, std::string_view name) const {
  return m_fd >= 0 && m_home == home && m_name == name;
}

MachineLock::~MachineLock() {
  if (m_fd >= 0) {
    ::close(m_fd);  // Closing the only descriptor releases the flock.
  }
}

MachineLock Store::lock(std::string_view name, std::string_view verb,
                        std::chrono::milliseconds wait) {
  validate_name(name);
  std::filesystem::path dir = m_home / "locks";
  util::make_private_dir(dir);
  std::filesystem::path path = dir / (std::string(name) + ".lock");
  // O_CLOEXEC: a child we spawn (ssh, a provisioning helper) must not inherit, and so keep, the
  // lock after we exit.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw Error(path.string(), "cannot open lock file", std::strerror(errno));
  }
  MachineLock lock(fd, m_home, std::string(name));  // Owns fd from here on, also when we throw.
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      break;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EWOULDBLOCK) {
      throw Error(path.string(), "cannot lock", std::strerror(errno));
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      throw LockedError("machine '" + std::string(name) + "'",
                        "busy: " + describe_holder(read_holder(fd)) + " is working on it",
                        "wait for it to finish, or stop it");
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(k_poll_interval, deadline - now));
  }
  // Tell a waiting command who holds the lock; best effort, the lock itself is what matters.
  std::string holder = std::to_string(::getpid()) + " " + std::string(verb) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    [[maybe_unused]] ssize_t n = ::pwrite(fd, holder.data(), holder.size(), 0);
  }
  return lock;
}

}  // namespace gm::store
