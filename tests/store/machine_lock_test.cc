#include "gm/error.h"
#include "store/store.h"
#include "store/temp_home.h"
#include "util/fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

namespace gm::store {
namespace {

using testing::TempDir;

/// A child process that takes a machine's lock and holds it until killed.
class LockHolder {
 public:
  LockHolder(const std::filesystem::path& home, const std::string& name, const std::string& verb) {
    int ready[2];
    if (::pipe(ready) != 0) {
      std::abort();
    }
    m_pid = ::fork();
    if (m_pid == 0) {
      ::close(ready[0]);
      try {
        Store store(home);
        MachineLock lock = store.lock(name, verb);
        char ok = 'y';
        [[maybe_unused]] ssize_t n = ::write(ready[1], &ok, 1);
        ::pause();
      } catch (...) {
      }
      ::_exit(1);
    }
    ::close(ready[1]);
    char ok = 'n';
    m_ready = ::read(ready[0], &ok, 1) == 1 && ok == 'y';
    ::close(ready[0]);
  }
  ~LockHolder() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      int status = 0;
      ::waitpid(m_pid, &status, 0);
    }
  }
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;

  pid_t pid() const { return m_pid; }
  bool ready() const { return m_ready; }
  /// Kills the child; the kernel releases its lock.
  void stop() {
    ::kill(m_pid, SIGKILL);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    m_pid = -1;
  }

 private:
  pid_t m_pid = -1;
  bool m_ready = false;
};

TEST(StoreLock, SecondProcessTimesOutNamingTheHolder) {
  TempDir tmp;
  LockHolder holder(tmp.home(), "gpu1", "create");
  ASSERT_TRUE(holder.ready());
  Store store(tmp.home());
  auto start = std::chrono::steady_clock::now();
  try {
    MachineLock lock = store.lock("gpu1", "rm", std::chrono::milliseconds(200));
    FAIL() << "took a held lock";
  } catch (const LockedError& e) {
    EXPECT_EQ(std::string(e.what()), "machine 'gpu1': busy: another gpumachine command (pid " +
                                         std::to_string(holder.pid()) +
                                         ", `create`) is working on it");
    EXPECT_EQ(e.hint(), "wait for it to finish, or stop it");
    EXPECT_EQ(e.exit_code(), exit_code::k_locked);
  }
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  EXPECT_LT(waited, std::chrono::seconds(2));
}

TEST(StoreLock, WaitsForTheHolderToFinish) {
  TempDir tmp;
  LockHolder holder(tmp.home(), "gpu1", "create");
  ASSERT_TRUE(holder.ready());
  holder.stop();
  Store store(tmp.home());
  EXPECT_NO_THROW(store.lock("gpu1", "rm", std::chrono::milliseconds(0)));
}

TEST(StoreLock, DifferentMachinesLockInParallel) {
  TempDir tmp;
  LockHolder holder(tmp.home(), "gpu1", "create");
  ASSERT_TRUE(holder.ready());
  Store store(tmp.home());
  EXPECT_NO_THROW(store.lock("gpu2", "create", std::chrono::milliseconds(0)));
  EXPECT_THROW(store.lock("gpu1", "ssh", std::chrono::milliseconds(0)), LockedError);
}

TEST(StoreLock, ReleasedOnDestructionAndMove) {
  TempDir tmp;
  Store store(tmp.home());
  {
    MachineLock first = store.lock("gpu1", "create");
    EXPECT_THROW(store.lock("gpu1", "rm", std::chrono::milliseconds(0)), LockedError);
    MachineLock moved = std::move(first);
    EXPECT_THROW(store.lock("gpu1", "rm", std::chrono::milliseconds(0)), LockedError);
    MachineLock assigned;
    assigned = std::move(moved);
    EXPECT_THROW(store.lock("gpu1", "rm", std::chrono::milliseconds(0)), LockedError);
  }
  EXPECT_NO_THROW(store.lock("gpu1", "rm", std::chrono::milliseconds(0)));
}

TEST(StoreLock, DescriptorIsCloseOnExec) {
  TempDir tmp;
  Store store(tmp.home());
  MachineLock lock = store.lock("gpu1", "create");
  std::filesystem::path lock_path = std::filesystem::canonical(tmp.home() / "locks" / "gpu1.lock");
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::filesystem::path target = std::filesystem::read_symlink(entry.path(), ec);
    if (ec || target != lock_path) {
      continue;
    }
    int fd = std::stoi(entry.path().filename().string());
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ++found;
  }
  EXPECT_EQ(found, 1);
}

TEST(StoreLock, RefusesInvalidNames) {
  TempDir tmp;
  Store store(tmp.home());
  EXPECT_THROW(store.lock("../../etc/passwd", "create"), UsageError);
}

TEST(StoreLock, ConcurrentSavesOfDifferentMachines) {
  // Processes saving different machines at once all succeed and every Host block survives. (The
  // lost update the ssh_config lock prevents has too small a window to catch here reliably.)
  TempDir tmp;
  constexpr int k_per_process = 8;
  pid_t children[3];
  for (int p = 0; p < 3; ++p) {
    children[p] = ::fork();
    if (children[p] == 0) {
      try {
        Store store(tmp.home());
        for (int i = 0; i < k_per_process; ++i) {
          MachineRecord r = testing::full_record("p" + std::to_string(p) + "-" + std::to_string(i),
                                                 "203.0.113." + std::to_string(i + 1));
          store.save(store.lock(r.name, "test"), r);
        }
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  Store store(tmp.home());
  std::string config = util::read_file(store.ssh_config_path());
  for (int p = 0; p < 3; ++p) {
    for (int i = 0; i < k_per_process; ++i) {
      std::string host = "Host p" + std::to_string(p) + "-" + std::to_string(i) + "\n";
      EXPECT_NE(config.find(host), std::string::npos) << host;
    }
  }
}

}  // namespace
}  // namespace gm::store
