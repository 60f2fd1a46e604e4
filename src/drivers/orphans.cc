#include "drivers/orphans.h"

#include "util/interrupt.h"
#include "util/log.h"
#include "util/time.h"

#include <algorithm>

namespace gm::drivers {

std::string kept_reason(const Orphan& o, const OrphanScope& scope,
                        std::optional<std::chrono::system_clock::time_point> made) {
  if (scope.unreadable_names.contains(o.machine) && (o.home.empty() || o.home == scope.home_id)) {
    return "the local record of '" + o.machine +
           "' cannot be read (see `gpumachine ls`): fix it, or `gpumachine rm " + o.machine + "`";
  }
  if (!scope.all_homes && o.home.empty()) {
    return "no gpumachine:home tag (made by an older gpumachine, from any home); --all-homes "
           "includes it";
  }
  if (!scope.all_homes && o.home != scope.home_id) {
    return "another home's (gpumachine:home " + o.home.substr(0, 8) +
           "...: a teammate, CI, another computer); --all-homes includes it";
  }
  if (!made) {
    return "its age is unknown; delete it by hand if it is yours";
  }
  auto age =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *made);
  if (age < scope.min_age) {
    return "made " + util::human_duration(std::max(age, std::chrono::seconds(0))) +
           " ago; gc leaves anything younger than " + util::human_duration(scope.min_age) +
           " alone (a create may be under way)";
  }
  return "";
}

void GcHost::phase(std::string_view text) {
  util::debug("gc: " + std::string(text));
}

void GcHost::debug(std::string_view text) {
  util::debug(text);
}

void GcHost::check_interrupted() {
  util::throw_if_interrupted("gc --delete");
}

}  // namespace gm::drivers
