#include "run/project.h"

#include "gm/error.h"
#include "run/local_process.h"
#include "util/crypto.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

namespace gm::run {

namespace fs = std::filesystem;

namespace {

std::set<std::string> split_nul(const std::string& text) {
  std::set<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\0', start);
    if (end == std::string::npos) {
      end = text.size();
    }
    if (end > start) {
      out.insert(text.substr(start, end - start));
    }
    start = end + 1;
  }
  return out;
}

/// A scratch repository whose index is empty: git's ignore rules for a folder that is not a work
/// tree (everything is "untracked" there). Removed when destroyed.
class ScratchRepo {
 public:
  ScratchRepo() {
    std::string templ = (fs::temp_directory_path() / "gpumachine-git-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      throw Error("project", "cannot make a scratch folder for git", std::strerror(errno));
    }
    m_dir = templ;
    capture({"git", "init", "-q", "--bare", m_dir.string()}, {}, "project",
            "cannot make a scratch git repository");
  }
  ~ScratchRepo() {
    std::error_code ignored;
    fs::remove_all(m_dir, ignored);
  }
  ScratchRepo(const ScratchRepo&) = delete;
  ScratchRepo& operator=(const ScratchRepo&) = delete;
  const fs::path& dir() const { return m_dir; }

 private:
  fs::path m_dir;
};

}  // namespace

Project open_project(const fs::path& dir) {
  std::error_code ec;
  fs::path absolute = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  if (ec || !fs::is_directory(absolute)) {
    throw UsageError("--dir " + dir.string(), "is not a directory",
                     "give the project folder with --dir DIR (default: the current folder)");
  }
  Project p;
  p.dir = absolute;
  std::string base = absolute.filename().string();
  if (base.empty()) {
    base = "root";
  }
  p.remote_name = base + "-" + util::hex(util::sha256(absolute.string())).substr(0, 8);
  std::string tag;
  for (char c : base) {
    unsigned char u = static_cast<unsigned char>(c);
    tag += std::isalnum(u) != 0 || c == '.' || c == '-' || c == '_'
               ? static_cast<char>(std::tolower(u))
               : '-';
  }
  while (!tag.empty() && !std::isalnum(static_cast<unsigned char>(tag.front()))) {
    tag.erase(0, 1);
  }
  p.image_tag = "gpumachine/" + (tag.empty() ? std::string("project") : tag) + ":latest";
  p.has_dockerfile = fs::is_regular_file(absolute / "Dockerfile");
  return p;
}

std::vector<std::string> project_files(const Project& project) {
  const std::string subject = "project " + project.dir.string();
  const std::string problem = "cannot list its files with git";
  const fs::path ignore_file = project.dir / ".gpumachineignore";
  const bool has_ignore = fs::is_regular_file(ignore_file);
  std::vector<std::string> base = {"git"};
  std::optional<ScratchRepo> scratch;
  bool in_work_tree = false;
  {
    // Outside a work tree git says "fatal: not a git repository": not for the user's eyes.
    LocalProcess probe({"sh", "-c", "git rev-parse --is-inside-work-tree 2>/dev/null"},
                       project.dir.string());
    std::string out;
    probe.read_stdout([&](std::string_view c) { out += c; });
    in_work_tree = probe.wait() == 0 && out.rfind("true", 0) == 0;
  }
  if (!in_work_tree) {
    scratch.emplace();
    base.push_back("--git-dir=" + scratch->dir().string());
    base.push_back("--work-tree=.");
  }
  std::vector<std::string> listing = base;
  listing.insert(listing.end(), {"ls-files", "-z", "-co", "--exclude-standard"});
  if (has_ignore) {
    listing.push_back("--exclude-from=" + ignore_file.string());
  }
  std::set<std::string> files = split_nul(capture(listing, project.dir.string(), subject, problem));
  if (has_ignore) {
    // ls-files applies excludes to untracked files only; tracked ones are taken out here.
    std::vector<std::string> tracked_ignored = base;
    tracked_ignored.insert(tracked_ignored.end(),
                           {"ls-files", "-z", "-ci", "--exclude-from=" + ignore_file.string()});
    for (const std::string& f :
         split_nul(capture(tracked_ignored, project.dir.string(), subject, problem))) {
      files.erase(f);
    }
  }
  std::vector<std::string> out;
  for (const std::string& f : files) {
    struct stat st {};
    // Tracked files deleted from the work tree are listed by git; only what exists is sent.
    if (::lstat((project.dir / f).c_str(), &st) == 0) {
      out.push_back(f);
    }
  }
  return out;
}

std::uint64_t total_size(const Project& project, const std::vector<std::string>& files) {
  std::uint64_t total = 0;
  for (const std::string& f : files) {
    struct stat st {};
    if (::lstat((project.dir / f).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<std::uint64_t>(st.st_size);
    }
  }
  return total;
}

void check_relative(const std::string& path, const std::string& flag) {
  fs::path p(path);
  bool bad = path.empty() || p.is_absolute() ||
             std::any_of(p.begin(), p.end(), [](const fs::path& part) { return part == ".."; });
  if (bad) {
    throw UsageError(flag + " " + path, "must be a path inside the project (relative, no '..')",
                     "name it relative to the project folder, e.g. " + flag + " results");
  }
}

}  // namespace gm::run
