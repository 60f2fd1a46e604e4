#include "util/fs.h"

#include "gm/error.h"
#include "util/fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace gm::util {

namespace {
[[noreturn]] void fail(const std::filesystem::path& path, std::string_view what) {
  throw Error(path.string(), std::string(what), std::strerror(errno));
}

}  // namespace

std::optional<std::string> try_read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    fail(path, "cannot read");
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string read_file(const std::filesystem::path& path) {
  auto content = try_read_file(path);
  if (!content) {
    errno = ENOENT;
    fail(path, "cannot read");
  }
  return *content;
}

void sync_dir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    fail(dir, "cannot open directory");
  }
  if (::fsync(fd.get()) != 0) {
    fail(dir, "cannot sync directory");
  }
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode) {
  std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  Fd fd(::mkstemp(tmpl.data()));
  if (fd.get() < 0) {
    fail(path, "cannot create temporary file");
  }
  auto cleanup_and_fail = [&](std::string_view what) {
    int saved = errno;
    ::unlink(tmpl.c_str());
    errno = saved;
    fail(path, what);
  };
  if (::fchmod(fd.get(), mode) != 0) {
    cleanup_and_fail("cannot set permissions");
  }
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      cleanup_and_fail("cannot write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    cleanup_and_fail("cannot sync");
  }
  if (::close(fd.release()) != 0) {
    cleanup_and_fail("cannot close");
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    cleanup_and_fail("cannot rename into place");
  }
  sync_dir(dir);
}

void make_private_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) {
    return;
  }
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    make_private_dir(dir.parent_path());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    fail(dir, "cannot create directory");
  }
}

std::filesystem::path expand_user(std::string_view path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    std::string base = home != nullptr ? home : "";
    return std::filesystem::path(base + std::string(path.substr(1)));
  }
  return std::filesystem::path(path);
}

}  // namespace gm::util
