// Ctrl-C / SIGTERM handling: the first signal asks the running verb to stop at a safe point and
// says so on stderr; a second one ends the process at once with status 128+signal. Every wait
// in the tool goes through sleep_unless_interrupted() or poll_unless_interrupted(), so the first
// signal is noticed within a fraction of a second wherever the tool is waiting.
#pragma once

#include <poll.h>

#include <chrono>
#include <string>

namespace gm::util {

/// Installs the SIGINT/SIGTERM handlers (idempotent).
void install_interrupt_handlers();
/// True once SIGINT or SIGTERM arrived.
bool interrupt_requested();
/// The exit status for the signal that arrived, as shells report a process it killed:
/// 130 for SIGINT, 143 for SIGTERM (130 when none arrived).
int interrupt_exit_code();
/// For a verb that handles the first signal itself (`run` asks its job to stop and goes on
/// following it): waits run again; a second signal still ends the process at once.
void acknowledge_interrupt();
/// Throws gm::InterruptedError(subject) when a signal arrived.
void throw_if_interrupted(const std::string& subject);

/// THE waiting helper: sleeps \a d in slices short enough to notice a signal; returns false
/// (early) when one arrived.
bool sleep_unless_interrupted(std::chrono::milliseconds d);
/// poll(2) for up to \a timeout (negative: no limit) in slices, retrying EINTR; returns poll's
/// count (0: timed out), or -1 with errno EINTR when a signal asked the tool to stop.
int poll_unless_interrupted(pollfd* fds, nfds_t count, std::chrono::milliseconds timeout);

}  // namespace gm::util
