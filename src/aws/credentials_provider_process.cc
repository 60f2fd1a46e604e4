// credential_process: an external command prints credentials as JSON (Version 1) on stdout.
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-process-credentials.html
#include <sys/wait.h>

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "aws/credentials.h"
#include "gm/error.h"
#include "util/log.h"
#include "util/time.h"

namespace gm::aws {

namespace {
struct PipeCloser {
  void operator()(FILE* f) const {
    if (f != nullptr) {
      pclose(f);
    }
  }
};
}  // namespace

Credentials run_credential_process(const std::string& command, const std::string& subject) {
  const std::string hint = "run the credential_process command by hand to see what it prints";
  // stderr is left on the terminal: such commands prompt there (MFA codes, SSO logins).
  std::unique_ptr<FILE, PipeCloser> pipe(popen(command.c_str(), "r"));
  if (!pipe) {
    throw Error(subject, "credential_process could not be started", command, hint);
  }
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) {
    output.append(buffer, n);
  }
  int status = pclose(pipe.release());
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status)
                          ? "exited with status " + std::to_string(WEXITSTATUS(status))
                          : "did not exit normally";
    throw Error(subject, "credential_process " + how, command, hint);
  }
  // The output holds the secret: never quote it in an error.
  nlohmann::json doc = nlohmann::json::parse(output, nullptr, false);
  auto string_field = [&](const char* key) -> std::string {
    if (doc.is_object() && doc.contains(key) && doc[key].is_string()) {
      return doc[key].get<std::string>();
    }
    return {};
  };
  if (!doc.is_object()) {
    throw Error(subject, "credential_process printed something that is not JSON", command, hint);
  }
  if (!doc.contains("Version") || doc["Version"] != 1) {
    throw Error(subject, "credential_process output has no \"Version\": 1", command, hint);
  }
  Credentials out;
  out.secret_access_key = string_field("SecretAccessKey");
  util::add_secret(out.secret_access_key);
  out.access_key_id = string_field("AccessKeyId");
  out.session_token = string_field("SessionToken");
  util::add_secret(out.session_token);
  if (out.access_key_id.empty() || out.secret_access_key.empty()) {
    throw Error(subject, "credential_process output lacks AccessKeyId or SecretAccessKey", command,
                hint);
  }
  if (std::string expiration = string_field("Expiration"); !expiration.empty()) {
    out.expiration = util::parse_rfc3339(expiration);
    if (!out.expiration) {
      throw Error(subject, "credential_process output has a malformed Expiration", expiration,
                  hint);
    }
  }
  out.source = subject + " (credential_process)";
  return out;
}

}  // namespace gm::aws
