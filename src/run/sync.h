// Moving a project between the laptop and its folder on a machine: rsync over OpenSSH (the
// machine's key, a known_hosts holding only its pinned key) when both ends have rsync, so only
// what changed moves and an interrupted transfer resumes; otherwise a tar stream up, SFTP down,
// over our own pinned session.
#pragma once

#include "gm/machine.h"
#include "run/jobs.h"
#include "run/project.h"
#include "ssh/session.h"

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace gm::run {

/// How to reach the machine.
struct SyncTarget {
  SshTarget ssh;
  std::filesystem::path known_hosts;  ///< the machine's pinned known_hosts file
  ssh::Session* session = nullptr;    ///< for the fallback without rsync
  HostSide host;
};

struct SyncStats {
  std::size_t files_sent = 0;  ///< files that moved (rsync: changed ones only)
  bool rsync = false;
};

/// Sends the project's files (project_files) to host.project_dir.
SyncStats upload(const Project& project, const SyncTarget& target);

/// Copies path (relative to the project) from the machine into the local project.
SyncStats download(const Project& project, const SyncTarget& target, const std::string& path);

/// The rsync -e value: OpenSSH with the machine's key and pinned known_hosts, no prompts.
std::string rsync_ssh_command(const SshTarget& ssh, const std::filesystem::path& known_hosts);

}  // namespace gm::run
