// `gpumachine run`, `jobs`, `logs`, `attach`, `cancel` and `sync` through the real binary, against
// a generic machine (a loopback sshd) whose sessions reach a real Docker daemon the suite starts,
// with real rsync and git's real ignore rules.
#include "cli/machine_env.h"
#include "support/dockerd.h"
#include "util/progress.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <fstream>
#include <random>

namespace gm::testing {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

/// The project folder under a machine's home (the only one there).
fs::path only_project(const fs::path& remote_home) {
  for (const auto& entry : fs::directory_iterator(remote_home / "gpumachine/projects")) {
    return entry.path();
  }
  return {};
}

/// A folder of links to every program of /usr/bin but one: a PATH without it.
fs::path programs_but(const std::string& missing, const fs::path& dir) {
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator("/usr/bin")) {
    if (entry.path().filename() != missing) {
      fs::create_symlink(entry.path(), dir / entry.path().filename());
    }
  }
  return dir;
}

/// A git work tree whose ignore rules keep secret.txt, *.log, data/big/ and a tracked file out.
void write_project_with_ignore_rules(const fs::path& p) {
  ASSERT_EQ(run_capture({"git", "-C", p.string(), "init", "-q"}).status, 0);
  write(p / ".gitignore", "secret.txt\n*.log\n");
  write(p / ".gpumachineignore", "data/big/\ntracked-but-local.txt\n");
  write(p / "train.py", "print('hi')\n");
  write(p / "secret.txt", "do not send\n");
  write(p / "run.log", "do not send\n");
  write(p / "data/small.csv", "a,b\n");
  write(p / "data/big/huge.bin", "do not send\n");
  write(p / "tracked-but-local.txt", "do not send\n");
  ASSERT_EQ(
      run_capture({"git", "-C", p.string(), "add", "tracked-but-local.txt", "train.py"}).status, 0);
}

void expect_synced_with_ignore_rules(const fs::path& remote) {
  EXPECT_EQ(read_text(remote / "train.py"), "print('hi')\n");
  EXPECT_EQ(read_text(remote / "data/small.csv"), "a,b\n");
  EXPECT_TRUE(fs::exists(remote / ".gitignore"));
  for (const char* absent :
       {".git", "secret.txt", "run.log", "data/big", "tracked-but-local.txt"}) {
    EXPECT_FALSE(fs::exists(remote / absent)) << absent << " was uploaded";
  }
}

class RunCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!DockerdFixture::unavailable()) {
      s_docker = new DockerdFixture();  // one daemon and image for the suite
    }
  }
  static void TearDownTestSuite() {
    delete s_docker;
    s_docker = nullptr;
  }
  void SetUp() override {
    if (std::optional<std::string> why = DockerdFixture::unavailable()) {
      GTEST_SKIP() << *why;
    }
    s_docker->remove_containers();
    // The machine's rsync: when told to, it takes only its first 32 reads of input (well under
    // the 8 MB the test sends; dd passes each read on at once) and fails, as a dropped connection
    // would; otherwise it logs what it received (rsync.log: "sent N bytes  received N bytes").
    fs::create_directories(m_tools.path());
    std::ofstream(m_tools / "rsync")
        << "#!/bin/sh\nif [ -e " << (m_tools / "drop-next").string() << " ]; then rm -f "
        << (m_tools / "drop-next").string()
        << "; dd bs=64k count=32 2>/dev/null | /usr/bin/rsync \"$@\"; "
           "exit 1; fi\nfirst=$1; shift\nexec /usr/bin/rsync \"$first\" "
           "--log-file="
        << (m_tools / "rsync.log").string() << " \"$@\"\n";
    fs::permissions(m_tools / "rsync", fs::perms::owner_all);
    m_machine = std::make_unique<CliMachine>("gpu1", m_tools.path().string() + ":" +
                                                         s_docker->client_dir().string() +
                                                         ":/usr/bin:/bin:/usr/sbin:/sbin");
  }

  CliMachine& machine() { return *m_machine; }
  /// The project's folder on the machine (the only one there).
  fs::path remote_project() { return only_project(machine().remote_home()); }
  CaptureResult run_in(const fs::path& project, std::vector<std::string> args) {
    args.insert(args.begin() + 2, {"--dir", project.string()});
    return machine().gm(args);
  }

  static DockerdFixture* s_docker;
  TempDir m_tools{"gm-run-tools"};
  TempDir m_project{"gm-run-project"};
  std::unique_ptr<CliMachine> m_machine;
};

DockerdFixture* RunCli::s_docker = nullptr;

TEST_F(RunCli, ExitsWithTheJobsOwnStatusAndStreamsItsOutput) {
  write(m_project / "data.txt", "hello from the project\n");
  CaptureResult r =
      run_in(m_project.path(),
             {"run", "gpu1", "--image", DockerdFixture::k_image, "-e", "GREETING=hi", "--",
              "cat data.txt; echo \"$GREETING\" on stdout; echo to-err >&2; "
              "exit 7"});
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_NE(r.out.find("hello from the project"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hi on stdout"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("to-err"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("to-err"), std::string::npos) << r.err;
  // The environment did not stay in a file on the machine.
  for (const auto& e : fs::directory_iterator(machine().remote_home() / "gpumachine/jobs")) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
}

TEST_F(RunCli, ToolFailuresUseTheirOwnCodes) {
  CaptureResult no_image = run_in(m_project.path(), {"run", "gpu1", "--", "true"});
  EXPECT_EQ(no_image.status, 2) << no_image.err;
  EXPECT_NE(no_image.err.find("--image"), std::string::npos) << no_image.err;
  CaptureResult bad_image =
      run_in(m_project.path(), {"run", "gpu1", "--image", "gm-no-such-image:test", "--", "true"});
  EXPECT_EQ(bad_image.status, 125) << bad_image.err;
  EXPECT_NE(bad_image.err.find("cannot start the job's container"), std::string::npos)
      << bad_image.err;
}

TEST_F(RunCli, IgnoreRulesHonouredAndOnlyWhatChangedIsSent) {
  const fs::path p = m_project.path();
  write_project_with_ignore_rules(p);
  CaptureResult first = run_in(p, {"sync", "gpu1"});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_NE(first.err.find("first upload"), std::string::npos) << first.err;
  fs::path remote = remote_project();
  expect_synced_with_ignore_rules(remote);

  CaptureResult again = run_in(p, {"sync", "gpu1"});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find(": 0 files sent"), std::string::npos) << again.err;
  EXPECT_EQ(again.err.find("first upload"), std::string::npos) << again.err;

  write(p / "train.py", "print('changed')\n");
  CaptureResult changed = run_in(p, {"sync", "gpu1"});
  ASSERT_EQ(changed.status, 0) << changed.err;
  EXPECT_NE(changed.err.find(": 1 files sent"), std::string::npos) << changed.err;
  EXPECT_EQ(read_text(remote / "train.py"), "print('changed')\n");
}

TEST_F(RunCli, AnInterruptedSyncResumes) {
  const fs::path p = m_project.path();
  write(p / "a-small.txt", "first\n");
  std::string big(8'000'000, '\0');
  std::mt19937 random(13);  // no block repeats: only a kept partial file spares bytes
  for (char& c : big) {
    c = static_cast<char>(random());
  }
  write(p / "z-big.bin", big);
  write_text(m_tools / "drop-next", "");
  CaptureResult dropped = run_in(p, {"sync", "gpu1"});
  EXPECT_EQ(dropped.status, 125) << dropped.err;
  EXPECT_NE(dropped.err.find("run again to resume"), std::string::npos) << dropped.err;
  // The size is said before the upload starts (here: before it failed).
  std::size_t said = dropped.err.find("first upload of " + p.string() + ": 2 files, " +
                                      util::human_bytes(big.size() + 6));
  EXPECT_LT(said, dropped.err.find("rsync failed")) << dropped.err;
  fs::path remote = remote_project();
  EXPECT_EQ(read_text(remote / "a-small.txt"), "first\n");  // what was sent stays

  CaptureResult resumed = run_in(p, {"sync", "gpu1"});
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(resumed.err.find("not a git repository"), std::string::npos) << resumed.err;
  EXPECT_NE(resumed.err.find(": 1 files sent"), std::string::npos) << resumed.err;
  EXPECT_EQ(read_text(remote / "z-big.bin"), big);
  // Resumed, not sent again: the machine received less than the file (its kept part is reused).
  std::string log = read_text(m_tools / "rsync.log");
  std::size_t at = log.rfind("received ");
  ASSERT_NE(at, std::string::npos) << log;
  std::string digits;
  for (char c : log.substr(at + 9, log.find(' ', at + 9) - at - 9)) {
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      digits += c;
    }
  }
  EXPECT_LT(std::stoull(digits), big.size()) << log;
}

TEST_F(RunCli, WithoutRsyncOnTheMachineATarStreamSyncsAndSftpBringsResultsBack) {
  TempDir bin{"gm-no-rsync"};
  CliMachine bare("gpu2", s_docker->client_dir().string() + ":" +
                              programs_but("rsync", bin / "bin").string() + ":/usr/sbin:/sbin");
  const fs::path p = m_project.path();
  write_project_with_ignore_rules(p);
  CaptureResult first = bare.gm({"sync", "gpu2", "--dir", p.string()});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_NE(first.err.find("(tar stream: no rsync on one end)"), std::string::npos) << first.err;
  const fs::path remote = only_project(bare.remote_home());
  expect_synced_with_ignore_rules(remote);

  write(p / "train.py", "print('changed')\n");
  CaptureResult again = bare.gm({"sync", "gpu2", "--dir", p.string()});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(read_text(remote / "train.py"), "print('changed')\n");

  write(remote / "results/sub/out.txt", "result\n");
  for (int round = 0; round < 2; ++round) {  // the second replaces what the first brought
    CaptureResult down = bare.gm({"sync", "gpu2", "--dir", p.string(), "--down", "results"});
    ASSERT_EQ(down.status, 0) << down.err;
    EXPECT_EQ(read_text(p / "results/sub/out.txt"), "result\n");
    EXPECT_FALSE(fs::exists(p / "results/results")) << "round " << round;
  }
}

TEST_F(RunCli, WithoutRsyncHereATarStreamSyncsAndSftpBringsResultsBack) {
  TempDir bin{"gm-no-rsync"};
  const fs::path p = m_project.path();
  write_project_with_ignore_rules(p);
  SpawnOptions here;
  here.env = machine().env();
  here.env["PATH"] = programs_but("rsync", bin / "bin").string();
  CaptureResult sync = run_capture({GM_BINARY_PATH, "sync", "gpu1", "--dir", p.string()}, {}, here);
  ASSERT_EQ(sync.status, 0) << sync.err;
  EXPECT_NE(sync.err.find("(tar stream: no rsync on one end)"), std::string::npos) << sync.err;
  expect_synced_with_ignore_rules(remote_project());

  write(remote_project() / "results/out.txt", "result\n");
  CaptureResult down = run_capture(
      {GM_BINARY_PATH, "sync", "gpu1", "--dir", p.string(), "--down", "results"}, {}, here);
  ASSERT_EQ(down.status, 0) << down.err;
  EXPECT_EQ(read_text(p / "results/out.txt"), "result\n");
}

TEST_F(RunCli, SyncNeedsNoDockerOnTheMachineRunDoes) {
  TempDir bin{"gm-no-docker"};
  CliMachine bare("gpu2", programs_but("docker", bin / "bin").string() + ":/usr/sbin:/sbin");
  write(m_project / "data.txt", "data\n");
  CaptureResult sync = bare.gm({"sync", "gpu2", "--dir", m_project.path().string()});
  ASSERT_EQ(sync.status, 0) << sync.err;
  EXPECT_EQ(read_text(only_project(bare.remote_home()) / "data.txt"), "data\n");
  CaptureResult run = bare.gm({"run", "gpu2", "--dir", m_project.path().string(), "--image",
                               DockerdFixture::k_image, "--", "true"});
  EXPECT_EQ(run.status, 125) << run.err;
  EXPECT_NE(run.err.find("has no docker"), std::string::npos) << run.err;
}

TEST_F(RunCli, DetachedJobIsFoundAgainByANewProcess) {
  CaptureResult started =
      run_in(m_project.path(), {"run", "gpu1", "--image", DockerdFixture::k_image, "--detach", "--",
                                "echo first line; sleep 1; echo last line; exit 3"});
  ASSERT_EQ(started.status, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  ASSERT_EQ(id.size(), 8U) << started.out;

  CaptureResult listed = machine().gm({"jobs", "gpu1", "--format", "json"});
  ASSERT_EQ(listed.status, 0) << listed.err;
  nlohmann::json jobs = nlohmann::json::parse(listed.out);
  ASSERT_EQ(jobs.size(), 1U) << listed.out;
  EXPECT_EQ(jobs[0]["id"], id);
  EXPECT_EQ(jobs[0]["command"], "echo first line; sleep 1; echo last line; exit 3");

  CaptureResult attached = machine().gm({"attach", "gpu1", id});
  EXPECT_EQ(attached.status, 3) << attached.err;

  CaptureResult finished = machine().gm({"jobs", "gpu1", "--format", "json"});
  nlohmann::json after = nlohmann::json::parse(finished.out);
  EXPECT_EQ(after[0]["state"], "finished");
  EXPECT_EQ(after[0]["exit_status"], 3);

  CaptureResult logs = machine().gm({"logs", "gpu1", id});
  ASSERT_EQ(logs.status, 0) << logs.err;
  EXPECT_EQ(logs.out, "first line\nlast line\n");
  CaptureResult newest = machine().gm({"logs", "gpu1"});
  EXPECT_EQ(newest.out, logs.out);
  EXPECT_EQ(machine().gm({"logs", "gpu1", "nosuchjob"}).status, 3);
}

TEST_F(RunCli, FirstCtrlCAsksTheJobToStopAndKeepsFollowingIt) {
  TempDir logs{"gm-run-logs"};
  std::unique_ptr<Process> run = machine().gm_spawn(
      {"run", "gpu1", "--dir", m_project.path().string(), "--image", DockerdFixture::k_image, "--",
       "trap 'echo stopping cleanly; exit 5' TERM; echo ready; while true; do sleep 1; "
       "done"},
      logs, "run");
  ASSERT_EQ(wait_for_line(logs / "run.out", "ready"), "ready");
  ::kill(run->pid(), SIGINT);
  EXPECT_EQ(run->wait(), 5);  // the job's own status, after it stopped
  EXPECT_EQ(wait_for_line(logs / "run.out", "stopping"), "stopping cleanly");
  std::string err = read_text(logs / "run.err");
  EXPECT_NE(err.find("asking job"), std::string::npos) << err;
  EXPECT_NE(err.find("gpumachine attach gpu1 "), std::string::npos) << err;
}

TEST_F(RunCli, AJobOutlivesADroppedConnection) {
  TempDir logs{"gm-run-logs"};
  write(m_project / "go", "");
  std::unique_ptr<Process> run = machine().gm_spawn(
      {"run", "gpu1", "--dir", m_project.path().string(), "--image", DockerdFixture::k_image, "--",
       "echo ready; while [ -e go ]; do sleep 0.2; done; echo after the drop; exit 4"},
      logs, "run");
  ASSERT_EQ(wait_for_line(logs / "run.out", "ready"), "ready");
  machine().drop_connections_and_restart_sshd();
  EXPECT_EQ(run->wait(), 1);
  std::string err = read_text(logs / "run.err");
  EXPECT_NE(err.find("lost the connection"), std::string::npos) << err;
  std::string id = err.substr(err.find("job ") + 4, 8);
  EXPECT_NE(err.find("gpumachine attach gpu1 " + id), std::string::npos) << err;

  fs::remove(remote_project() / "go");  // the job, still running, ends now
  CaptureResult attached = machine().gm({"attach", "gpu1", id});
  EXPECT_EQ(attached.status, 4) << attached.err;
  EXPECT_NE(attached.out.find("after the drop"), std::string::npos) << attached.out;
}

// The seed's compose workflow: a Jupyter and a TensorBoard service (busybox httpd stand-ins, no
// image can be pulled here), each serving a synced folder, both reached from here.
TEST_F(RunCli, ComposeSeesTheSyncedFilesAndItsPortsAreForwarded) {
  if (::access("/usr/bin/docker-compose", X_OK) != 0) {
    GTEST_SKIP() << "no docker-compose here (Debian: apt-get install docker-compose)";
  }
  const fs::path p = m_project.path();
  write(p / "notebooks/index.html", "hello from the synced notebooks\n");
  write(p / "runs/index.html", "hello from the synced runs\n");
  auto service = [](const std::string& name, const std::string& dir) {
    return "  " + name + ":\n    image: " + DockerdFixture::k_image +
           "\n    command: [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", "
           "\"/www\"]\n    volumes: [\"./" +
           dir + ":/www\"]\n    ports: [\"127.0.0.1:" + std::to_string(free_port()) + ":8080\"]\n";
  };
  write(p / "docker-compose.yml", "version: \"2\"\nservices:\n" + service("jupyter", "notebooks") +
                                      service("tensorboard", "runs"));
  CaptureResult up = run_in(p, {"compose", "gpu1", "--background", "--", "up", "-d"});
  ASSERT_EQ(up.status, 0) << up.err;
  std::vector<std::string> bodies;
  for (std::size_t at = up.out.find("http://127.0.0.1:"); at != std::string::npos;
       at = up.out.find("http://127.0.0.1:", at + 1)) {
    int local = std::atoi(up.out.c_str() + at + std::string("http://127.0.0.1:").size());
    HttpReply page = http_get(local, "/index.html");
    EXPECT_EQ(page.status, 200);
    bodies.push_back(page.body);
  }
  std::sort(bodies.begin(), bodies.end());
  EXPECT_EQ(bodies, (std::vector<std::string>{"hello from the synced notebooks\n",
                                              "hello from the synced runs\n"}))
      << up.out;
  EXPECT_EQ(machine().gm({"forward", "gpu1", "--stop"}).status, 0);
  CaptureResult down = run_in(p, {"compose", "gpu1", "--", "down"});
  EXPECT_EQ(down.status, 0) << down.err;
}

TEST_F(RunCli, CancelStopsARunningJob) {
  CaptureResult started =
      run_in(m_project.path(), {"run", "gpu1", "--image", DockerdFixture::k_image, "--detach", "--",
                                "trap 'exit 5' TERM; while true; do sleep 1; done"});
  ASSERT_EQ(started.status, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  CaptureResult cancelled = machine().gm({"cancel", "gpu1", id});
  ASSERT_EQ(cancelled.status, 0) << cancelled.err;
  nlohmann::json jobs =
      nlohmann::json::parse(machine().gm({"jobs", "gpu1", "--format", "json"}).out);
  EXPECT_EQ(jobs[0]["state"], "finished");
  EXPECT_EQ(jobs[0]["exit_status"], 5);
}

TEST_F(RunCli, DockerfileIsBuiltAndResultsComeBack) {
  const fs::path p = m_project.path();
  write(p / "Dockerfile",
        std::string("FROM ") + DockerdFixture::k_image + "\nRUN echo built-in > /built.txt\n");
  CaptureResult r = run_in(p, {"run", "gpu1", "--download", "results", "--",
                               "mkdir -p results/sub && cat /built.txt "
                               "> results/sub/out.txt && exit 0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_text(p / "results/sub/out.txt"), "built-in\n");
  std::string tag = p.filename().string();
  std::transform(tag.begin(), tag.end(), tag.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  EXPECT_EQ(s_docker->docker({"image", "inspect", "gpumachine/" + tag + ":latest"}).status, 0);
}

/// A task file's `machine:` section: "ci1", created as a generic machine at the test's sshd.
std::string new_machine_section(SshdFixture& sshd) {
  return "machine:\n  name: ci1\n  create:\n    driver: generic\n"
         "    generic-ip-address: 127.0.0.1\n    generic-ssh-port: " +
         std::to_string(sshd.port()) + "\n    generic-ssh-user: " + sshd.user() +
         "\n    generic-ssh-key: " + sshd.client_key_path().string() + "\n    no-provision: true\n";
}

TEST_F(RunCli, TaskFileCreatesRunsDownloadsAndRemovesInOneCommand) {
  const fs::path p = m_project.path();
  write(p / "gpumachine.yaml",
        new_machine_section(machine().sshd()) + "image: " + DockerdFixture::k_image +
            "\nsetup:\n  - mkdir -p results\nrun: echo \"$GREETING\" > results/out.txt; exit 3\n"
            "env:\n  GREETING: hello from the task\ndownload: [results]\n");
  CaptureResult r = machine().gm({"run", "-f", (p / "gpumachine.yaml").string(), "--rm"});
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_NE(r.err.find("creating it"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(p / "results/out.txt"), "hello from the task\n");
  EXPECT_FALSE(fs::exists(machine().home() / "machines/ci1")) << r.err;
  CaptureResult ls = machine().gm({"ls", "--format", "json"});
  EXPECT_EQ(ls.out.find("ci1"), std::string::npos) << ls.out;
}

TEST_F(RunCli, TaskFileRmRemovesTheMachineAlsoWhenTheJobCannotStart) {
  const fs::path file = m_project / "gpumachine.yaml";
  write(file, new_machine_section(machine().sshd()) + "image: gm-no-such-image:test\nrun: true\n");
  CaptureResult r = machine().gm({"run", "-f", file.string(), "--rm"});
  EXPECT_EQ(r.status, 125) << r.err;
  EXPECT_NE(r.err.find("removed 'ci1' (--rm)"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(machine().home() / "machines/ci1")) << r.err;
}

TEST_F(RunCli, TaskFilePortsAreForwardedHereWhileTheJobRuns) {
  const fs::path p = m_project.path();
  const std::string port = std::to_string(free_port());
  write(p / "www/index.html", "served by the job\n");
  write(p / "go", "");
  // busybox httpd listens before it goes to the background: "serving" means it answers.
  write(p / "gpumachine.yaml",
        std::string("machine: gpu1\nimage: ") + DockerdFixture::k_image + "\nports: [" + port +
            "]\nrun: /bin/busybox httpd -p " + port +
            " -h www && echo serving; while [ -e go ]; do sleep 0.2; done\n");
  TempDir logs{"gm-run-logs"};
  std::unique_ptr<Process> run =
      machine().gm_spawn({"run", "-f", (p / "gpumachine.yaml").string()}, logs, "run");
  ASSERT_EQ(wait_for_line(logs / "run.out", "serving"), "serving");
  std::string line = wait_for_line(logs / "run.err", "the job's port " + port + ": ");
  std::size_t url = line.find("http://127.0.0.1:");
  ASSERT_NE(url, std::string::npos) << line;
  int local = std::atoi(line.c_str() + url + std::string("http://127.0.0.1:").size());
  HttpReply page = http_get(local, "/index.html");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body, "served by the job\n");
  fs::remove(remote_project() / "go");  // the job ends, and with it the forward
  EXPECT_EQ(run->wait(), 0);
}

TEST_F(RunCli, TaskFileWithACommandAfterDashesTakesTheMachineFromTheFile) {
  const fs::path file = m_project / "gpumachine.yaml";
  write(file, std::string("machine: gpu1\nimage: ") + DockerdFixture::k_image +
                  "\nrun: echo from the file\n");
  CaptureResult r = machine().gm({"run", "-f", file.string(), "--", "echo", "from", "the", "line"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "from the line\n") << r.err;
  CaptureResult named = machine().gm({"run", "-f", file.string(), "gpu1", "--", "echo", "named"});
  EXPECT_EQ(named.status, 0) << named.err;
  EXPECT_EQ(named.out, "named\n") << named.err;
  CaptureResult help = machine().gm({"run", "--help"});
  EXPECT_NE(help.out.find("gpumachine run -f gpumachine.yaml -- "), std::string::npos) << help.out;
}

TEST_F(RunCli, TaskFileRefusesAnUnknownKeyNamingTheFileAndTheKey) {
  const fs::path file = m_project / "gpumachine.yaml";
  write(file, "machine: gpu1\nimage: busybox\nrunn: true\n");
  CaptureResult r = machine().gm({"run", "-f", file.string()});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find(file.string() + ": key 'runn'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'run'"), std::string::npos) << r.err;

  write(file, "machine: gpu1\nimage: busybox\nports: [8888, http]\nrun: true\n");
  CaptureResult bad_port = machine().gm({"run", "-f", file.string()});
  EXPECT_EQ(bad_port.status, 2) << bad_port.err;
  EXPECT_NE(bad_port.err.find("key 'ports': 'http' is not a port"), std::string::npos)
      << bad_port.err;
}

}  // namespace
}  // namespace gm::testing
