#include "machine/machine_host.h"

#include "gm/error.h"
#include "machine/boot_script.h"
#include "util/interrupt.h"
#include "util/log.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

namespace gm::machine {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

MachineHost::MachineHost(store::Store& store, const store::MachineLock& lock) : MachineHost(store) {
  m_lock = &lock;
}

MachineHost::MachineHost(store::Store& store)
    : m_store(store),
      m_live(::isatty(STDERR_FILENO) == 1 &&
             util::log_settings().verbosity == util::Verbosity::normal) {
  if (m_live) {
    m_painter = std::thread([this] { repaint_loop(); });
  }
}

MachineHost::MachineHost(store::Store& store, std::string label,
                         std::function<void(const MachineRecord&)> save_node)
    : m_store(store), m_label(std::move(label)), m_save_node(std::move(save_node)) {}

MachineHost::~MachineHost() {
  finish();
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
  }
  m_wake.notify_all();
  if (m_painter.joinable()) {
    m_painter.join();
  }
}

void MachineHost::save(const MachineRecord& record) {
  if (m_save_node) {
    m_save_node(record);
    m_saved = true;
    return;
  }
  MachineRecord copy = record;
  const store::MachineLock none;  // the store refuses it: a read-only host must not save
  m_store.save(m_lock != nullptr ? *m_lock : none, copy);
  m_saved = true;
}

void MachineHost::phase(std::string_view text) {
  std::lock_guard lock(m_mutex);
  end_phase();
  m_phase = m_label + std::string(text);
  m_phase_start = std::chrono::steady_clock::now();
  if (!m_live) {
    util::info(m_phase + " ...");
  }
}

void MachineHost::detail(std::string_view text) {
  static constexpr std::chrono::seconds k_lines_interval{5};
  std::lock_guard lock(m_mutex);
  m_detail = std::string(text);
  auto now = std::chrono::steady_clock::now();
  if (!m_live && !m_phase.empty() && now - m_detail_printed >= k_lines_interval) {
    m_detail_printed = now;
    util::info(m_phase + ": " + m_detail);
  }
}

void MachineHost::debug(std::string_view text) {
  if (m_live && util::log_settings().verbosity == util::Verbosity::verbose) {
    std::fputs("\r\033[K", stderr);
  }
  util::debug(text);
}

void MachineHost::check_interrupted() {
  util::throw_if_interrupted(m_phase.empty() ? "gpumachine" : m_phase);
}

bool MachineHost::confirm(std::string_view question) {
  finish();  // the question must not share a line with the live phase line
  return m_confirm && m_confirm(std::string(question));
}

void MachineHost::finish() {
  std::lock_guard lock(m_mutex);
  end_phase();
}

void MachineHost::end_phase() {
  if (m_phase.empty()) {
    return;
  }
  double took = seconds_since(m_phase_start);
  m_timings.emplace_back(m_phase, took);
  if (m_live) {
    std::fprintf(stderr, "\r\033[K%s (%.1fs)\n", m_phase.c_str(), took);
  }
  m_phase.clear();
  m_detail.clear();
  m_detail_printed = {};
}

void MachineHost::repaint_loop() {
  static constexpr const char* k_spinner[] = {"|", "/", "-", "\\"};
  std::size_t tick = 0;
  std::unique_lock lock(m_mutex);
  while (!m_stop) {
    if (!m_phase.empty()) {
      char elapsed[32];
      std::snprintf(elapsed, sizeof elapsed, " %.1fs", seconds_since(m_phase_start));
      std::string line = std::string(k_spinner[tick++ % 4]) + " " + m_phase + elapsed;
      if (!m_detail.empty()) {
        line += " - " + m_detail;
      }
      // A line wider than the terminal wraps, and \r then repaints only its last row.
      winsize size{};
      if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 1 &&
          line.size() >= size.ws_col) {
        line.resize(size.ws_col - 1);
      }
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    }
    m_wake.wait_for(lock, std::chrono::milliseconds(100));
  }
}

BootScript MachineHost::boot_script(MachineRecord& record, const BootImage& image) {
  return make_boot_script(record, image, m_store.machine_dir(record.name) / "host_ed25519");
}

}  // namespace gm::machine
