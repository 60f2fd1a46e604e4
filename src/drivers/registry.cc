// The table of drivers. Adding a driver = one row here plus its folder under drivers/.
#include "drivers/digitalocean/do_driver.h"
#include "drivers/ec2/ec2_driver.h"
#include "drivers/generic/generic_driver.h"
#include "gm/driver.h"

namespace gm {

const std::vector<DriverInfo>& driver_registry() {
  static const std::vector<DriverInfo> drivers = {drivers::generic::driver_info(),
                                                  drivers::ec2::driver_info(),
                                                  drivers::digitalocean::driver_info()};
  return drivers;
}

}  // namespace gm
