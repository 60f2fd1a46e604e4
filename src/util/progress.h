// The one progress display for long transfers (scp, image pulls, downloads on a machine): on a
// terminal a live stderr line with bytes, rate and time left; otherwise a plain line every few
// seconds; nothing with -q. Always on stderr, so stdout (tables, --format json) stays clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace gm::util {

/// "1.5 GB", "12.0 MB", "512 B" (powers of 1000, like docker and curl's -# line).
std::string human_bytes(std::uint64_t bytes);

class Progress {
 public:
  enum class Mode { live, lines, silent };

  /// label: what is moving ("uploading data.bin"); total: bytes expected, 0 when unknown.
  /// The mode follows stderr (a terminal: live) and -q (silent).
  Progress(std::string label, std::uint64_t total);
  Progress(std::string label, std::uint64_t total, Mode mode);
  /// Without finish() (an error is on its way): ends the live line, says nothing more.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// How many bytes are done so far (not a delta), and the total when it became known.
  void update(std::uint64_t done, std::uint64_t total);
  void update(std::uint64_t done) { update(done, m_total); }
  void add(std::uint64_t bytes) { update(m_done + bytes, m_total); }
  /// The final line: "uploaded data.bin: 10.0 MB in 1.2s (8.3 MB/s)". Idempotent.
  void finish();

  /// "45.0 MB / 120.0 MB (37%), 12.3 MB/s, 6s left" for the given state.
  static std::string describe(std::uint64_t done, std::uint64_t total, double seconds);

 private:
  void draw(bool final);

  std::string m_label;
  std::uint64_t m_total = 0;
  std::uint64_t m_done = 0;
  Mode m_mode;
  bool m_finished = false;
  bool m_drawn = false;  ///< a live line is on the screen
  std::chrono::steady_clock::time_point m_start;
  std::chrono::steady_clock::time_point m_last_draw;
};

}  // namespace gm::util
