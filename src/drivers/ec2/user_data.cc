#include "drivers/ec2/user_data.h"

#include "gm/error.h"
#include "util/gzip.h"

namespace gm::drivers::ec2 {

std::string user_data_for_ec2(const std::string& rendered, const std::string& subject) {
  if (rendered.size() <= k_user_data_limit) {
    return rendered;
  }
  std::string packed = util::gzip(rendered);
  if (packed.size() > k_user_data_limit) {
    throw UsageError(
        subject,
        "the user data is " + std::to_string(packed.size()) +
            " bytes even gzip-compressed; EC2 takes at most " + std::to_string(k_user_data_limit),
        "make the --ec2-user-data file smaller, e.g. have it download a larger script");
  }
  return packed;
}

}  // namespace gm::drivers::ec2
