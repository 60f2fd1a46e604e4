// `gpumachine jupyter --host` against Debian's real Jupyter Notebook 6 on a loopback "machine":
// the printed URL answers through the forward, the token authenticates the API and a wrong one
// is refused, a second run reuses the server, and --stop leaves no server process.
#include "cli/machine_env.h"
#include "cli/remote_app.h"

#include <nlohmann/json.hpp>

namespace gm::testing {
namespace {

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

}  // namespace
}  // namespace gm::testing
