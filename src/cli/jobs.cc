// `gpumachine jobs NAME`, `logs NAME [JOB] [-f]`, `attach NAME JOB`, `cancel NAME JOB`: the jobs
// `run` started, found again from any process (their state lives on the machine, run/job.sh).
#include "cli/run.h"
#include "cli/verbs.h"
#include "gm/error.h"
#include "machine/connect.h"

namespace gm::cli {

namespace {

struct JobOptions {
  std::string name;
  std::string job;
  bool follow = false;
};

struct OnMachine {
  MachineRecord record;
  std::unique_ptr<ssh::Session> session;
};

OnMachine connect_to(Context& ctx, const std::string& name, const std::string& verb) {
  OnMachine on;
  on.record = machine::load_for_ssh(ctx.store(), name, verb);
  on.session = machine::connect(on.record);
  on.session->set_command_timeout({});
  return on;
}

std::string state_of(const run::JobInfo& job) {
  return job.running() ? "running" : job.state == "exited" ? "finished" : job.state;
}

int run_jobs(Context& ctx, const JobOptions& o) {
  OnMachine on = connect_to(ctx, o.name, "jobs");
  std::vector<run::JobInfo> jobs = run::Jobs(*on.session, o.name).list();
  if (ctx.json()) {
    nlohmann::json doc = nlohmann::json::array();
    for (const run::JobInfo& j : jobs) {
      doc.push_back({{"id", j.id},
                     {"command", j.command},
                     {"state", state_of(j)},
                     {"exit_status", j.running() ? nlohmann::json() : nlohmann::json(j.exit_code)},
                     {"started_at", j.started_at},
                     {"duration", run::job_duration(j)}});
    }
    ctx.out().print_json(doc);
    return exit_code::k_ok;
  }
  std::vector<std::vector<std::string>> rows;
  for (const run::JobInfo& j : jobs) {
    rows.push_back({j.id, state_of(j), j.running() ? "-" : std::to_string(j.exit_code),
                    j.started_at.substr(0, 19), run::job_duration(j), j.command});
  }
  ctx.out().print_table({"JOB", "STATE", "EXIT", "STARTED", "DURATION", "COMMAND"}, rows);
  return exit_code::k_ok;
}

int run_logs(Context& ctx, const JobOptions& o) {
  OnMachine on = connect_to(ctx, o.name, "logs");
  run::Jobs jobs(*on.session, o.name);
  std::string id = o.job;
  if (id.empty()) {
    std::vector<run::JobInfo> all = jobs.list();
    if (all.empty()) {
      throw NotFoundError("machine '" + o.name + "'", "has no jobs",
                          "start one: gpumachine run " + o.name + " -- CMD");
    }
    id = all.front().id;
  } else {
    jobs.find(id);
  }
  jobs.logs(
      id, o.follow, "", [](std::string_view c) { write_all(stdout, c); },
      [](std::string_view c) { write_all(stderr, c); });
  return exit_code::k_ok;
}

int run_attach(Context& ctx, const JobOptions& o) {
  OnMachine on = connect_to(ctx, o.name, "attach");
  run::Jobs(*on.session, o.name).find(o.job);
  return follow_job(on.record, o.job);
}

int run_cancel(Context& ctx, const JobOptions& o) {
  OnMachine on = connect_to(ctx, o.name, "cancel");
  run::Jobs jobs(*on.session, o.name);
  jobs.find(o.job);
  jobs.stop(o.job);
  return exit_code::k_ok;
}

CLI::App* job_verb(CLI::App& app, const char* verb, const char* about,
                   const std::shared_ptr<JobOptions>& opts) {
  CLI::App* sub = app.add_subcommand(verb, about);
  sub->add_option("name", opts->name, "machine name")->required();
  return sub;
}

}  // namespace

void setup_jobs(CLI::App& app, Dispatch& dispatch) {
  auto opts = std::make_shared<JobOptions>();
  CLI::App* sub = job_verb(app, "jobs", "list the jobs `run` started on a machine", opts);
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_jobs(ctx, *opts); }; });
}

void setup_logs(CLI::App& app, Dispatch& dispatch) {
  auto opts = std::make_shared<JobOptions>();
  CLI::App* sub = job_verb(app, "logs", "a job's output (default: the newest job)", opts);
  sub->add_option("job", opts->job, "job id (from `gpumachine jobs NAME`)");
  sub->add_flag("-f,--follow", opts->follow, "keep following until the job ends");
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_logs(ctx, *opts); }; });
}

void setup_attach(CLI::App& app, Dispatch& dispatch) {
  auto opts = std::make_shared<JobOptions>();
  CLI::App* sub = job_verb(app, "attach", "follow a job to its end and exit with its status", opts);
  sub->add_option("job", opts->job, "job id")->required();
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_attach(ctx, *opts); };
  });
}

void setup_cancel(CLI::App& app, Dispatch& dispatch) {
  auto opts = std::make_shared<JobOptions>();
  CLI::App* sub = job_verb(app, "cancel", "stop a job (its log and status stay)", opts);
  sub->add_option("job", opts->job, "job id")->required();
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_cancel(ctx, *opts); };
  });
}

}  // namespace gm::cli
