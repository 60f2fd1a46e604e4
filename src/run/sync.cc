#include "run/sync.h"

#include "gm/error.h"
#include "run/local_process.h"
#include "util/fd.h"
#include "util/path_search.h"
#include "util/shell.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace gm::run {

namespace fs = std::filesystem;

namespace {

/// rsync's remote shell: hands us the command rsync wants run on the machine (its words after
/// the host, each NUL-terminated, then an empty one) over descriptor 3, a socket whose other end
/// we pump through our own session; then copies rsync's bytes to it (in the background, from a
/// copy of stdin: an asynchronous list's own stdin is /dev/null) and its bytes to rsync, and
/// ends, as ssh does, when the remote command has (we close our end).
constexpr const char* k_relay =
    "shift; printf \"%s\\0\" \"$@\" \"\" >&3 || exit 1; exec 4<&0; cat <&4 >&3 & cat <&3; "
    "kill $! 2>/dev/null; exit 0";

/// An unnamed temporary file holding content, positioned at its start (a child's stdin, or,
/// empty, its stdout).
util::Fd temp_input(const std::string& content) {
  util::Fd fd(::open(fs::temp_directory_path().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    throw Error("sync", "cannot make a temporary file", std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n <= 0) {
      throw Error("sync", "cannot write a temporary file", std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

/// The machine's path as rsync names it: the host part only reaches our relay.
std::string remote_spec(const std::string& path) {
  return "machine:" + path;
}

/// Reads the remote command the relay sends: words up to an empty one, joined with spaces (as
/// OpenSSH joins a command's words; rsync quotes for the remote shell itself). Empty when the
/// relay ended before (rsync failed before it started one).
std::string relayed_command(int fd) {
  std::string words;
  char c = 0;
  bool word_empty = true;
  while (true) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return {};
    }
    if (c == '\0' && word_empty) {
      return words;
    }
    if (c == '\0') {
      word_empty = true;
      continue;
    }
    if (word_empty && !words.empty()) {
      words.push_back(' ');
    }
    word_empty = false;
    words.push_back(c);
  }
}

/// Runs rsync with its remote shell relayed through the machine's session (one connection, the
/// pinned one); returns how many files it moved (its --out-format lines that are not folders).
std::size_t run_rsync(std::vector<std::string> args, int stdin_fd, const std::string& cwd,
                      ssh::Session& session, const std::string& subject) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw Error(subject, "cannot make a socket pair", std::strerror(errno));
  }
  util::Fd ours(pair[0]);
  util::Fd theirs(pair[1]);
  util::Fd listing = temp_input("");
  args.insert(args.begin(), {"rsync", "-a", "--partial", "--out-format=%n", "-e",
                             std::string("sh -c '") + k_relay + "' gm-relay"});
  LocalProcess rsync(args, cwd, stdin_fd, listing.get(), theirs.get());
  theirs.reset();  // rsync's remote shell holds the only other end: EOF when it ends
  int remote = 0;
  if (std::string command = relayed_command(ours.get()); !command.empty()) {
    remote = session.exec_fd(
        command, ours.get(),
        [&](std::string_view chunk) {
          while (!chunk.empty()) {
            ssize_t n = ::send(ours.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
              continue;
            }
            if (n <= 0) {
              return;  // rsync went: its status says why
            }
            chunk.remove_prefix(static_cast<std::size_t>(n));
          }
        },
        [](std::string_view chunk) { std::fwrite(chunk.data(), 1, chunk.size(), stderr); });
  }
  ours.reset();
  int status = rsync.wait();
  if (status != 0 || remote != 0) {
    throw Error(subject, "rsync failed",
                status != 0 ? "rsync exited with status " + std::to_string(status)
                            : "rsync on the machine exited with status " + std::to_string(remote),
                "its message is above; run again to resume (what was sent stays)",
                k_exit_not_started);
  }
  std::string out;
  ::lseek(listing.get(), 0, SEEK_SET);
  char buffer[65536];
  for (ssize_t n; (n = ::read(listing.get(), buffer, sizeof buffer)) > 0;) {
    out.append(buffer, static_cast<std::size_t>(n));
  }
  std::size_t files = 0;
  std::size_t start = 0;
  while (start < out.size()) {
    std::size_t end = out.find('\n', start);
    if (end == std::string::npos) {
      end = out.size();
    }
    if (end > start && out[end - 1] != '/') {
      ++files;
    }
    start = end + 1;
  }
  return files;
}

}  // namespace

SyncStats upload(const Project& project, const SyncTarget& target) {
  std::vector<std::string> files = project_files(project);
  std::string list;
  for (const std::string& f : files) {
    list += f;
    list.push_back('\0');
  }
  util::Fd input = temp_input(list);
  const std::string subject = "sync of " + project.dir.string();
  SyncStats stats;
  if (target.host.rsync && util::find_in_path("rsync")) {
    stats.rsync = true;
    stats.files_sent =
        run_rsync({"--from0", "--files-from=-", "./", remote_spec(target.host.project_dir + "/")},
                  input.get(), project.dir.string(), *target.session, subject);
    return stats;
  }
  // Without rsync on one end: everything, as one tar stream over our session.
  LocalProcess tar({"tar", "--null", "-T", "-", "-cf", "-"}, project.dir.string(), input.get());
  util::Fd stream = tar.take_stdout();
  std::string err;
  int remote = target.session->exec_fd(
      "tar -xf - -C " + util::shell_quote(target.host.project_dir), stream.get(),
      [](std::string_view) {}, [&](std::string_view c) { err += c; });
  stream.reset();
  int local = tar.wait();
  if (remote != 0 || local != 0) {
    throw Error(subject, "the tar stream failed",
                remote != 0 ? err : "local tar exited with status " + std::to_string(local),
                "install rsync on the machine and here for resumable transfers",
                k_exit_not_started);
  }
  stats.files_sent = files.size();
  return stats;
}

SyncStats download(const Project& project, const SyncTarget& target, const std::string& path) {
  fs::path local = project.dir / path;
  fs::create_directories(local.parent_path());
  const std::string remote = target.host.project_dir + "/" + path;
  const std::string subject = "download of " + path;
  SyncStats stats;
  if (target.host.rsync && util::find_in_path("rsync")) {
    stats.rsync = true;
    stats.files_sent = run_rsync({remote_spec(remote), local.parent_path().string() + "/"}, -1, {},
                                 *target.session, subject);
    return stats;
  }
  bool is_dir = target.session->run("test -d " + util::shell_quote(remote)).exit_status == 0;
  target.session->download_path(remote, local, is_dir);
  stats.files_sent = 1;
  return stats;
}

}  // namespace gm::run
