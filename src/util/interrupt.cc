#include "util/interrupt.h"

#include "gm/error.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

namespace gm::util {

namespace {
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

/// A signal is noticed within this long wherever the tool waits.
constexpr milliseconds k_slice{100};

std::atomic<int> g_signals{0};
std::atomic<int> g_signal_number{0};
std::atomic<bool> g_acknowledged{false};

extern "C" void on_signal(int number) {
  if (g_signals.fetch_add(1) >= 1) {
    _exit(128 + number);  // second signal: the user means it
  }
  g_signal_number.store(number);
  // Only async-signal-safe calls here: the verb adds what it stopped and how to go on.
  static constexpr char k_note[] =
      "\ngpumachine: stopping at the next safe point (a second Ctrl-C quits at once)\n";
  ssize_t ignored = ::write(STDERR_FILENO, k_note, sizeof k_note - 1);
  (void)ignored;
}
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupt_requested() {
  return g_signals.load() > (g_acknowledged.load() ? 1 : 0);
}

void acknowledge_interrupt() {
  g_acknowledged.store(g_signals.load() > 0);
}

int interrupt_exit_code() {
  int number = g_signal_number.load();
  return number == 0 ? exit_code::k_interrupted : 128 + number;
}

void throw_if_interrupted(const std::string& subject) {
  if (interrupt_requested()) {
    throw InterruptedError(subject);
  }
}

bool sleep_unless_interrupted(milliseconds d) {
  const Clock::time_point end = Clock::now() + d;
  while (!interrupt_requested()) {
    Clock::time_point now = Clock::now();
    if (now >= end) {
      return true;
    }
    std::this_thread::sleep_for(std::min(k_slice, std::chrono::ceil<milliseconds>(end - now)));
  }
  return false;
}

int poll_unless_interrupted(pollfd* fds, nfds_t count, milliseconds timeout) {
  const bool forever = timeout.count() < 0;
  const Clock::time_point end = Clock::now() + (forever ? milliseconds(0) : timeout);
  while (true) {
    if (interrupt_requested()) {
      errno = EINTR;
      return -1;
    }
    milliseconds slice = k_slice;
    if (!forever) {
      Clock::time_point now = Clock::now();
      slice = std::min(k_slice,
                       std::chrono::ceil<milliseconds>(std::max(end - now, Clock::duration(0))));
    }
    int n = ::poll(fds, count, static_cast<int>(slice.count()));
    if (n > 0 || (n < 0 && errno != EINTR)) {
      return n;
    }
    if (!forever && Clock::now() >= end && n == 0) {
      return 0;
    }
  }
}

}  // namespace gm::util
