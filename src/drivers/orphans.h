// What every driver's `gc` shares: why an orphan is kept (scope and age rules), and the
// DriverHost its deletions run under.
#pragma once

#include "gm/driver.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace gm::drivers {

/// Why gc leaves \a o alone, empty when --delete may remove it: it belongs to an unreadable local
/// record, to another home or to none (unless all_homes), or it was made less than min_age ago
/// (or at an unknown time, \a made unset).
std::string kept_reason(const Orphan& o, const OrphanScope& scope,
                        std::optional<std::chrono::system_clock::time_point> made);

/// The DriverHost of gc's deletions: no record to save, progress as -v lines, Ctrl-C honoured.
class GcHost final : public DriverHost {
 public:
  void save(const MachineRecord&) override {}
  void phase(std::string_view text) override;
  void debug(std::string_view text) override;
  void check_interrupted() override;
};

}  // namespace gm::drivers
