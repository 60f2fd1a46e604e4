#include "support/vendor_mirror.h"

#include <sys/utsname.h>

#include <stdexcept>

namespace gm::testing {

namespace fs = std::filesystem;

VendorMirror::VendorMirror(RunningHeaders headers) {
  utsname u{};
  ::uname(&u);  // the real host runs on this machine's kernel
  std::vector<std::string> argv{
      (fs::path(GM_SOURCE_DIR) / "tests/support/realhost/vendor-mirror.sh").string()};
  if (headers == RunningHeaders::withdrawn) {
    argv.push_back("--without-running-headers");
  }
  argv.insert(argv.end(), {tree().string(), "bookworm", "12", u.release});
  CaptureResult made = run_capture(argv);
  if (made.status != 0) {
    throw std::runtime_error("vendor-mirror.sh failed: " + made.err);
  }
  m_server = std::make_unique<LoopbackHttpServer>(tree(), m_dir / "http.log");
}

provision::Mirrors VendorMirror::mirrors() const {
  return {m_server->url() + "/docker", m_server->url() + "/cuda", m_server->url() + "/nvidia"};
}

void VendorMirror::install_debian_archive(const RealHost& host) const {
  fs::create_directories(host.root() / "etc/apt/keyrings");
  fs::copy_file(tree() / "debian/keyring.gpg", host.root() / "etc/apt/keyrings/debian-standin.gpg",
                fs::copy_options::overwrite_existing);
  write_text(host.root() / "etc/apt/sources.list.d/debian.sources",
             "Types: deb\nURIs: " + m_server->url() +
                 "/debian\nSuites: bookworm\nComponents: main\n"
                 "Signed-By: /etc/apt/keyrings/debian-standin.gpg\n");
}

}  // namespace gm::testing
