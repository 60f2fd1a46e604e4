// SFTP transfers. Throughput comes from libssh2's own pipelining: sftp_write splits what it is
// given into 30000-byte packets and sends them all before waiting for the first ack, and
// sftp_read requests ahead in proportion to the buffer, so both get buffers as large as the file
// (up to a cap): a small file then costs one round trip for its data, not a hundred requests.
#include "ssh/session.h"

#include "ssh/session_impl.h"
#include "util/fd.h"
#include "util/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace gm::ssh {

using Stage = SshError::Stage;

namespace {

/// Bytes handed to one libssh2_sftp_write call: how much is in flight, unacknowledged.
constexpr std::size_t k_write_window = 2 * 1024 * 1024;
/// Local read buffer for uploads (refilled when less than a window is left).
constexpr std::size_t k_upload_buffer = 8 * 1024 * 1024;
/// Buffer handed to libssh2_sftp_read (it reads ahead up to 4x this), at most.
constexpr std::size_t k_read_chunk = 1024 * 1024;

/// A transfer buffer for a file of \a size bytes: as large as the file (plus one byte, so a
/// single read also sees its end) up to \a cap, and not zero-filled (a new buffer per file).
std::unique_ptr<char[]> file_buffer(std::uint64_t size, std::size_t cap, std::size_t& length) {
  length = static_cast<std::size_t>(std::min<std::uint64_t>(size + 1, cap));
  return std::unique_ptr<char[]>(new char[length]);
}

std::string sftp_status_text(unsigned long code) {
  switch (code) {
    case LIBSSH2_FX_EOF:
      return "end of file";
    case LIBSSH2_FX_NO_SUCH_FILE:
    case LIBSSH2_FX_NO_SUCH_PATH:
      return "no such file or directory";
    case LIBSSH2_FX_PERMISSION_DENIED:
      return "permission denied";
    case LIBSSH2_FX_FAILURE:
      return "failure (the server gave no reason)";
    case LIBSSH2_FX_FILE_ALREADY_EXISTS:
      return "file already exists";
    case LIBSSH2_FX_WRITE_PROTECT:
      return "write protected";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
      return "no space left on the filesystem";
    case LIBSSH2_FX_QUOTA_EXCEEDED:
      return "quota exceeded";
    case LIBSSH2_FX_NOT_A_DIRECTORY:
      return "not a directory";
    default:
      return "SFTP status " + std::to_string(code);
  }
}

/// Owns a local file descriptor.
using LocalFile = util::Fd;

[[noreturn]] void fail_local(const std::string& subject, const std::string& what,
                             const std::filesystem::path& path) {
  throw SshError(Stage::sftp, subject, what + " '" + path.string() + "'", std::strerror(errno));
}

std::string join_remote(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') {
    return dir + name;
  }
  return dir + "/" + name;
}

}  // namespace

LIBSSH2_SFTP* Session::Impl::sftp_session() {
  if (!sftp) {
    sftp.reset(libssh2_sftp_init(session.get()));
    if (!sftp) {
      fail(Stage::sftp, "cannot start the SFTP subsystem",
           "the host's sshd needs a 'Subsystem sftp' line (internal-sftp or sftp-server)");
    }
  }
  return sftp.get();
}

void Session::Impl::fail_sftp(const std::string& what, const std::string& path) const {
  std::string cause = last_error();
  if (libssh2_session_last_errno(session.get()) == LIBSSH2_ERROR_SFTP_PROTOCOL && sftp) {
    cause = sftp_status_text(libssh2_sftp_last_error(sftp.get()));
  }
  throw SshError(Stage::sftp, subject, what + " '" + path + "'", cause);
}

namespace {

// Writes [data, data+size) to an open remote file. libssh2_sftp_write returns how many bytes
// were acknowledged; the bytes after that must be passed again unchanged (they may already be in
// flight), so the window slides over the caller's buffer.
void write_all(Session::Impl& impl, LIBSSH2_SFTP_HANDLE* handle, const char* data, std::size_t size,
               const std::string& remote_path) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = libssh2_sftp_write(handle, data + done, std::min(size - done, k_write_window));
    if (n < 0) {
      impl.fail_sftp("cannot write", remote_path);
    }
    done += static_cast<std::size_t>(n);
  }
}

SftpHandlePtr open_for_write(Session::Impl& impl, const std::string& remote_path, unsigned mode) {
  SftpHandlePtr handle(libssh2_sftp_open(impl.sftp_session(), remote_path.c_str(),
                                         LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC,
                                         static_cast<long>(mode)));
  if (!handle) {
    impl.fail_sftp("cannot create", remote_path);
  }
  return handle;
}

// Permission bits given at creation are filtered by the server's umask and ignored for an
// existing file, so they are set explicitly; closing reports deferred write errors.
void finish_write(Session::Impl& impl, SftpHandlePtr handle, unsigned mode,
                  const std::string& remote_path) {
  LIBSSH2_SFTP_ATTRIBUTES attrs{};
  attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
  attrs.permissions = mode & 07777;
  if (libssh2_sftp_fsetstat(handle.get(), &attrs) != 0) {
    impl.fail_sftp("cannot set the permissions of", remote_path);
  }
  if (libssh2_sftp_close_handle(handle.release()) != 0) {
    impl.fail_sftp("cannot finish writing", remote_path);
  }
}

void upload_file(Session::Impl& impl, const std::filesystem::path& local, const std::string& remote,
                 unsigned mode) {
  LocalFile file(::open(local.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) {
    fail_local(impl.subject, "cannot open", local);
  }
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) {
    fail_local(impl.subject, "cannot read", local);
  }
  SftpHandlePtr handle = open_for_write(impl, remote, mode);
  std::size_t length = 0;
  std::unique_ptr<char[]> data =
      file_buffer(static_cast<std::uint64_t>(st.st_size), k_upload_buffer, length);
  std::span<char> buffer(data.get(), length);
  std::size_t begin = 0;
  std::size_t end = 0;
  bool at_eof = false;
  while (true) {
    if (!at_eof && end - begin < k_write_window) {
      // Keep the unacknowledged tail in place relative to its content: move it to the front,
      // then refill behind it.
      std::memmove(buffer.data(), buffer.data() + begin, end - begin);
      end -= begin;
      begin = 0;
      while (!at_eof && end < buffer.size()) {
        ssize_t n = ::read(file.get(), buffer.data() + end, buffer.size() - end);
        if (n < 0) {
          if (errno == EINTR) {
            continue;
          }
          fail_local(impl.subject, "cannot read", local);
        }
        if (n == 0) {
          at_eof = true;
        }
        end += static_cast<std::size_t>(n);
      }
    }
    if (begin == end) {
      break;
    }
    ssize_t n = libssh2_sftp_write(handle.get(), buffer.data() + begin,
                                   std::min(end - begin, k_write_window));
    if (n < 0) {
      impl.fail_sftp("cannot write", remote);
    }
    begin += static_cast<std::size_t>(n);
    if (impl.transferred) {
      impl.transferred(static_cast<std::uint64_t>(n));
    }
  }
  finish_write(impl, std::move(handle), mode, remote);
}

void make_remote_dir(Session::Impl& impl, const std::string& remote, unsigned mode) {
  LIBSSH2_SFTP* sftp = impl.sftp_session();
  if (libssh2_sftp_mkdir(sftp, remote.c_str(), static_cast<long>(mode)) != 0) {
    LIBSSH2_SFTP_ATTRIBUTES attrs{};
    if (libssh2_sftp_stat(sftp, remote.c_str(), &attrs) != 0 ||
        !LIBSSH2_SFTP_S_ISDIR(attrs.permissions)) {
      impl.fail_sftp("cannot create the directory", remote);
    }
  }
  LIBSSH2_SFTP_ATTRIBUTES attrs{};
  attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
  attrs.permissions = mode & 07777;
  if (libssh2_sftp_setstat(sftp, remote.c_str(), &attrs) != 0) {
    impl.fail_sftp("cannot set the permissions of", remote);
  }
}

void upload_tree(Session::Impl& impl, const std::filesystem::path& local, const std::string& remote,
                 bool recursive) {
  struct stat st {};
  if (::stat(local.c_str(), &st) != 0) {
    fail_local(impl.subject, "cannot read", local);
  }
  if (S_ISREG(st.st_mode)) {
    upload_file(impl, local, remote, st.st_mode & 07777);
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    util::warn("skipping '" + local.string() + "': not a regular file or directory");
    return;
  }
  if (!recursive) {
    throw SshError(Stage::sftp, impl.subject, "'" + local.string() + "' is a directory", "",
                   "copy directories recursively (-r)");
  }
  // Created writable first so the contents can go in; its own bits are restored afterwards.
  make_remote_dir(impl, remote, (st.st_mode & 07777) | 0700);
  for (const std::filesystem::directory_entry& entry : std::filesystem::directory_iterator(local)) {
    upload_tree(impl, entry.path(), join_remote(remote, entry.path().filename().string()), true);
  }
  if (((st.st_mode & 07777) | 0700) != (st.st_mode & 07777)) {
    make_remote_dir(impl, remote, st.st_mode & 07777);
  }
}

/// Copies a remote file of the listed \a size: reading stops there, so the end of the file costs
/// no extra round trip (like OpenSSH's scp, a file growing meanwhile is copied as it was when
/// listed). Size 0 (also what /proc reports) reads to the end.
void download_file(Session::Impl& impl, const std::string& remote,
                   const std::filesystem::path& local, unsigned mode, std::uint64_t size) {
  SftpHandlePtr handle(libssh2_sftp_open(impl.sftp_session(), remote.c_str(), LIBSSH2_FXF_READ, 0));
  if (!handle) {
    impl.fail_sftp("cannot open", remote);
  }
  LocalFile file(::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (file.get() < 0) {
    fail_local(impl.subject, "cannot create", local);
  }
  std::size_t length = 0;
  std::unique_ptr<char[]> data = file_buffer(size, k_read_chunk, length);
  std::span<char> buffer(data.get(), length);
  for (std::uint64_t copied = 0; size == 0 || copied < size;) {
    ssize_t n = libssh2_sftp_read(handle.get(), buffer.data(), buffer.size());
    if (n < 0) {
      impl.fail_sftp("cannot read", remote);
    }
    if (n == 0) {
      break;
    }
    if (impl.transferred) {
      impl.transferred(static_cast<std::uint64_t>(n));
    }
    copied += static_cast<std::uint64_t>(n);
    std::size_t written = 0;
    while (written < static_cast<std::size_t>(n)) {
      ssize_t w =
          ::write(file.get(), buffer.data() + written, static_cast<std::size_t>(n) - written);
      if (w < 0) {
        if (errno == EINTR) {
          continue;
        }
        fail_local(impl.subject, "cannot write", local);
      }
      written += static_cast<std::size_t>(w);
    }
  }
  if (::fchmod(file.get(), mode & 07777) != 0) {
    fail_local(impl.subject, "cannot set the permissions of", local);
  }
  if (::close(file.release()) != 0) {
    fail_local(impl.subject, "cannot write", local);
  }
}

/// Directory levels a recursive download descends at most (OpenSSH's sftp client has the same
/// bound), so a host that serves an endless tree cannot make it run forever.
constexpr int k_max_download_depth = 64;

/// A name from a remote listing that stays inside the directory it is listed in: not empty,
/// not "." or "..", no '/' (which also rules out absolute paths) and no NUL.
bool is_plain_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

/// A name a remote directory lists, with its attributes (those of the entry itself, as lstat).
struct Listed {
  std::string name;
  LIBSSH2_SFTP_ATTRIBUTES attrs;
};

/// The entries of a remote directory, without "." and ".." and without the names a hostile
/// host could use to write outside the destination (each one is reported and skipped).
std::vector<Listed> list_remote_dir(Session::Impl& impl, const std::string& remote) {
  SftpHandlePtr dir(libssh2_sftp_opendir(impl.sftp_session(), remote.c_str()));
  if (!dir) {
    impl.fail_sftp("cannot list", remote);
  }
  std::vector<Listed> names;
  char name[4096];
  LIBSSH2_SFTP_ATTRIBUTES entry{};
  while (true) {
    int n = libssh2_sftp_readdir(dir.get(), name, sizeof name, &entry);
    if (n < 0) {
      impl.fail_sftp("cannot list", remote);
    }
    if (n == 0) {
      return names;
    }
    std::string entry_name(name, static_cast<std::size_t>(n));
    if (entry_name == "." || entry_name == "..") {
      continue;
    }
    if (!is_plain_name(entry_name)) {
      std::string shown = entry_name;
      std::replace(shown.begin(), shown.end(), '\0', '?');
      util::warn("skipping '" + shown + "' listed in '" + remote +
                 "': the host sent a name that is not a plain file name");
      continue;
    }
    names.push_back({std::move(entry_name), entry});
  }
}

/// Copies remote to local. The top level (what the user named) follows symbolic links; inside a
/// tree a link is copied as the file it points to, while a link to a directory is skipped (it can
/// point at its own parent), as OpenSSH's scp does.
/// Below the top, \a listed holds the entry's attributes from its directory's listing (saving a
/// round trip per file).
void download_tree(Session::Impl& impl, const std::string& remote,
                   const std::filesystem::path& local, bool recursive, int depth = 0,
                   const LIBSSH2_SFTP_ATTRIBUTES* listed = nullptr) {
  LIBSSH2_SFTP* sftp = impl.sftp_session();
  LIBSSH2_SFTP_ATTRIBUTES attrs{};
  if (depth > 0) {
    if (listed && (listed->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS)) {
      attrs = *listed;
    } else if (libssh2_sftp_lstat(sftp, remote.c_str(), &attrs) != 0) {
      impl.fail_sftp("cannot read", remote);
    }
    if (LIBSSH2_SFTP_S_ISLNK(attrs.permissions)) {
      if (libssh2_sftp_stat(sftp, remote.c_str(), &attrs) != 0 ||
          !LIBSSH2_SFTP_S_ISREG(attrs.permissions)) {
        util::warn("skipping '" + remote + "': a symbolic link that is not to a regular file");
        return;
      }
    }
  } else if (libssh2_sftp_stat(sftp, remote.c_str(), &attrs) != 0) {
    impl.fail_sftp("cannot read", remote);
  }
  unsigned mode = static_cast<unsigned>(attrs.permissions) & 07777;
  if (LIBSSH2_SFTP_S_ISREG(attrs.permissions)) {
    download_file(impl, remote, local, mode,
                  (attrs.flags & LIBSSH2_SFTP_ATTR_SIZE) ? attrs.filesize : 0);
    return;
  }
  if (!LIBSSH2_SFTP_S_ISDIR(attrs.permissions)) {
    util::warn("skipping '" + remote + "': not a regular file or directory");
    return;
  }
  if (!recursive) {
    throw SshError(Stage::sftp, impl.subject, "'" + remote + "' is a directory", "",
                   "copy directories recursively (-r)");
  }
  if (depth >= k_max_download_depth) {
    throw SshError(Stage::sftp, impl.subject, "cannot copy '" + remote + "'",
                   "more than " + std::to_string(k_max_download_depth) + " directory levels",
                   "copy a deeper part of the tree on its own");
  }
  std::error_code ec;
  std::filesystem::create_directory(local, ec);
  if (ec || !std::filesystem::is_directory(local)) {
    errno = ec ? ec.value() : ENOTDIR;
    fail_local(impl.subject, "cannot create the directory", local);
  }
  std::filesystem::permissions(local, static_cast<std::filesystem::perms>(mode | 0700), ec);
  for (const Listed& entry : list_remote_dir(impl, remote)) {
    download_tree(impl, join_remote(remote, entry.name), local / entry.name, true, depth + 1,
                  &entry.attrs);
  }
  std::filesystem::permissions(local, static_cast<std::filesystem::perms>(mode), ec);
}

}  // namespace

void Session::upload(const std::string& remote_path, std::string_view content, unsigned mode) {
  util::debug(m_impl->subject + ": upload " + remote_path);
  SftpHandlePtr handle = open_for_write(*m_impl, remote_path, mode);
  write_all(*m_impl, handle.get(), content.data(), content.size(), remote_path);
  finish_write(*m_impl, std::move(handle), mode, remote_path);
}

void Session::on_transfer(std::function<void(std::uint64_t bytes)> count) {
  m_impl->transferred = std::move(count);
}

void Session::upload_path(const std::filesystem::path& local, const std::string& remote,
                          bool recursive) {
  util::debug(m_impl->subject + ": upload " + local.string() + " -> " + remote);
  upload_tree(*m_impl, local, remote, recursive);
}

void Session::download_path(const std::string& remote, const std::filesystem::path& local,
                            bool recursive) {
  util::debug(m_impl->subject + ": download " + remote + " -> " + local.string());
  download_tree(*m_impl, remote, local, recursive);
}

}  // namespace gm::ssh
