#include "run/sync.h"

#include "gm/error.h"
#include "run/local_process.h"
#include "ssh/interactive.h"
#include "util/fd.h"
#include "util/path_search.h"
#include "util/shell.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace gm::run {

namespace fs = std::filesystem;

namespace {

/// An unnamed temporary file holding content, positioned at its start (a child's stdin).
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

std::string remote_spec(const SyncTarget& target, const std::string& path) {
  return target.ssh.user + "@" + target.ssh.host + ":" + path;
}

/// Runs rsync; returns how many files it moved (its --out-format lines that are not folders).
std::size_t run_rsync(std::vector<std::string> args, int stdin_fd, const std::string& cwd,
                      const std::string& subject) {
  args.insert(args.begin(), {"rsync", "-a", "--partial", "--out-format=%n"});
  LocalProcess rsync(args, cwd, stdin_fd);
  std::string out;
  rsync.read_stdout([&](std::string_view chunk) { out += chunk; });
  if (int status = rsync.wait(); status != 0) {
    throw Error(subject, "rsync failed", "rsync exited with status " + std::to_string(status),
                "its message is above; run again to resume (what was sent stays)",
                k_exit_not_started);
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

std::string rsync_ssh_command(const SshTarget& ssh, const fs::path& known_hosts) {
  std::vector<std::string> argv =
      ssh::openssh_argv("ssh", ssh, known_hosts, {"-o", "BatchMode=yes"}, "", false);
  argv.pop_back();  // the destination: rsync adds it
  std::string out;
  for (const std::string& word : argv) {
    // rsync splits -e on spaces and honours single quotes (not backslashes).
    out += (out.empty() ? "" : " ") + ("'" + word + "'");
  }
  return out;
}

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
    stats.files_sent = run_rsync(
        {"--from0", "--files-from=-", "-e", rsync_ssh_command(target.ssh, target.known_hosts), "./",
         remote_spec(target, target.host.project_dir + "/")},
        input.get(), project.dir.string(), subject);
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
    stats.files_sent = run_rsync({"-e", rsync_ssh_command(target.ssh, target.known_hosts),
                                  remote_spec(target, remote), local.parent_path().string() + "/"},
                                 -1, {}, subject);
    return stats;
  }
  bool is_dir = target.session->run("test -d " + util::shell_quote(remote)).exit_status == 0;
  target.session->download_path(remote, local, is_dir);
  stats.files_sent = 1;
  return stats;
}

}  // namespace gm::run
