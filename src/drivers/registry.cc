// The table of drivers. Adding a driver = one row here plus its folder under drivers/.
#include "gm/driver.h"

namespace gm {

const std::vector<DriverInfo>& driver_registry() {
  static const std::vector<DriverInfo> drivers = {};
  return drivers;
}

}  // namespace gm
