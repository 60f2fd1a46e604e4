// Moving a project between the laptop and its folder on a machine, over the machine's own pinned
// session: rsync when both ends have it (its remote shell relayed through the session, so one
// connection serves the whole sync), so only what changed moves and an interrupted transfer
// resumes; otherwise a tar stream up, SFTP down.
#pragma once

#include "run/jobs.h"
#include "run/project.h"
#include "ssh/session.h"

#include <cstddef>
#include <string>
#include <vector>

namespace gm::run {

/// How to reach the machine.
struct SyncTarget {
  ssh::Session* session = nullptr;
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

}  // namespace gm::run
