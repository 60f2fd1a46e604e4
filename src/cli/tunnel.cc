#include "cli/tunnel.h"

#include "gm/error.h"
#include "machine/connect.h"
#include "util/fs.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/time.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>

extern char** environ;

namespace gm::cli {

namespace {

constexpr std::chrono::milliseconds k_stop_grace{5000};

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot); 0 when unreadable, -1
/// for a zombie (exited, not yet reaped: an init that does not reap must not look like a live
/// forward).
long long process_start_ticks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  std::size_t close = text.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream rest(text.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && (field == "Z" || field == "X")) {
      return -1;
    }
    if (i == 22) {
      return std::atoll(field.c_str());
    }
  }
  return 0;
}

bool pid_alive(int pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

ssh::ForwardSpec spec_from_json(const nlohmann::json& j) {
  ssh::ForwardSpec spec;
  spec.local_addr = j.value("local_addr", "127.0.0.1");
  spec.local_port = j.value("local_port", 0);
  spec.remote_host = j.value("remote_host", "127.0.0.1");
  spec.remote_port = j.value("remote_port", 0);
  return spec;
}

std::filesystem::path record_path(const store::Store& store, const std::string& name, int port) {
  return store.machine_dir(name) / ("forward-" + std::to_string(port) + ".json");
}

/// Detaches: fork, setsid, fork. Returns in the grandchild with the write end of a pipe; the
/// original process waits until the grandchild writes one byte to it (it serves) or closes it
/// (it failed, see the log), then ends with _exit: it shares the SSH session's socket and must
/// not run destructors that would disconnect the session the grandchild now owns.
int detach(const std::string& log) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error("forward", "cannot detach", std::strerror(errno));
  }
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    throw Error("forward", "cannot detach", std::strerror(errno));
  }
  if (child > 0) {
    ::close(fds[1]);
    char byte = 0;
    ssize_t n = 0;
    do {
      n = ::read(fds[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (n != 1) {
      // Before its log exists the detached process said why on this terminal itself.
      bool logged = ::access(log.c_str(), F_OK) == 0;
      std::fprintf(stderr, "gpumachine: error: the background forward did not start%s%s\n",
                   logged ? "; see " : "", logged ? log.c_str() : "");
      _exit(exit_code::k_failure);
    }
    _exit(exit_code::k_ok);
  }
  ::close(fds[0]);
  ::setsid();
  pid_t grandchild = ::fork();
  if (grandchild != 0) {
    _exit(grandchild > 0 ? 0 : 1);
  }
  return fds[1];
}

/// stdin from /dev/null, stdout and stderr appended to log.
void redirect_to_log(const std::string& log) {
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::close(null_fd);
  }
  if (log_fd >= 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::close(log_fd);
  }
}

void open_browser(const std::string& url) {
#ifdef __APPLE__
  const char* opener = "open";
#else
  const char* opener = "xdg-open";
#endif
  std::string arg0 = opener;
  std::string arg1 = url;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  if (::posix_spawnp(&pid, opener, nullptr, nullptr, argv, environ) != 0) {
    util::warn(std::string("cannot run ") + opener + "; open " + url + " yourself");
  }
}

std::string stop_command(const std::string& name, const TunnelInfo& info) {
  return info.stop_command.empty() ? "gpumachine forward " + name + " --stop" : info.stop_command;
}

/// What serves where: JSON, or a line per forward, the URL and how to stop it.
void print_summary(Context& ctx, const std::string& name,
                   const std::vector<ssh::ForwardSpec>& specs, const TunnelInfo& info,
                   bool background, int pid, const std::string& log, bool reused) {
  if (ctx.json()) {
    nlohmann::json doc = {{"name", name},
                          {"kind", info.kind},
                          {"forwards", specs_json(specs)},
                          {"background", background},
                          {"pid", pid}};
    if (!info.urls.empty()) {
      doc["url"] = info.urls.front();
      doc["urls"] = info.urls;
    }
    if (background) {
      doc["log"] = log;
    }
    doc["reused_forward"] = reused;
    doc.update(info.extra);
    ctx.out().print_json(doc);
    return;
  }
  for (const ssh::ForwardSpec& spec : specs) {
    ctx.out().print_line((reused ? "already forwarding " : "forwarding ") + spec.describe() +
                         " on " + name);
  }
  for (const std::string& url : info.urls) {
    ctx.out().print_line(url);
  }
  if (background) {
    ctx.out().print_line(std::string(reused ? "reusing the forward" : "running") +
                         " in the background (pid " + std::to_string(pid) + ", log " + log +
                         "); stop it with `" + stop_command(name, info) + "`");
  } else {
    util::info("press Ctrl-C to stop");
  }
}

/// One timestamped line on stderr (the log, in the background).
void notice(const std::string& name, const std::string& line) {
  std::string stamp = util::rfc3339(std::chrono::system_clock::now());
  std::fprintf(stderr, "%s gpumachine: forward %s: %s\n", stamp.c_str(), name.c_str(),
               line.c_str());
  std::fflush(stderr);
}

}  // namespace

ssh::ForwarderOptions tunnel_options(Context& ctx, const std::string& name) {
  ssh::ForwarderOptions options;
  store::Store* store = &ctx.store();
  // Ask again on every reconnect: a stopped and started instance has a new address.
  options.reconnect = [store, name] {
    return machine::connect(machine::load_for_ssh(*store, name, "forward"));
  };
  // The OpenSSH client logs in with the machine's key against the known_hosts file that holds
  // only its pinned key. The verb has just asked the provider for the record, so the first
  // login takes it as stored; later ones ask again, like reconnect above.
  auto fresh = std::make_shared<bool>(true);
  options.openssh_login = [store, name, fresh] {
    return machine::openssh_login(*store, std::exchange(*fresh, false)
                                              ? store->load(name)
                                              : machine::load_for_ssh(*store, name, "forward"));
  };
  options.notice = [name](const std::string& line) { notice(name, line); };
  options.stop_requested = [] { return util::interrupt_requested(); };
  return options;
}

nlohmann::json specs_json(const std::vector<ssh::ForwardSpec>& specs) {
  nlohmann::json out = nlohmann::json::array();
  for (const ssh::ForwardSpec& spec : specs) {
    out.push_back({{"local_addr", spec.local_addr},
                   {"local_port", spec.local_port},
                   {"remote_host", spec.remote_host},
                   {"remote_port", spec.remote_port}});
  }
  return out;
}

nlohmann::json to_json(const TunnelRecord& record) {
  return {{"name", record.machine},
          {"kind", record.kind},
          {"pid", record.pid},
          {"start_ticks", record.start_ticks},
          {"forwards", specs_json(record.specs)},
          {"url", record.url},
          {"log", record.log},
          {"started_at", record.started_at}};
}

std::vector<TunnelRecord> list_tunnels(const store::Store& store,
                                       const std::optional<std::string>& name) {
  std::vector<std::string> names = name ? std::vector<std::string>{*name} : store.names();
  std::vector<TunnelRecord> out;
  for (const std::string& machine : names) {
    std::filesystem::path dir = store.machine_dir(machine);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      std::string file = entry.path().filename().string();
      if (!file.starts_with("forward-") || !file.ends_with(".json")) {
        continue;
      }
      std::optional<std::string> text = util::try_read_file(entry.path());
      nlohmann::json j = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
      if (!j.is_object()) {
        continue;
      }
      TunnelRecord r;
      r.machine = machine;
      r.kind = j.value("kind", "forward");
      r.pid = j.value("pid", 0);
      r.start_ticks = j.value("start_ticks", 0LL);
      for (const auto& s : j.value("forwards", nlohmann::json::array())) {
        r.specs.push_back(spec_from_json(s));
      }
      r.url = j.value("url", "");
      r.log = j.value("log", "");
      r.started_at = j.value("started_at", "");
      r.path = entry.path();
      out.push_back(std::move(r));
    }
  }
  std::sort(out.begin(), out.end(), [](const TunnelRecord& a, const TunnelRecord& b) {
    return std::tie(a.machine, a.path) < std::tie(b.machine, b.path);
  });
  return out;
}

bool is_tunnel_running(const TunnelRecord& record) {
  if (!pid_alive(record.pid)) {
    return false;
  }
  long long ticks = process_start_ticks(record.pid);
  // Without /proc (macOS) the pid alone has to do.
  return ticks == 0 ? ::access("/proc/self/stat", R_OK) != 0 : ticks == record.start_ticks;
}

bool stop_tunnel(const TunnelRecord& record) {
  bool stopped = false;
  if (is_tunnel_running(record)) {
    ::kill(record.pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + k_stop_grace;
    while (is_tunnel_running(record) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (is_tunnel_running(record)) {
      ::kill(record.pid, SIGKILL);
      while (is_tunnel_running(record)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    stopped = true;
  }
  std::error_code ec;
  std::filesystem::remove(record.path, ec);
  return stopped;
}

int report_reused_tunnel(Context& ctx, const TunnelRecord& running, const TunnelInfo& info) {
  if (info.open_browser && !info.urls.empty()) {
    open_browser(info.urls.front());
  }
  print_summary(ctx, running.machine, running.specs, info, true, running.pid, running.log, true);
  return exit_code::k_ok;
}

int run_tunnel(Context& ctx, const std::string& name, ssh::Forwarder& forwarder,
               std::unique_ptr<ssh::Session> session, const TunnelInfo& info, bool background) {
  const int first_port = forwarder.specs().front().local_port;
  std::filesystem::path record_file = record_path(ctx.store(), name, first_port);
  std::string log =
      (ctx.store().machine_dir(name) / ("forward-" + std::to_string(first_port) + ".log")).string();
  int ready_fd = -1;
  if (background) {
    ready_fd = detach(log);
  }
  // Connected before anything is printed or recorded: a refused login is an error, not a forward
  // that retries forever. In the background this is the detached process, so the OpenSSH master
  // is its child, ended by its pid.
  forwarder.start(std::move(session));
  if (info.open_browser && !info.urls.empty()) {
    open_browser(info.urls.front());
  }
  print_summary(ctx, name, forwarder.specs(), info, background, ::getpid(), log, false);

  if (background) {
    TunnelRecord record;
    record.machine = name;
    record.kind = info.kind;
    record.pid = ::getpid();
    record.start_ticks = process_start_ticks(record.pid);
    record.specs = forwarder.specs();
    record.url = info.urls.empty() ? std::string() : info.urls.front();
    record.log = log;
    record.started_at = util::rfc3339(std::chrono::system_clock::now());
    util::write_file_atomic(record_file, to_json(record).dump(2) + "\n", 0600);
    redirect_to_log(log);
    char ok = 'k';
    ssize_t written = ::write(ready_fd, &ok, 1);
    (void)written;
    ::close(ready_fd);
  }

  forwarder.run();
  if (background) {
    std::error_code ec;
    std::filesystem::remove(record_file, ec);
    notice(name, "stopped");
    return exit_code::k_ok;
  }
  return util::interrupt_exit_code();
}

}  // namespace gm::cli
