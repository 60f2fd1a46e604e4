// `gpumachine run NAME [--image IMAGE] [--dir DIR] [-e K=V]... [--env-file F]... [--detach]
// [--download PATH]... -- CMD...`: sync the project, build its Dockerfile, run CMD in a container
// on the machine as a job that outlives the connection, follow its output, copy results back and
// exit with the job's own status (docs/run.md). `run -f gpumachine.yaml [--rm]` takes all of it
// from a task file, creating the machine when it does not exist and removing it afterwards.
#include "cli/run.h"

#include "cli/task_file.h"
#include "cli/tunnel.h"
#include "cli/verbs.h"
#include "gm/error.h"
#include "machine/connect.h"
#include "machine/setup.h"
#include "run/job_env.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/time.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

namespace gm::cli {

namespace {

struct RunOptions {
  std::string name;
  std::string image;
  std::string dir;  ///< empty: the current folder (or the task file's dir)
  std::string dockerfile = "Dockerfile";
  std::vector<std::string> env;
  std::vector<std::string> env_files;
  bool detach = false;
  std::vector<std::string> downloads;
  std::vector<int> ports;
  std::vector<std::string> command;
  std::string file;  ///< a task file
  bool rm = false;
  std::string nodes;  ///< "all": every node of a cluster (run_nodes.cc)
  int master_port = 29500;
};

bool has_gpus(const MachineRecord& record) {
  return !machine::nvidia_gpus_on_pci(record).empty() ||
         machine::expected_gpus(record).value_or(0) > 0;
}

/// The job's published ports forwarded to this machine's loopback while it is followed (as
/// `forward` does, on a thread of its own with its own session), each printed as a URL.
class PortsWhileRunning {
 public:
  PortsWhileRunning(Context& ctx, const std::string& name, const std::vector<int>& ports,
                    std::unique_ptr<ssh::Session> session) {
    if (ports.empty()) {
      return;
    }
    ssh::ForwarderOptions options = tunnel_options(ctx, name);
    options.stop_requested = [this] { return m_done.load(); };  // not Ctrl-C: the job's end
    m_forwarder.emplace(same_port_forwards(ports), std::move(options));
    for (const ssh::ForwardSpec& spec : m_forwarder->specs()) {
      util::info("the job's port " + std::to_string(spec.remote_port) +
                 ": http://127.0.0.1:" + std::to_string(spec.local_port) + "/");
    }
    m_thread = std::thread([this, s = std::move(session)]() mutable {
      try {
        m_forwarder->run(std::move(s));
      } catch (const std::exception& e) {
        util::warn(std::string("the job's ports are no longer forwarded: ") + e.what());
      }
    });
  }
  ~PortsWhileRunning() {
    m_done = true;
    if (m_thread.joinable()) {
      m_thread.join();
    }
  }
  PortsWhileRunning(const PortsWhileRunning&) = delete;
  PortsWhileRunning& operator=(const PortsWhileRunning&) = delete;

 private:
  std::atomic<bool> m_done{false};
  std::optional<ssh::Forwarder> m_forwarder;
  std::thread m_thread;
};

int run_run(Context& ctx, const RunOptions& o) {
  if (o.name.empty()) {
    throw UsageError("run", "no machine given", "gpumachine run gpu1 -- python train.py");
  }
  if (o.rm && o.file.empty()) {
    throw UsageError(
        "--rm", "needs a task file (-f)",
        "gpumachine run -f gpumachine.yaml --rm, or `gpumachine rm " + o.name + "` after the run");
  }
  if (o.command.empty()) {
    throw UsageError("run", "no command given",
                     "put it after --: gpumachine run " + o.name + " -- python train.py");
  }
  for (const std::string& path : o.downloads) {
    run::check_relative(path, "--download");
  }
  if (o.detach && !o.downloads.empty()) {
    throw UsageError("--download", "needs the job's end, which --detach does not wait for",
                     "later: gpumachine sync " + o.name + " --down PATH");
  }
  std::string env = run::job_env(o.env, o.env_files);
  run::Project project = run::open_project(o.dir.empty() ? "." : o.dir);
  std::string image = o.image;
  if (image.empty()) {
    if (!std::filesystem::is_regular_file(project.dir / o.dockerfile)) {
      throw UsageError("run", "no image: the project has no Dockerfile and --image is not given",
                       "add --image IMAGE (e.g. --image pytorch/pytorch) or a Dockerfile in " +
                           project.dir.string());
    }
    image = project.image_tag;
  }
  std::string command;
  for (const std::string& word : o.command) {
    command += (command.empty() ? "" : " ") + word;
  }

  ProjectOnMachine on = open_project_on(ctx, o.name, project, "run");
  upload_project(project, on.target);
  if (o.image.empty()) {
    util::info("building " + image + " from " + (project.dir / o.dockerfile).string());
    run::Jobs(*on.session, o.name)
        .build(image, on.target.host.project_dir, o.dockerfile,
               [](std::string_view c) { write_all(stderr, c); });
  }
  std::string id = run::new_job_id();
  run::Jobs(*on.session, o.name)
      .start(id, image, on.target.host.project_dir, has_gpus(on.record), command, env, o.ports);
  if (o.detach) {
    if (ctx.json()) {
      ctx.out().print_json({{"job", id}, {"machine", o.name}});
    } else {
      ctx.out().print_line(id);
    }
    util::info("job " + id + " runs on '" + o.name + "'; `gpumachine logs " + o.name + " " + id +
               " -f` follows it, `gpumachine jobs " + o.name + "` lists it");
    for (int port : o.ports) {
      util::info("its port " + std::to_string(port) + ": `gpumachine forward " + o.name + " " +
                 std::to_string(port) + "` reaches it from here");
    }
    return exit_code::k_ok;
  }
  util::info("job " + id + " started on '" + o.name + "'");
  int status = 0;
  {
    PortsWhileRunning forwarded(ctx, o.name, o.ports, std::move(on.session));
    status = follow_job(on.record, id);
  }
  if (!o.downloads.empty()) {
    // The session may have idled for hours while the job ran: a fresh one for the results.
    download_results(project, open_project_on(ctx, o.name, project, "run").target, o.downloads);
  }
  return status;
}

/// `--rm`: removes the machine as `rm` does, saying what went.
void remove_after_run(Context& ctx, const std::string& name) {
  util::acknowledge_interrupt();  // a Ctrl-C that ended the run does not stop the removal
  nlohmann::json removed = remove_one(ctx, name, false);
  for (const auto& line : removed["actions"]) {
    util::info(line.get<std::string>());
  }
  util::info("removed '" + name + "' (--rm)");
}

/// `run -f FILE`: the task file fills what the command line left unset, the machine is created
/// when it does not exist, and with --rm removed after the run whatever its outcome.
int run_task(Context& ctx, RunOptions o) {
  TaskFile task = load_task_file(o.file);
  o.name = o.name.empty() ? task.machine : o.name;
  if (o.name.empty()) {
    throw UsageError(o.file, "names no machine",
                     "add `machine: gpu1`, or give it: gpumachine run -f " + o.file + " gpu1");
  }
  if (o.image.empty() && task.build.empty()) {
    o.image = task.image;
  } else if (o.image.empty()) {
    o.dockerfile = task.build;
  }
  o.dir = o.dir.empty() ? task.dir.string() : o.dir;
  o.env.insert(o.env.begin(), task.env.begin(), task.env.end());  // later ones win
  o.downloads = o.downloads.empty() ? task.download : o.downloads;
  o.ports = o.ports.empty() ? task.ports : o.ports;
  if (o.command.empty() && !task.run.empty()) {
    std::string command;
    for (const std::string& step : task.setup) {
      command += step + " && ";
    }
    o.command = {command.empty() ? task.run : command + "{ " + task.run + "\n}"};
  }
  if (o.rm && o.detach) {
    throw UsageError("--rm",
                     "removes the machine when the job ends, which --detach does not wait for",
                     "drop --detach, or --rm and remove it later: gpumachine rm " + o.name);
  }
  int status = 0;
  try {
    if (!ctx.store().exists(o.name)) {
      util::info("machine '" + o.name + "' does not exist: creating it (" + o.file + ")");
      status =
          create_machine(ctx, o.name, task.create.value_or(Options{}), o.file + ": machine.create");
    }
    status = status != 0 ? status : run_run(ctx, o);
  } catch (const std::exception&) {
    if (o.rm && ctx.store().exists(o.name)) {
      try {
        remove_after_run(ctx, o.name);
      } catch (const std::exception& e) {
        util::warn(std::string("--rm could not remove '") + o.name + "': " + e.what() +
                   "; remove it with `gpumachine rm " + o.name + "`");
      }
    }
    throw;
  }
  if (o.rm) {
    remove_after_run(ctx, o.name);  // a machine left behind fails the run: it costs money
  }
  return status;
}

}  // namespace

std::vector<ssh::ForwardSpec> same_port_forwards(const std::vector<int>& ports) {
  std::vector<ssh::ForwardSpec> specs;
  for (int port : ports) {
    ssh::ForwardSpec spec;
    spec.remote_port = port;
    spec.local_port = ssh::suggest_free_port(spec.local_addr, port);
    specs.push_back(spec);
  }
  return specs;
}

void write_all(FILE* stream, std::string_view chunk) {
  std::fwrite(chunk.data(), 1, chunk.size(), stream);
  std::fflush(stream);
}

ProjectOnMachine open_project_on(Context& ctx, const std::string& name, const run::Project& project,
                                 const std::string& verb, bool needs_docker) {
  ProjectOnMachine on;
  on.record = machine::load_for_ssh(ctx.store(), name, verb);
  on.session = machine::connect(on.record);
  on.session->set_command_timeout({});  // builds and transfers take as long as they take
  on.target.session = on.session.get();
  on.target.host = run::Jobs(*on.session, name).prepare(project.remote_name);
  if (needs_docker && !on.target.host.docker) {
    throw Error("machine '" + name + "'", "has no docker", "",
                "`gpumachine provision " + name + "` installs Docker and the NVIDIA toolkit",
                run::k_exit_not_started);
  }
  return on;
}

void upload_project(const run::Project& project, const run::SyncTarget& target) {
  if (!target.host.existed) {
    std::vector<std::string> files = run::project_files(project);
    util::info("first upload of " + project.dir.string() + ": " + std::to_string(files.size()) +
               " files, " + util::human_bytes(run::total_size(project, files)));
  }
  run::SyncStats stats = run::upload(project, target);
  util::info("synced " + project.dir.string() + " to " + target.host.project_dir + ": " +
             std::to_string(stats.files_sent) + " files sent" +
             (stats.rsync ? "" : " (tar stream: no rsync on one end)"));
}

void download_results(const run::Project& project, const run::SyncTarget& target,
                      const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    run::SyncStats stats = run::download(project, target, path);
    util::info("downloaded " + path + " (" + std::to_string(stats.files_sent) + " files)");
  }
}

int follow_job(const MachineRecord& record, const std::string& id) {
  std::string since;
  while (true) {
    try {
      std::unique_ptr<ssh::Session> session = machine::connect(record);
      session->set_command_timeout({});
      run::Jobs jobs(*session, record.name);
      jobs.logs(
          id, true, since, [](std::string_view c) { write_all(stdout, c); },
          [](std::string_view c) { write_all(stderr, c); });
      return jobs.wait(id);
    } catch (const SshError& e) {
      // The connection went (the laptop slept, the network dropped); the job did not.
      throw Error("job " + id, "lost the connection while following it", e.what(),
                  "the job goes on on the machine: `gpumachine attach " + record.name + " " + id +
                      "` follows it again");
    } catch (const InterruptedError&) {
      if (!since.empty()) {
        throw;
      }
      since = util::rfc3339(std::chrono::system_clock::now());
      util::acknowledge_interrupt();
      util::warn("asking job " + id + " to stop; Ctrl-C again leaves it running " +
                 "(`gpumachine attach " + record.name + " " + id + "` follows it again)");
      std::unique_ptr<ssh::Session> session = machine::connect(record);
      run::Jobs(*session, record.name).stop(id, true);
    }
  }
}

void setup_run(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "run", "sync the project, run a command in a container on the machine, exit with its status");
  auto opts = std::make_shared<RunOptions>();
  CLI::Option* name =
      sub->add_option("name", opts->name, "machine name (with -f: default the file's machine:)");
  sub->add_option("command", opts->command, "command to run in the container (after --)");
  // Every word after `--` is the command (`run -f FILE -- CMD` takes NAME from the file): while
  // parsing, a word offered to `name` once `--` went by (CLI11 keeps it among the remaining
  // words) is refused, and CLI11 offers it to `command` instead.
  sub->validate_positionals();
  name->check(CLI::Validator(
      [sub, name](std::string&) {
        std::vector<std::string> seen = sub->remaining();
        bool after_dashes =
            name->count() == 0 && std::find(seen.begin(), seen.end(), "--") != seen.end();
        return after_dashes ? std::string("a word after -- belongs to the command") : std::string();
      },
      "", "before --"));
  sub->add_option("--image", opts->image,
                  "container image (default: built from the project's Dockerfile)");
  sub->add_option("--dir", opts->dir, "project folder to sync (default: the current one)");
  sub->add_option("-e,--env", opts->env, "K=V (or K: its value here) for the job; repeatable")
      ->allow_extra_args(false);
  sub->add_option("--env-file", opts->env_files, "file of K=V lines for the job; repeatable")
      ->allow_extra_args(false);
  sub->add_flag("-d,--detach", opts->detach, "print the job id and leave it running");
  sub->add_option("--download", opts->downloads,
                  "copy this path (relative to the project) back when the job ends; repeatable")
      ->allow_extra_args(false);
  sub->add_option("-p,--port", opts->ports,
                  "publish this port of the job on the machine's 127.0.0.1 and forward it here "
                  "while the job runs; repeatable")
      ->check(CLI::Range(1, 65535))
      ->allow_extra_args(false);
  sub->add_option("-f,--file", opts->file,
                  "task file (YAML): machine, image or build, setup, run, env, ports, download, "
                  "dir");
  sub->add_flag("--rm", opts->rm,
                "with -f: remove the machine after the run, whatever its outcome");
  sub->add_option("--nodes", opts->nodes,
                  "all: on every node of a cluster at once, with the rank environment "
                  "(docs/clusters.md)");
  sub->add_option("--master-port", opts->master_port, "with --nodes: MASTER_PORT (default 29500)");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) {
      if (!opts->nodes.empty()) {
        return run_on_nodes(ctx, {.name = opts->name,
                                  .nodes = opts->nodes,
                                  .image = opts->image,
                                  .dir = opts->dir,
                                  .dockerfile = opts->dockerfile,
                                  .env = opts->env,
                                  .env_files = opts->env_files,
                                  .command = opts->command,
                                  .master_port = opts->master_port});
      }
      return opts->file.empty() ? run_run(ctx, *opts) : run_task(ctx, *opts);
    };
  });
}

}  // namespace gm::cli
