#include "provision/mirrors.h"

#include "gm/error.h"

#include <algorithm>
#include <array>
#include <utility>

namespace gm::provision {

namespace {

struct MirrorField {
  std::string Mirrors::*field;
  std::string_view flag;
  std::string_view json_key;
  std::string_view env;  ///< GM_<env>_REPO and GM_<env>_UPSTREAM.
  std::string_view upstream;
};
constexpr std::array k_fields = {
    MirrorField{&Mirrors::docker, "--docker-mirror", "docker_mirror", "DOCKER", k_docker_upstream},
    MirrorField{&Mirrors::cuda, "--cuda-mirror", "cuda_mirror", "CUDA", k_cuda_upstream},
    MirrorField{&Mirrors::toolkit, "--toolkit-mirror", "toolkit_mirror", "TOOLKIT",
                k_toolkit_upstream},
};

// What a URL may hold here: RFC 3986 unreserved characters plus the path, port and
// percent-encoding delimiters. Leaves out '@' (credentials), '#', '?', '&', quotes, spaces,
// '$', '`', '\', '|' and ';': none has a use in a repository base, all are special to a shell,
// to sed or to apt's sources lines.
bool allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~:/%+=,").find(c) != std::string_view::npos;
}

}  // namespace

std::string check_mirror_url(std::string_view flag, std::string_view url) {
  const std::string subject = std::string(flag) + " " + std::string(url);
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    throw UsageError(
        subject, "a mirror is an http:// or https:// URL",
        "e.g. " + std::string(flag) + " https://artifactory.example.com/artifactory/docker-remote");
  }
  if (url.find('@') != std::string_view::npos) {
    // The subject leaves the URL out: it would show the credentials.
    throw UsageError(std::string(flag),
                     "credentials in a mirror URL would be stored with the machine and logged",
                     "give the URL without them and put the login in the host's "
                     "/etc/apt/auth.conf.d/ (apt) or the repository file (dnf)");
  }
  if (auto bad = std::find_if_not(url.begin(), url.end(), allowed); bad != url.end()) {
    throw UsageError(subject, std::string("the character '") + *bad + "' is not allowed here",
                     "percent-encode it (e.g. %20 for a space)");
  }
  if (rest.empty() || rest.front() == '/') {
    throw UsageError(subject, "the URL names no host",
                     "e.g. https://nexus.example.com/repository/x");
  }
  std::string out(url);
  while (out.ends_with('/')) {
    out.pop_back();
  }
  return out;
}

Mirrors checked_mirrors(const Mirrors& mirrors) {
  Mirrors out;
  for (const MirrorField& f : k_fields) {
    if (!(mirrors.*f.field).empty()) {
      out.*f.field = check_mirror_url(f.flag, mirrors.*f.field);
    }
  }
  return out;
}

void add_mirror_env(const Mirrors& mirrors, std::map<std::string, std::string>& env) {
  for (const MirrorField& f : k_fields) {
    const std::string& mirror = mirrors.*f.field;
    const std::string prefix = "GM_" + std::string(f.env);
    env[prefix + "_REPO"] = mirror.empty() ? std::string(f.upstream) : mirror;
    env[prefix + "_UPSTREAM"] = std::string(f.upstream);
  }
}

void mirrors_to_json(const Mirrors& mirrors, nlohmann::json& doc) {
  for (const MirrorField& f : k_fields) {
    if (!(mirrors.*f.field).empty()) {
      doc[std::string(f.json_key)] = mirrors.*f.field;
    }
  }
}

Mirrors mirrors_from_json(const nlohmann::json& doc) {
  Mirrors out;
  if (!doc.is_object()) {
    return out;
  }
  for (const MirrorField& f : k_fields) {
    if (auto it = doc.find(std::string(f.json_key)); it != doc.end() && it->is_string()) {
      out.*f.field = it->get<std::string>();
    }
  }
  return out;
}

}  // namespace gm::provision
