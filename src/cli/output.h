// The payload side of the CLI: tables for people, JSON for scripts, always on stdout. The only
// place that writes to stdout (diagnostics go to stderr through util/log).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace gm::cli {

enum class Format { table, json };

/// Parses "table" / "json"; throws UsageError otherwise.
Format parse_format(const std::string& text);

class Output {
 public:
  explicit Output(Format format) : m_format(format) {}

  bool json() const { return m_format == Format::json; }
  /// Writes the JSON document (pretty, one trailing newline).
  void print_json(const nlohmann::json& doc);
  /// Writes a left-aligned table with a header row.
  void print_table(const std::vector<std::string>& headers,
                   const std::vector<std::vector<std::string>>& rows);
  /// Writes one line of text.
  void print_line(const std::string& text);

 private:
  Format m_format;
};

}  // namespace gm::cli
