#include "cli/output.h"

#include "gm/error.h"

#include <algorithm>
#include <cstdio>

namespace gm::cli {

Format parse_format(const std::string& text) {
  if (text == "table" || text.empty()) {
    return Format::table;
  }
  if (text == "json") {
    return Format::json;
  }
  throw UsageError("--format " + text, "unknown format", "use --format table or --format json");
}

void Output::print_json(const nlohmann::json& doc) {
  // Names and paths come from the file system, which need not be UTF-8: never fail on them
  // (invalid bytes become U+FFFD).
  std::string text = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void Output::print_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) {
    width[i] = headers[i].size();
  }
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string text;
  auto emit_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string& cell = i < row.size() ? row[i] : std::string();
      line += cell;
      if (i + 1 < width.size()) {
        line.append(width[i] - cell.size() + 3, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') {
      line.pop_back();
    }
    text += line + "\n";
  };
  emit_row(headers);
  for (const auto& row : rows) {
    emit_row(row);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void Output::print_line(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace gm::cli
