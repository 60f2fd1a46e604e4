// File helpers: whole-file reads and durable atomic writes (temp file, fsync, rename, fsync dir).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace gm::util {

/// The whole file; throws gm::Error naming the path and errno text on failure.
std::string read_file(const std::filesystem::path& path);
/// The whole file, or nullopt when it does not exist.
std::optional<std::string> try_read_file(const std::filesystem::path& path);
/// Writes content durably and atomically with the given mode: a reader sees the old or the new
/// file, never a mix, and a crash never leaves a truncated file behind.
void write_file_atomic(const std::filesystem::path& path, std::string_view content,
                       unsigned mode = 0600);
/// Creates the directory and missing parents with mode 0700 (parents too when created here).
void make_private_dir(const std::filesystem::path& dir);
/// fsync() of a directory, so a rename or unlink in it survives a crash.
void sync_dir(const std::filesystem::path& dir);
/// "~" and "~/x" expanded with $HOME.
std::filesystem::path expand_user(std::string_view path);

}  // namespace gm::util
