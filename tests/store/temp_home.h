// A throwaway gpumachine home for store tests; its path holds a space so quoting is exercised.
#pragma once

#include "gm/machine.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace gm::store::testing {

/// Creates a fresh temporary directory and removes it (recursively) when destroyed.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gm store-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    m_path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The directory itself.
  const std::filesystem::path& path() const { return m_path; }
  /// A gpumachine home inside it that does not exist yet.
  std::filesystem::path home() const { return m_path / "home dir" / ".gpumachine"; }

 private:
  std::filesystem::path m_path;
};

/// Permission bits of a path (stat, following links).
inline unsigned mode_of(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return 0xffffffffU;
  }
  return st.st_mode & 07777;
}

/// A record with every field filled, as a created EC2 machine would have.
inline MachineRecord full_record(const std::string& name, const std::string& host) {
  MachineRecord r;
  r.name = name;
  r.id = "3f2b8c1e-0d4a-4c55-9a57-" +
         std::string(12 - std::min<std::size_t>(12, name.size()), '0') + name.substr(0, 12);
  r.driver = "ec2";
  r.size = {.region = "us-east-1", .instance_type = "g5.xlarge", .spot = false};
  r.driver_config = {{"instance_id", "i-0123456789abcdef0"}};
  r.ssh.host = host;
  r.ssh.port = 2222;
  r.ssh.user = "ubuntu";
  r.ssh.key_path = "/keys/" + name + "/id_ed25519";
  r.ssh.host_key =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmN0xd0uYgnCpa9H3Lj8bSUBLEMVfYrW1TbnQ1nN2iQ";
  r.resources = {{"key-pair", "gm-" + name, "us-east-1", "created"},
                 {"instance", "i-0123456789abcdef0", "us-east-1", "creating"}};
  r.facts = {
      {"os", "ubuntu 22.04"}, {"cpus", 4}, {"gpus", {{{"model", "A10G"}, {"memory_mib", 23028}}}}};
  r.timings = {{"launch", 31.5}, {"ssh", 12.0}};
  r.last_state = "running";
  return r;
}

}  // namespace gm::store::testing
