// What `run`, `attach`, `sync` and `compose` share: reaching the project's folder on a machine
// and following a job to its end.
#pragma once

#include "cli/context.h"
#include "gm/machine.h"
#include "run/jobs.h"
#include "run/project.h"
#include "run/sync.h"
#include "ssh/forward.h"
#include "ssh/session.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace gm::cli {

/// A machine's project folder, prepared (made, its tools checked) over one session.
struct ProjectOnMachine {
  MachineRecord record;
  std::unique_ptr<ssh::Session> session;
  run::SyncTarget target;
};

/// Connects to the machine and makes the project's folder there; with needs_docker, refuses a
/// machine without docker (exit 125, with how to provision it).
ProjectOnMachine open_project_on(Context& ctx, const std::string& name, const run::Project& project,
                                 const std::string& verb, bool needs_docker = true);

/// Sends the project (saying its size before a first upload, and how many files moved).
void upload_project(const run::Project& project, const run::SyncTarget& target);

/// Copies each path (relative to the project) from the machine into the project, saying so.
void download_results(const run::Project& project, const run::SyncTarget& target,
                      const std::vector<std::string>& paths);

/// Forwards of these ports on the machine's 127.0.0.1, each to the same port here when it is free.
std::vector<ssh::ForwardSpec> same_port_forwards(const std::vector<int>& ports);

/// Writes a chunk of a job's output to stream, at once (flushed).
void write_all(FILE* stream, std::string_view chunk);

/// Streams the job's output until it ends and returns its exit status. The first Ctrl-C asks
/// the job to stop and goes on following it; a second one leaves it running (and says how to
/// attach again).
int follow_job(const MachineRecord& record, const std::string& id);

/// `run NAME --nodes all`: what run_on_nodes() takes of run's options.
struct NodesRun {
  std::string name;
  std::string nodes;  ///< "all"
  std::string image;  ///< empty: the project's Dockerfile, else none (the command runs on the host)
  std::string dir;
  std::string dockerfile = "Dockerfile";
  std::vector<std::string> env;
  std::vector<std::string> env_files;
  std::vector<std::string> command;
  int master_port = 29500;
};

/// Syncs the project to every node of the cluster and runs the command on all of them at once
/// (cluster::fanout); returns the first failing rank's exit status (run_nodes.cc).
int run_on_nodes(Context& ctx, const NodesRun& options);

}  // namespace gm::cli
