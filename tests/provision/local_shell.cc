#include "provision/local_shell.h"

#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace gm::provision::testing {

namespace {

// Runs argv with exactly env (nothing inherited), feeding stdin and streaming both outputs.

}  // namespace

std::filesystem::path simhost_script() {
  return std::filesystem::path(GM_SOURCE_DIR) / "tests/support/simhost/simhost";
}

int run_simhost(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/bash", simhost_script().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string err;
  int rc = gm::testing::run_streaming(argv, {{"PATH", "/usr/bin:/bin"}}, "/", {}, nullptr,
                                      [&](std::string_view c) { err.append(c); });
  if (rc != 0) {
    throw std::runtime_error("simhost failed: " + err);
  }
  return rc;
}

LocalShell::LocalShell(std::filesystem::path state_dir) : m_state(std::move(state_dir)) {
  // The guard that keeps tests from ever running the scripts against this machine.
  if (m_state.empty() || !std::filesystem::exists(m_state / ".simhost")) {
    throw std::runtime_error("LocalShell: " + m_state.string() +
                             " is not a simulated host (SIMHOST_STATE); refusing to run");
  }
  const std::string s = std::filesystem::absolute(m_state).string();
  m_env = {{"PATH", s + "/bin:" + s + "/safebin"},
           {"SIMHOST_STATE", s},
           {"GM_SYSROOT", s + "/root"},
           {"TMPDIR", s + "/root/tmp"},
           {"HOME", s + "/root/tmp"},
           {"LANG", "C"}};
}

int LocalShell::exec(const std::string& command, const ssh::OutputSink& on_stdout,
                     const ssh::OutputSink& on_stderr, std::string_view stdin_data) {
  return gm::testing::run_streaming({"/bin/bash", "-c", command}, m_env, m_env.at("HOME"),
                                    stdin_data, on_stdout, on_stderr);
}

void LocalShell::upload(const std::string& remote_path, std::string_view content, unsigned mode) {
  std::filesystem::path target = std::filesystem::path(m_env.at("GM_SYSROOT")) /
                                 std::filesystem::path(remote_path).relative_path();
  std::filesystem::create_directories(target.parent_path());
  std::ofstream(target, std::ios::binary) << content;
  std::filesystem::permissions(target, static_cast<std::filesystem::perms>(mode));
}

}  // namespace gm::provision::testing
