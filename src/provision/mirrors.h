// Repository mirrors: base URLs that replace Docker's and NVIDIA's package repositories (an
// enterprise Artifactory or Nexus, or a test's loopback repository). The scripts get the URL to
// fetch from and the vendor's URL it stands for, and rewrite the vendor's sources files to it.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>

namespace gm::provision {

/// The vendors' repository bases; a mirror replaces exactly this prefix.
inline constexpr std::string_view k_docker_upstream = "https://download.docker.com/linux";
inline constexpr std::string_view k_cuda_upstream =
    "https://developer.download.nvidia.com/compute/cuda/repos";
inline constexpr std::string_view k_toolkit_upstream =
    "https://nvidia.github.io/libnvidia-container";

/// Mirror base URLs (validated, no trailing slash); empty: the vendor's repository.
struct Mirrors {
  std::string docker;   ///< Stands for k_docker_upstream (`--docker-mirror`).
  std::string cuda;     ///< Stands for k_cuda_upstream (`--cuda-mirror`).
  std::string toolkit;  ///< Stands for k_toolkit_upstream (`--toolkit-mirror`).

  bool empty() const { return docker.empty() && cuda.empty() && toolkit.empty(); }
  bool operator==(const Mirrors&) const = default;
};

/// \a url without its trailing slashes, when it is an http(s) URL the scripts can use as it is:
/// no credentials (they would be stored and logged), nothing a shell or sed treats specially.
/// Throws UsageError with \a flag ("--docker-mirror") as the subject otherwise.
std::string check_mirror_url(std::string_view flag, std::string_view url);

/// Each mirror checked and trimmed with check_mirror_url (throws UsageError).
Mirrors checked_mirrors(const Mirrors& mirrors);

/// GM_DOCKER_REPO, GM_CUDA_REPO, GM_TOOLKIT_REPO (the mirror, else the vendor's base) and
/// GM_*_UPSTREAM (the vendor's base, which the scripts rewrite in the sources files they get).
void add_mirror_env(const Mirrors& mirrors, std::map<std::string, std::string>& env);

/// The mirrors into \a doc as docker_mirror, cuda_mirror, toolkit_mirror (unset ones left out).
void mirrors_to_json(const Mirrors& mirrors, nlohmann::json& doc);
/// The inverse; what is missing or not a string stays empty.
Mirrors mirrors_from_json(const nlohmann::json& doc);

}  // namespace gm::provision
