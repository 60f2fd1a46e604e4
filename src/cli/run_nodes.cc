// `gpumachine run NAME --nodes all [--image IMAGE] [--dir DIR] [-e K=V]... -- CMD...` on a
// cluster (docs/clusters.md): the project synced to every node in parallel, then CMD on every node
// at once through cluster::fanout with the rank environment (MASTER_ADDR: node 0's private
// address), output prefixed by rank, the first failing rank's status as the command's.
#include "cli/run.h"

#include "cluster/fanout.h"
#include "gm/error.h"
#include "machine/cluster_nodes.h"
#include "machine/connect.h"
#include "machine/setup.h"
#include "run/job_env.h"
#include "util/log.h"
#include "util/shell.h"

#include <exception>
#include <thread>

namespace gm::cli {

namespace {

/// The rank environment's names, passed into the container by name (docker run -e NAME).
constexpr const char* k_rank_names[] = {"NODE_RANK",         "NNODES",      "NODE_IPS",
                                        "MASTER_ADDR",       "MASTER_PORT", "GPUS_PER_NODE",
                                        "NCCL_SOCKET_IFNAME"};

/// The command runs in a container: an image is given, or the project's Dockerfile makes one.
bool uses_container(const NodesRun& o, const run::Project& project) {
  return !o.image.empty() || std::filesystem::is_regular_file(project.dir / o.dockerfile);
}

/// One node's side of the run: its record (address, pinned key) and its project folder.
struct NodeSide {
  MachineRecord record;
  run::HostSide host;
};

/// The job's environment file beside the project, "~/gpumachine/jobs/ID." (as job.sh keeps its
/// files) + the rank + ".env": private, read and removed by the rank's command (one per rank, in
/// case nodes share a folder).
std::string env_file_prefix(const run::HostSide& host, const std::string& id) {
  return (std::filesystem::path(host.project_dir).parent_path().parent_path() / "jobs" / id)
             .string() +
         ".";
}

/// Syncs the project to the node, builds the image there when the project's Dockerfile is the
/// image, and leaves the job's environment in its private file.
NodeSide prepare_node(const MachineRecord& record, int rank, const run::Project& project,
                      const NodesRun& o, const std::string& env, const std::string& id) {
  NodeSide side{machine::node_record(record, rank), {}};
  std::unique_ptr<ssh::Session> session = machine::connect(side.record);
  session->set_command_timeout({});
  run::Jobs jobs(*session, record.name);
  side.host = jobs.prepare(project.remote_name);
  bool container = uses_container(o, project);
  std::string node = "machine '" + record.name + "' node " + std::to_string(rank);
  if (container && !side.host.docker) {
    throw Error(node, "has no docker", "",
                "`gpumachine provision " + record.name + "` installs Docker and the NVIDIA toolkit",
                run::k_exit_not_started);
  }
  run::SyncTarget target{.session = session.get(), .host = side.host};
  upload_project(project, target);
  if (container && o.image.empty()) {
    jobs.build(project.image_tag, side.host.project_dir, o.dockerfile,
               [](std::string_view c) { write_all(stderr, c); });
  }
  session->upload(env_file_prefix(side.host, id) + std::to_string(rank) + ".env", env, 0600);
  return side;
}

/// What every rank runs, in the project's folder: the job's environment from its file, then the
/// command on the host, or in a container (host network, the project at /workspace, the rank
/// environment passed by name) when there is an image.
std::string rank_command(const NodesRun& o, const run::Project& project,
                         const std::string& project_dir, const std::string& env_prefix, bool gpus) {
  std::string command;
  for (const std::string& word : o.command) {
    command += (command.empty() ? "" : " ") + word;
  }
  std::string file = util::shell_quote(env_prefix) + "\"$NODE_RANK\".env";
  std::string cd = "cd " + util::shell_quote(project_dir) + " || exit 125; ";
  if (!uses_container(o, project)) {
    return cd + "while IFS= read -r line; do export \"$line\"; done <" + file + "; rm -f " + file +
           "; " + command;
  }
  std::string image = o.image.empty() ? project.image_tag : o.image;
  std::string run = "docker run --rm --init --network host --ipc=host -v " +
                    util::shell_quote(project_dir + ":/workspace") + " -w /workspace --env-file " +
                    file + (gpus ? " --gpus all" : "");
  for (const char* name : k_rank_names) {
    run += std::string(" -e ") + name;
  }
  run += " " + util::shell_quote(image) + " sh -c " + util::shell_quote(command);
  return cd + run + " </dev/null; status=$?; rm -f " + file + "; exit $status";
}

}  // namespace

int run_on_nodes(Context& ctx, const NodesRun& o) {
  if (o.nodes != "all") {
    throw UsageError("--nodes " + o.nodes, "only 'all' is supported", "use --nodes all");
  }
  if (o.command.empty()) {
    throw UsageError("run", "no command given",
                     "put it after --: gpumachine run " + o.name + " --nodes all -- torchrun ...");
  }
  std::string env = run::job_env(o.env, o.env_files);
  run::Project project = run::open_project(o.dir.empty() ? "." : o.dir);
  MachineRecord record = machine::load_for_ssh(ctx.store(), o.name, "run");
  if (!record.cluster) {
    throw UsageError("--nodes all", "machine '" + o.name + "' is not a cluster",
                     "drop --nodes, or create a cluster: gpumachine create NAME --nodes N");
  }
  std::string id = run::new_job_id();

  // Every node at once: each syncs over its own session.
  std::vector<int> ranks = machine::node_ranks(record);
  std::vector<NodeSide> sides(ranks.size());
  std::vector<std::exception_ptr> failures(ranks.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        sides[i] = prepare_node(record, ranks[i], project, o, env, id);
      } catch (...) {
        failures[i] = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (const std::exception_ptr& failure : failures) {
    if (failure) {
      std::rethrow_exception(failure);
    }
  }

  std::vector<cluster::Node> nodes = machine::fanout_nodes(record);
  cluster::FanoutOptions options;
  const run::HostSide& first = sides.front().host;
  options.command = rank_command(o, project, first.project_dir, env_file_prefix(first, id),
                                 record.size.gpu_count > 0);
  options.master_port = o.master_port;
  options.on_line = [](cluster::Stream stream, std::string_view line) {
    write_all(stream == cluster::Stream::out ? stdout : stderr, line);
  };
  util::info("running on " + std::to_string(nodes.size()) + " nodes of '" + o.name +
             "' (MASTER_ADDR " + nodes.front().private_ip + ")");
  cluster::FanoutResult result = cluster::fanout(nodes, options);
  if (result.failed_rank) {
    util::warn("node " + std::to_string(*result.failed_rank) + " failed with exit status " +
               std::to_string(result.exit_status) + "; the other nodes were stopped");
  }
  return result.exit_status;
}

}  // namespace gm::cli
