#include "run/jobs.h"

#include "gm/error.h"
#include "util/assets.h"
#include "util/crypto.h"
#include "util/shell.h"
#include "util/time.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <sstream>

namespace gm::run {

namespace {
constexpr std::string_view k_script = "run/job.sh";

std::vector<std::string> split(std::string_view line, char sep) {
  std::vector<std::string> out;
  while (true) {
    std::size_t at = line.find(sep);
    out.emplace_back(line.substr(0, at));
    if (at == std::string_view::npos) {
      return out;
    }
    line.remove_prefix(at + 1);
  }
}

std::string last_lines(const std::string& text) {
  std::string trimmed = text;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r')) {
    trimmed.pop_back();
  }
  std::size_t from = trimmed.size() > 600 ? trimmed.size() - 600 : 0;
  return trimmed.substr(from);
}
}  // namespace

std::string new_job_id() {
  return util::hex(util::random_bytes(4));
}

std::vector<JobInfo> parse_job_list(std::string_view text) {
  std::vector<JobInfo> jobs;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = split(line, '\t');
    if (f.size() != 6 || f[0].empty()) {
      continue;
    }
    JobInfo job;
    job.id = f[0];
    job.state = f[1];
    job.exit_code = std::atoi(f[2].c_str());
    job.started_at = f[3];
    job.finished_at = f[4];
    nlohmann::json command = nlohmann::json::parse(f[5], nullptr, false);
    job.command = command.is_string() ? command.get<std::string>() : "";
    jobs.push_back(std::move(job));
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const JobInfo& a, const JobInfo& b) { return a.started_at > b.started_at; });
  return jobs;
}

std::string job_duration(const JobInfo& job) {
  std::optional<util::SystemTime> start = util::parse_rfc3339(job.started_at);
  std::optional<util::SystemTime> end = job.running()
                                            ? std::optional(std::chrono::system_clock::now())
                                            : util::parse_rfc3339(job.finished_at);
  if (!start || !end || *end < *start) {
    return "-";
  }
  return util::human_duration(std::chrono::duration_cast<std::chrono::seconds>(*end - *start));
}

std::vector<int> parse_published_ports(std::string_view text) {
  std::set<int> ports;
  for (std::string line : split(text, '\n')) {
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream in(line);
    for (std::string entry; in >> entry;) {
      std::size_t arrow = entry.find("->");
      std::size_t colon = entry.rfind(':', arrow);
      if (arrow == std::string::npos || colon == std::string::npos ||
          entry.find("/tcp", arrow) == std::string::npos) {
        continue;
      }
      int port = std::atoi(entry.substr(colon + 1, arrow - colon - 1).c_str());
      if (port > 0 && port < 65536) {
        ports.insert(port);
      }
    }
  }
  return {ports.begin(), ports.end()};
}

Jobs::Jobs(ssh::RemoteShell& shell, std::string machine)
    : m_shell(shell), m_machine(std::move(machine)) {}

std::string Jobs::command(const std::vector<std::string>& args) {
  std::string out = "bash -c " + util::shell_quote(util::asset(k_script)) + " gpumachine-job";
  for (const std::string& arg : args) {
    out += " " + util::shell_quote(arg);
  }
  return out;
}

ssh::ExecResult Jobs::run_action(const std::vector<std::string>& args, std::string_view input) {
  return m_shell.run(command(args), input);
}

void Jobs::check(const ssh::ExecResult& r, const std::string& what) {
  if (r.exit_status != 0) {
    throw Error("machine '" + m_machine + "'", what, last_lines(r.err.empty() ? r.out : r.err),
                "`gpumachine probe " + m_machine + "` checks Docker on the machine; " +
                    "`gpumachine provision " + m_machine + "` installs it",
                k_exit_not_started);
  }
}

HostSide Jobs::prepare(const std::string& project) {
  ssh::ExecResult r = run_action({"prepare", project});
  check(r, "cannot make the project folder");
  HostSide host;
  std::istringstream in(r.out);
  std::string key;
  std::string value;
  while (in >> key && std::getline(in >> std::ws, value)) {
    if (key == "project") {
      host.project_dir = value;
    } else if (key == "existed") {
      host.existed = value == "1";
    } else if (key == "rsync") {
      host.rsync = value == "1";
    } else if (key == "docker") {
      host.docker = value == "1";
    }
  }
  return host;
}

void Jobs::build(const std::string& tag, const std::string& project_dir,
                 const std::string& dockerfile, const ssh::OutputSink& on_output) {
  std::string tail;
  auto keep = [&](std::string_view chunk) {
    on_output(chunk);
    tail = last_lines(tail + std::string(chunk));
  };
  if (m_shell.exec(command({"build", tag, project_dir, dockerfile}), keep, keep) != 0) {
    throw Error("machine '" + m_machine + "'", "cannot build the image " + tag, tail,
                "fix the project's Dockerfile (the build output is above)", k_exit_not_started);
  }
}

void Jobs::start(const std::string& id, const std::string& image, const std::string& project_dir,
                 bool gpus, const std::string& command, const std::string& env,
                 const std::vector<int>& ports) {
  std::string published;
  for (int port : ports) {
    published += (published.empty() ? "" : " ") + std::to_string(port);
  }
  ssh::ExecResult r =
      run_action({"start", id, image, project_dir, gpus ? "1" : "0", command, published}, env);
  check(r, "cannot start the job's container");
}

void Jobs::logs(const std::string& id, bool follow, const std::string& since,
                const ssh::OutputSink& on_stdout, const ssh::OutputSink& on_stderr) {
  std::string tail;
  auto err = [&](std::string_view chunk) {
    on_stderr(chunk);
    tail = last_lines(tail + std::string(chunk));
  };
  if (m_shell.exec(command({"logs", id, follow ? "1" : "0", since}), on_stdout, err) != 0) {
    throw Error("job " + id, "cannot read its log", tail,
                "`gpumachine jobs " + m_machine + "` lists the jobs on the machine");
  }
}

int Jobs::wait(const std::string& id) {
  ssh::ExecResult r = run_action({"wait", id});
  check(r, "cannot wait for job " + id);
  return std::atoi(r.out.c_str());
}

void Jobs::stop(const std::string& id, bool background) {
  check(run_action({"stop", id, background ? "background" : ""}), "cannot stop job " + id);
}

int Jobs::compose(const std::string& project_dir, const std::vector<std::string>& args,
                  const ssh::OutputSink& on_stdout, const ssh::OutputSink& on_stderr) {
  std::vector<std::string> all = {"compose", project_dir};
  all.insert(all.end(), args.begin(), args.end());
  return m_shell.exec(command(all), on_stdout, on_stderr);
}

std::vector<int> Jobs::published_ports(const std::string& project_dir) {
  ssh::ExecResult r = run_action({"ports", project_dir});
  check(r, "cannot list the ports the project publishes");
  return parse_published_ports(r.out);
}

std::vector<JobInfo> Jobs::list() {
  ssh::ExecResult r = run_action({"list"});
  check(r, "cannot list the jobs");
  return parse_job_list(r.out);
}

JobInfo Jobs::find(const std::string& id) {
  for (JobInfo& job : list()) {
    if (job.id == id) {
      return job;
    }
  }
  throw NotFoundError("job " + id, "no such job on machine '" + m_machine + "'",
                      "`gpumachine jobs " + m_machine + "` lists them");
}

}  // namespace gm::run
