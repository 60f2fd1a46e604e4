// The local project directory `run`, `sync` and `compose` send to a machine: where it goes there
// and which files belong to it (git's own ignore rules: .gitignore, .git/info/exclude, the
// user's excludes, plus a top-level .gpumachineignore in the same syntax; never .git).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace gm::run {

struct Project {
  std::filesystem::path dir;  ///< absolute
  /// Its folder's name on the machine: "<dirname>-<8 hex of sha256(absolute path)>", so two
  /// checkouts with one name do not share a folder (under ~/gpumachine/projects/).
  std::string remote_name;
  /// The tag a Dockerfile is built as: "gpumachine/<dirname, lowercase>:latest".
  std::string image_tag;
  bool has_dockerfile = false;
};

/// The project at dir; throws UsageError when it is not a directory.
Project open_project(const std::filesystem::path& dir);

/// The files to send, relative to the project, '/'-separated, sorted; what exists only.
std::vector<std::string> project_files(const Project& project);

/// Their total size in bytes.
std::uint64_t total_size(const Project& project, const std::vector<std::string>& files);

/// Checks a path given relative to the project (--download, sync --down): no absolute path, no
/// "..". Throws UsageError naming the flag.
void check_relative(const std::string& path, const std::string& flag);

}  // namespace gm::run
