// Shared helpers of the ec2 driver tests: create arguments and assertions on emulator state.
#pragma once

#include "support/ec2_emulator.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace gm::testing::ec2 {

/// The emulator logs every instance in as the user running it.
inline std::string login_user() {
  struct passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "root";
}

/// `create --driver ec2 NAME` with a cheap CPU type (unless \a extra names one), a 20 GiB root
/// volume and the emulator's login user.
inline std::vector<std::string> create_args(const std::string& name,
                                            std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"create",     "--driver",        "ec2", name, "--ec2-ssh-user",
                                   login_user(), "--ec2-root-size", "20"};
  if (std::find(extra.begin(), extra.end(), "--ec2-instance-type") == extra.end()) {
    args.insert(args.end(), {"--ec2-instance-type", "t3.micro"});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// Waits until the emulator has seen \a action (or the process ended); true when seen.
inline bool wait_for_call(Ec2EmulatorFixture& emu, Process& p, const std::string& action,
                          std::chrono::seconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (emu.count_calls(action) > 0) {
      return true;
    }
    if (!p.is_running()) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

/// "out/err" of a CLI run for assertion messages.
inline std::string describe(const CaptureResult& r) {
  return "status " + std::to_string(r.status) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

/// Joined leak lines for messages.
inline std::string lines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    out += s + "\n";
  }
  return out;
}

}  // namespace gm::testing::ec2
