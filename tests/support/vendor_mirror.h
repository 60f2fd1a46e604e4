// Test support: the vendors' repositories (Docker, NVIDIA's CUDA and Container Toolkit) and
// Debian's kernel and Docker packages, filled with stand-in packages
// (tests/support/realhost/vendor-mirror.sh) and served on 127.0.0.1, so the provisioning scripts
// run on the real test host through the product's own mirror overrides.
#pragma once

#include "provision/mirrors.h"
#include "support/process.h"
#include "support/realhost.h"

#include <memory>
#include <string>

namespace gm::testing {

/// Whether the Debian archive stand-in still has the running kernel's headers (Debian drops
/// them once a newer kernel ABI is out).
enum class RunningHeaders { published, withdrawn };

class VendorMirror {
 public:
  /// Builds the tree for Debian 12 and this machine's kernel (the real host's) and serves it.
  explicit VendorMirror(RunningHeaders headers = RunningHeaders::published);

  /// The --docker-mirror, --cuda-mirror and --toolkit-mirror values for this mirror.
  provision::Mirrors mirrors() const;
  /// Debian's archive stand-in as the host's Debian source (keyring and deb822 stanza).
  void install_debian_archive(const RealHost& host) const;
  /// Where the tree is on this machine (e.g. the cuda-keyring .deb to dpkg -i by hand).
  std::filesystem::path tree() const { return m_dir / "mirror"; }

 private:
  TempDir m_dir{"gm-vendor-mirror"};
  std::unique_ptr<LoopbackHttpServer> m_server;
};

}  // namespace gm::testing
