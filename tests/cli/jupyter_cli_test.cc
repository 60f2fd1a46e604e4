// `gpumachine jupyter --host` against Debian's real Jupyter Notebook 6 on a loopback "machine":
// the printed URL answers through the forward, the token authenticates the API and a wrong one
// is refused, a second run reuses the server, and --stop leaves no server process.
#include "cli/machine_env.h"
#include "cli/remote_app.h"

#include <nlohmann/json.hpp>

namespace gm::testing {
namespace {

// A stand-in for the docker CLI on the "machine" (no engine here): a container is a host
// process group, its image a directory of tools put first on PATH. Every call is logged.
constexpr const char* k_docker_stub = R"(#!/bin/bash
d=$(dirname "$0")
echo "$*" >>"$d/calls.log"
cmd=$1
shift
case $cmd in
run)
  name= wd=/
  while [ $# -gt 0 ]; do
    case $1 in
    -d) shift ;;
    --name) name=$2; shift 2 ;;
    -w) wd=$2; shift 2 ;;
    --gpus | --network | -v) shift 2 ;;
    *) break ;;
    esac
  done
  image=$1
  shift
  cd "$wd" || exit 125
  PATH="$d/images/$image:$PATH" nohup setsid "$@" >"$d/$name.log" 2>&1 </dev/null &
  echo $! >"$d/$name.pid"
  echo "c0ffee$name" ;;
inspect)
  pid=$(cat "$d/${*: -1}.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo true ;;
exec)
  [ -f "$d/$1.pid" ] || { echo "No such container: $1" >&2; exit 1; }
  image_path=$(ls -d "$d"/images/*)
  shift
  PATH="$image_path:$PATH" exec "$@" ;;
rm)
  pid=$(cat "$d/${*: -1}.pid" 2>/dev/null) || exit 1
  kill -TERM -- "-$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$d/${*: -1}.pid" ;;
esac
)";

// The "image": JupyterLab's `jupyter lab` is a jupyter_server underneath; Debian's
// python3-jupyter-server has the server (without the `jupyter server` entry point) but no Lab.
constexpr const char* k_image_jupyter = R"(#!/bin/bash
case $1 in
lab | server) shift; exec /usr/bin/python3 -m jupyter_server "$@" ;;
*) exec /usr/bin/jupyter "$@" ;;
esac
)";

TEST(JupyterServers, ParsesEverySourceAndBuildsTheUrl) {
  std::string text =
      "state running\n"
      "notebook {\"base_url\": \"/\", \"port\": 8888, \"pid\": 7, \"token\": \"abc\"}\n"
      "nbserver {\"base_url\": \"/\", \"port\": 8888, \"pid\": 7, \"token\": \"abc\"}\n"
      "server {\"base_url\": \"/x\", \"port\": 9999, \"pid\": 8, \"token\": \"def\"}\n"
      "server not json\n";
  std::vector<cli::JupyterServer> servers = cli::parse_jupyter_servers(text);
  ASSERT_EQ(servers.size(), 3u);
  EXPECT_EQ(cli::jupyter_url(servers[0], 1234), "http://127.0.0.1:1234/tree?token=abc");
  EXPECT_EQ(cli::jupyter_url(servers[2], 1234), "http://127.0.0.1:1234/x/lab?token=def");
  EXPECT_EQ(servers[2].pid, 8);
}

TEST(JupyterCli, HostJupyterThroughTheForwardWithTokenReuseAndStop) {
  if (!std::filesystem::exists("/usr/bin/jupyter")) {
    GTEST_SKIP() << "Debian's jupyter-notebook is not installed";
  }
  CliMachine machine;
  TempDir dir("gm-jupyter-test");
  int remote = free_port();
  int local = free_port();
  auto fg = machine.gm_spawn({"--format", "json", "jupyter", machine.name(), "--host", "--port",
                              std::to_string(remote), "--local-port", std::to_string(local)},
                             dir, "fg");
  // The JSON document ends with a "}" line once the forward serves.
  ASSERT_NE(wait_for_line(dir / "fg.out", "}"), "") << read_text(dir / "fg.err");
  nlohmann::json info = nlohmann::json::parse(read_text(dir / "fg.out"));
  std::string url = info.at("url").get<std::string>();
  std::string token = info.at("token").get<std::string>();
  int server_pid = info.at("server_pid").get<int>();
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(info.at("flavor"), "notebook");  // Notebook 6 has no /lab
  std::string prefix = "http://127.0.0.1:" + std::to_string(local) + "/";
  ASSERT_EQ(url.rfind(prefix, 0), 0u) << url;
  EXPECT_EQ(url, prefix + "tree?token=" + token);

  EXPECT_EQ(http_get(local, url.substr(prefix.size() - 1)).status, 200);
  HttpReply kernels = http_get(local, "/api/kernels?token=" + token);
  EXPECT_EQ(kernels.status, 200);
  EXPECT_TRUE(nlohmann::json::parse(kernels.body, nullptr, false).is_array()) << kernels.body;
  EXPECT_EQ(http_get(local, "/api/kernels?token=wrong" + token).status, 403);
  fg->stop();

  // Again, in the background: the running server is reused, with the same token.
  CaptureResult again = machine.gm({"--format", "json", "jupyter", machine.name(), "--host",
                                    "--port", std::to_string(remote), "--background"});
  ASSERT_EQ(again.status, 0) << again.err;
  nlohmann::json second = nlohmann::json::parse(again.out);
  EXPECT_TRUE(second.at("reused").get<bool>());
  EXPECT_EQ(second.at("token"), token);
  EXPECT_EQ(second.at("server_pid").get<int>(), server_pid);
  int forward_pid = second.at("pid").get<int>();
  int second_local = second.at("local_port").get<int>();
  EXPECT_EQ(http_get(second_local, "/api/kernels?token=" + token).status, 200);

  CaptureResult stop = machine.gm({"--format", "json", "jupyter", machine.name(), "--host",
                                   "--port", std::to_string(remote), "--stop"});
  ASSERT_EQ(stop.status, 0) << stop.err;
  nlohmann::json stopped = nlohmann::json::parse(stop.out);
  EXPECT_EQ(stopped.at("state"), "stopped");
  EXPECT_EQ(stopped.at("forwards_stopped").get<int>(), 1);
  EXPECT_FALSE(process_alive(server_pid));
  EXPECT_FALSE(port_accepts("127.0.0.1", remote));
  EXPECT_TRUE(eventually([&] { return !process_alive(forward_pid); }));
  EXPECT_FALSE(std::filesystem::exists(machine.remote_home() / ".gpumachine" /
                                       ("jupyter-" + std::to_string(remote) + ".pid")));
}

TEST(JupyterCli, ContainerModeRunsTheImageWithGpusAndLoopbackOnly) {
  if (!std::filesystem::exists("/usr/lib/python3/dist-packages/jupyter_server")) {
    GTEST_SKIP() << "Debian's python3-jupyter-server is not installed";
  }
  TempDir stubs("gm-docker-stub");
  write_text(stubs / "docker", k_docker_stub, 0755);
  std::filesystem::create_directories(stubs / "images" / "lab-image");
  write_text(stubs / "images" / "lab-image" / "jupyter", k_image_jupyter, 0755);
  CliMachine machine("gpu1", stubs.path().string() + ":/usr/local/bin:/usr/bin:/bin");
  TempDir dir("gm-jupyter-ctr");
  std::filesystem::path work = machine.remote_home() / "work";
  std::filesystem::create_directories(work);
  // The "machine" is this host: the local end must not take the remote port.
  int remote = free_port();

  CaptureResult r =
      machine.gm({"--format", "json", "jupyter", machine.name(), "--image", "lab-image", "--dir",
                  work.string(), "--port", std::to_string(remote), "--local-port",
                  std::to_string(free_port()), "--background"});
  ASSERT_EQ(r.status, 0) << r.err << read_text(stubs / "calls.log");
  nlohmann::json info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info.at("mode"), "container");
  EXPECT_EQ(info.at("flavor"), "lab");
  std::string token = info.at("token").get<std::string>();
  int local = info.at("local_port").get<int>();
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(info.at("url"), "http://127.0.0.1:" + std::to_string(local) + "/lab?token=" + token);

  // What the engine was asked for: all GPUs, the directory mounted at the same path, the server
  // bound to the machine's loopback through host networking, never a published port.
  std::string calls = read_text(stubs / "calls.log");
  std::string run = calls.substr(calls.find("run "));
  run = run.substr(0, run.find('\n'));
  EXPECT_NE(run.find("--gpus all"), std::string::npos) << run;
  EXPECT_NE(run.find("--network host"), std::string::npos) << run;
  EXPECT_NE(run.find("-v " + work.string() + ":" + work.string()), std::string::npos) << run;
  EXPECT_NE(run.find("lab-image jupyter lab"), std::string::npos) << run;
  EXPECT_NE(run.find("--ip=127.0.0.1"), std::string::npos) << run;
  EXPECT_EQ(run.find(" -p "), std::string::npos) << run;
  EXPECT_NE(calls.find("exec gm-jupyter-" + std::to_string(remote) + " jupyter server list"),
            std::string::npos)
      << calls;

  // The token was read from the server inside the "container" and works through the forward.
  EXPECT_EQ(http_get(local, "/api/kernels?token=" + token).status, 200);
  EXPECT_EQ(http_get(local, "/api/kernels?token=wrong" + token).status, 403);

  CaptureResult stop = machine.gm({"--format", "json", "jupyter", machine.name(), "--image",
                                   "lab-image", "--port", std::to_string(remote), "--stop"});
  ASSERT_EQ(stop.status, 0) << stop.err;
  EXPECT_EQ(nlohmann::json::parse(stop.out).at("forwards_stopped").get<int>(), 1);
  EXPECT_NE(read_text(stubs / "calls.log").find("rm -f gm-jupyter-" + std::to_string(remote)),
            std::string::npos);
  EXPECT_TRUE(eventually([&] { return !port_accepts("127.0.0.1", remote); }));
  EXPECT_FALSE(std::filesystem::exists(stubs / ("gm-jupyter-" + std::to_string(remote) + ".pid")));
}

// The machine's curl: the Engine API's pull stream; the image is there afterwards.
const std::string k_curl_stub = std::string("#!/bin/bash\nd=$(dirname \"$0\")\n") +
                                "echo \"$*\" >>\"$d/curl.log\"" + k_engine_pull_stream +
                                "touch \"$d/pulled\"\n";

TEST(JupyterCli, AMissingImageIsPulledWithItsProgressOnStderr) {
  if (!std::filesystem::exists("/usr/lib/python3/dist-packages/jupyter_server")) {
    GTEST_SKIP() << "Debian's python3-jupyter-server is not installed";
  }
  TempDir stubs("gm-docker-pull");
  std::string docker = k_docker_stub;
  // `docker image inspect`: the image is there once it was pulled.
  docker.replace(docker.find("inspect)\n"), 0, "image) [ -f \"$d/pulled\" ] ;;\n");
  write_text(stubs / "docker", docker, 0755);
  write_text(stubs / "curl", k_curl_stub, 0755);
  std::filesystem::create_directories(stubs / "images" / "lab-image");
  write_text(stubs / "images" / "lab-image" / "jupyter", k_image_jupyter, 0755);
  CliMachine machine("gpu1", stubs.path().string() + ":/usr/local/bin:/usr/bin:/bin");
  std::string remote = std::to_string(free_port());
  std::vector<std::string> start = {
      "--format",    "json",   "jupyter", machine.name(), "--image",
      "lab-image",   "--port", remote,    "--local-port", std::to_string(free_port()),
      "--background"};

  CaptureResult r = machine.gm(start);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out).is_object()) << r.out;  // progress stays off stdout
  EXPECT_NE(r.err.find("pulling lab-image on gpu1 ..."), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pulling lab-image on gpu1: 5.0 MB in "), std::string::npos) << r.err;
  std::string curl = read_text(stubs / "curl.log");
  EXPECT_NE(curl.find("--unix-socket /var/run/docker.sock"), std::string::npos) << curl;
  EXPECT_NE(curl.find("/images/create?fromImage=lab-image"), std::string::npos) << curl;

  ASSERT_EQ(
      machine.gm({"jupyter", machine.name(), "--image", "lab-image", "--port", remote, "--stop"})
          .status,
      0);
  // Present now: nothing to pull, nothing said about it.
  start[9] = std::to_string(free_port());  // --local-port
  CaptureResult again = machine.gm(start);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.err.find("pulling"), std::string::npos) << again.err;
  EXPECT_EQ(
      machine.gm({"jupyter", machine.name(), "--image", "lab-image", "--port", remote, "--stop"})
          .status,
      0);
}

TEST(JupyterCli, APortTakenByAnotherProgramIsAnErrorNotAWait) {
  CliMachine machine;
  TempDir dir("gm-jupyter-taken");
  int remote = free_port();
  Process other({"/usr/bin/python3", "-m", "http.server", std::to_string(remote), "--bind",
                 "127.0.0.1", "--directory", dir.path().string()},
                SpawnOptions{.stdout_path = dir / "http.out", .stderr_path = dir / "http.log"});
  ASSERT_TRUE(eventually([&] { return port_accepts("127.0.0.1", remote); }));
  CaptureResult r =
      machine.gm({"jupyter", machine.name(), "--host", "--port", std::to_string(remote),
                  "--local-port", std::to_string(free_port())});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("taken by a server gpumachine did not start"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the port is taken by another program"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: pick another --port"), std::string::npos) << r.err;
  EXPECT_TRUE(other.is_running());  // not ours: left alone
}

TEST(JupyterCli, ASecondCallReusesTheBackgroundForwardAndTheStopHintNamesThePort) {
  if (!std::filesystem::exists("/usr/bin/jupyter")) {
    GTEST_SKIP() << "Debian's jupyter-notebook is not installed";
  }
  CliMachine machine;
  std::string remote = std::to_string(free_port());
  int local = free_port();
  CaptureResult first = machine.gm({"jupyter", machine.name(), "--host", "--port", remote,
                                    "--local-port", std::to_string(local), "--background"});
  ASSERT_EQ(first.status, 0) << first.err;
  // --stop without --port would look for the server on 8888: the hint must name the port.
  EXPECT_NE(first.out.find("stop it with `gpumachine jupyter " + machine.name() + " --port " +
                           remote + " --stop`"),
            std::string::npos)
      << first.out;

  CaptureResult again = machine.gm(
      {"--format", "json", "jupyter", machine.name(), "--host", "--port", remote, "--background"});
  ASSERT_EQ(again.status, 0) << again.err;
  nlohmann::json second = nlohmann::json::parse(again.out);
  EXPECT_TRUE(second.at("reused_forward").get<bool>());
  EXPECT_EQ(second.at("local_port").get<int>(), local);
  nlohmann::json list = nlohmann::json::parse(
      machine.gm({"--format", "json", "forward", machine.name(), "--list"}).out);
  ASSERT_EQ(list.size(), 1u) << list.dump();  // one forward, not a duplicate
  EXPECT_EQ(second.at("pid"), list[0].at("pid"));
  std::string token = second.at("token").get<std::string>();
  EXPECT_EQ(http_get(local, "/api/kernels?token=" + token).status, 200);

  CaptureResult stop = machine.gm(
      {"--format", "json", "jupyter", machine.name(), "--host", "--port", remote, "--stop"});
  ASSERT_EQ(stop.status, 0) << stop.err;
  EXPECT_EQ(nlohmann::json::parse(stop.out).at("forwards_stopped").get<int>(), 1);
}

}  // namespace
}  // namespace gm::testing
