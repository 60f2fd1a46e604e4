// The test binary's entry point: SIGPIPE is ignored (tests close sockets under live peers).
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // Every gpumachine the tests start inherits this: provisioning refuses a host with this boot
  // id, so no test can ever install packages on the machine running the tests (loopback sshds
  // and emulated instances log in to this very machine; simulated hosts have their own boot id).
  std::string boot_id;
  std::getline(std::ifstream("/proc/sys/kernel/random/boot_id"), boot_id);
  setenv("GM_TEST_REFUSE_BOOT_ID", boot_id.c_str(), 1);
  // Loopback only: no test may reach the instance metadata service, a real AWS endpoint or the
  // public caller-IP lookup, even by mistake. Tests that talk to the emulator set their own.
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 0);
  setenv("GPUMACHINE_CALLER_IP", "127.0.0.1", 0);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
