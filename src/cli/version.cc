// `gpumachine version`: the tool's version and the libraries it was built with.
#include "cli/verbs.h"

#include <curl/curl.h>
#include <libssh2.h>
#include <openssl/opensslv.h>

namespace gm::cli {

void setup_version(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("version", "print the version of gpumachine");
  sub->callback([&dispatch] {
    dispatch.run = [](Context& ctx) {
      nlohmann::json doc = {{"version", GM_VERSION},
                            {"libssh2", LIBSSH2_VERSION},
                            {"libcurl", curl_version_info(CURLVERSION_NOW)->version},
                            {"openssl", OPENSSL_VERSION_TEXT}};
      if (ctx.json()) {
        ctx.out().print_json(doc);
      } else {
        ctx.out().print_line(std::string("gpumachine ") + GM_VERSION);
      }
      return 0;
    };
  });
}

}  // namespace gm::cli
