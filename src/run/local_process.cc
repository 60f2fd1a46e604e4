#include "run/local_process.h"

#include "gm/error.h"
#include "util/path_search.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace gm::run {

LocalProcess::LocalProcess(const std::vector<std::string>& argv, const std::string& cwd,
                           int stdin_fd, int out_fd, int fd3) {
  std::optional<std::string> program = util::find_in_path(argv.at(0));
  if (!program) {
    throw Error(argv[0], "is not installed (not in PATH)", "",
                "install it (Debian: apt-get install " + argv[0] + ")");
  }
  int fds[2] = {-1, -1};
  if (out_fd < 0 && ::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(argv[0], "cannot make a pipe", std::strerror(errno));
  }
  m_stdout.reset(fds[0]);
  util::Fd write_end(fds[1]);
  // Above 3, so that dup2 onto 3 always makes a copy (without close-on-exec).
  util::Fd above_3(fd3 < 0 ? -1 : ::fcntl(fd3, F_DUPFD_CLOEXEC, 4));
  util::Fd null_in(stdin_fd < 0 ? ::open("/dev/null", O_RDONLY | O_CLOEXEC) : -1);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdin_fd < 0 ? null_in.get() : stdin_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd < 0 ? write_end.get() : out_fd, 1);
  if (above_3.get() >= 0) {
    posix_spawn_file_actions_adddup2(&actions, above_3.get(), 3);
  }
  if (!cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  }
  std::vector<std::string> storage = argv;
  storage[0] = *program;
  std::vector<char*> args;
  for (std::string& a : storage) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  int rc = posix_spawn(&m_pid, storage[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    m_pid = -1;
    throw Error(argv[0], "cannot be started", std::strerror(rc));
  }
}

LocalProcess::~LocalProcess() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    wait();
  }
}

void LocalProcess::read_stdout(const std::function<void(std::string_view)>& on_chunk) {
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(m_stdout.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;
    }
    on_chunk(std::string_view(buffer, static_cast<std::size_t>(n)));
  }
}

int LocalProcess::wait() {
  int status = 0;
  while (::waitpid(m_pid, &status, 0) < 0) {
    if (errno != EINTR) {
      m_pid = -1;
      return 127;
    }
  }
  m_pid = -1;
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

std::string capture(const std::vector<std::string>& argv, const std::string& cwd,
                    const std::string& subject, const std::string& problem) {
  LocalProcess child(argv, cwd);
  std::string out;
  child.read_stdout([&](std::string_view chunk) { out += chunk; });
  if (int status = child.wait(); status != 0) {
    throw Error(subject, problem, argv[0] + " exited with status " + std::to_string(status));
  }
  return out;
}

}  // namespace gm::run
