// What apt is doing, read from its machine-readable status lines (apt-get -o APT::Status-Fd=1:
// "dlstatus:FILE:PERCENT:TEXT" while downloading, "pmstatus:PKG:PERCENT:TEXT" while dpkg works)
// and its "Need to get 312 MB of archives." line, so a step that downloads hundreds of megabytes
// shows bytes, rate and time left instead of a silent spinner.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gm::provision {

class AptProgress {
 public:
  /// Reads one line of a step's output. True when it was an apt status line: it then belongs on
  /// the progress display only, not in the output shown with -v or the error's tail.
  bool read(std::string_view line);
  /// What to show now ("downloading packages: 45.0 MB / 312.0 MB (14%), 12.3 MB/s, 21s left"),
  /// or nothing before apt said anything.
  const std::optional<std::string>& text() const { return m_text; }

  /// "Need to get 12.3 MB/312 MB of archives." -> 12300000 (the part still to download).
  static std::optional<std::uint64_t> need_to_get(std::string_view line);

 private:
  std::uint64_t m_total = 0;  ///< From "Need to get"; 0 until seen.
  std::optional<std::chrono::steady_clock::time_point> m_download_start;
  std::optional<std::string> m_text;
};

}  // namespace gm::provision
