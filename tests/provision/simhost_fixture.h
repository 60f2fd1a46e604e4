// The fixture of the end-to-end provisioning tests against simulated hosts (tests/support/simhost)
// through LocalShell: a fresh host directory per test, provision() with a reconnect that waits for
// the simulated reboot, and helpers to read what the stubs recorded.
#pragma once

#include "provision/local_shell.h"
#include "provision/provisioner.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace gm::provision::testing {

inline std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ProvisionSimHost : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gm-simhost-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    m_dir = std::filesystem::path(tmpl) / "host";
    m_options.poll_interval = std::chrono::seconds(1);
    m_options.reconnect_pause = std::chrono::milliseconds(200);
    m_options.reboot_grace = std::chrono::milliseconds(1500);
  }
  void TearDown() override {
    // A reboot in flight finishes within a couple of seconds; let it before removing its files.
    for (int i = 0; i < 50 && std::filesystem::exists(m_dir / "reboot-pending"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::filesystem::remove_all(m_dir.parent_path());
  }

  void init(std::vector<std::string> args) {
    args.insert(args.begin(), {"init", m_dir.string()});
    run_simhost(args);
  }

  // What the caller's reconnect does over SSH: retry until the host answers again.
  ReconnectFn reconnect() {
    return [this]() -> std::unique_ptr<ssh::RemoteShell> {
      ++m_reconnects;
      for (int i = 0; i < 100 && std::filesystem::exists(m_dir / "reboot-pending"); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      return std::make_unique<LocalShell>(m_dir);
    };
  }

  ProvisionResult run() {
    LocalShell shell(m_dir);
    Callbacks cb;
    cb.on_output = [this](std::string_view line) { m_output += std::string(line) + "\n"; };
    return provision(shell, reconnect(), m_options, cb);
  }

  std::string commands() const { return read(m_dir / "commands.log"); }
  void clear_commands() const { std::ofstream(m_dir / "commands.log", std::ios::trunc); }
  bool exists(const std::string& rel) const { return std::filesystem::exists(m_dir / rel); }

  static StepOutcome outcome(const ProvisionResult& r, StepId id) {
    for (const StepReport& s : r.steps) {
      if (s.id == id) {
        return s.outcome;
      }
    }
    ADD_FAILURE() << "no report for step " << to_string(id);
    return StepOutcome::skipped;
  }
  static int applied_count(const ProvisionResult& r) {
    int n = 0;
    for (const StepReport& s : r.steps) {
      n += s.outcome == StepOutcome::applied && s.id != StepId::wait && s.id != StepId::facts &&
           s.id != StepId::verify;
    }
    return n;
  }

  std::filesystem::path m_dir;
  ProvisionOptions m_options;
  int m_reconnects = 0;
  std::string m_output;
};

}  // namespace gm::provision::testing
