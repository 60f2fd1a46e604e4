// MachineHost: the DriverHost the machine layer hands to drivers. It saves records through the
// store, shows the current phase (a live line with elapsed time on a terminal, plain lines
// otherwise), measures each phase for the record's timings, and checks for Ctrl-C.
#pragma once

#include "gm/driver.h"
#include "store/store.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gm::machine {

class MachineHost final : public DriverHost {
 public:
  /// For driver calls that change the record (create, start, rm, provision, ...): saves go
  /// through `lock`, which the caller holds for as long as this host lives.
  MachineHost(store::Store& store, const store::MachineLock& lock);
  /// For calls that only read (state): a save is refused, as a bug.
  explicit MachineHost(store::Store& store);
  /// For one node of a cluster while all nodes work at once: plain lines starting with \a label
  /// (no live line), and each save handed to \a save_node (which keeps what belongs in the
  /// cluster's record and saves that).
  MachineHost(store::Store& store, std::string label,
              std::function<void(const MachineRecord&)> save_node);
  ~MachineHost() override;
  MachineHost(const MachineHost&) = delete;
  MachineHost& operator=(const MachineHost&) = delete;

  void save(const MachineRecord& record) override;
  void phase(std::string_view text) override;
  void debug(std::string_view text) override;
  void check_interrupted() override;
  /// What the current phase is doing now ("downloading packages: 45.0 MB / 312.0 MB ..."), shown
  /// after the phase on the live line; without a terminal a line every few seconds; nothing with
  /// -q. A new phase clears it.
  void detail(std::string_view text);
  std::string wait_target() const override { return m_wait_target; }
  std::string home_id() const override { return m_store.home_id(); }
  /// machine::make_boot_script() with the host key in the machine's directory.
  BootScript boot_script(MachineRecord& record, const BootImage& image) override;
  /// Sets what wait_target() answers ("running" or "ssh").
  void set_wait_target(std::string target) { m_wait_target = std::move(target); }
  /// Ends the live line, then asks through the function set_confirm() gave (no function: no).
  bool confirm(std::string_view question) override;
  void set_confirm(std::function<bool(const std::string&)> ask) { m_confirm = std::move(ask); }

  /// Ends the current phase (clears the live line) and records its duration.
  void finish();
  /// True once save() was called: a cloud driver has started creating things.
  bool saved() const { return m_saved; }
  /// Seconds spent in each phase, in order.
  const std::vector<std::pair<std::string, double>>& timings() const { return m_timings; }

 private:
  void end_phase();
  void repaint_loop();

  store::Store& m_store;
  const store::MachineLock* m_lock = nullptr;
  std::string m_wait_target = "ssh";
  std::function<bool(const std::string&)> m_confirm;
  std::string m_label;                                    ///< a node's "node R: "
  std::function<void(const MachineRecord&)> m_save_node;  ///< set: a node's host
  bool m_saved = false;
  bool m_live = false;  ///< stderr is a terminal and not -q: repaint a live line
  std::string m_phase;
  std::string m_detail;
  std::chrono::steady_clock::time_point m_detail_printed;  ///< last plain line (not live)
  std::chrono::steady_clock::time_point m_phase_start;
  std::vector<std::pair<std::string, double>> m_timings;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_stop = false;
  std::thread m_painter;
};

}  // namespace gm::machine
