#include "drivers/cloud_init.h"

#include <sstream>

namespace gm::drivers {

namespace {

std::string indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    out += prefix + line + "\n";
  }
  return out;
}

/// cloud-init picks a part handler by Content-Type; these are the ones it knows for the
/// "#..." first lines users write.
std::string content_type_of(const std::string& doc) {
  if (doc.starts_with("#!")) {
    return "text/x-shellscript";
  }
  if (doc.starts_with("#cloud-config")) {
    return "text/cloud-config";
  }
  if (doc.starts_with("#cloud-boothook")) {
    return "text/cloud-boothook";
  }
  if (doc.starts_with("#include")) {
    return "text/x-include-url";
  }
  return "text/plain";
}

}  // namespace

std::string cloud_config(const UserDataParts& parts) {
  std::string out = "#cloud-config\n";
  // Replace whatever keys the image baked in with ours, so the pinned key is the only one.
  // cloud-init generates only the listed types whose key file is missing: ours is already there.
  // (An empty list is what is meant, but cloud-init's schema rejects it.)
  out += "ssh_deletekeys: true\n";
  out += "ssh_genkeytypes: [ed25519]\n";
  out += "ssh_keys:\n";
  out += "  ed25519_private: |\n" + indent(parts.host_private_key, "    ");
  out += "  ed25519_public: " + parts.host_public_key + "\n";
  if (!parts.authorized_keys.empty()) {
    out += "ssh_authorized_keys:\n";
    for (const std::string& k : parts.authorized_keys) {
      out += "  - " + k + "\n";
    }
  }
  return out;
}

std::string render_user_data(const UserDataParts& parts) {
  std::string config = cloud_config(parts);
  if (parts.user_data.empty() && parts.provision_prelude.empty()) {
    return config;
  }
  const std::string& b = parts.boundary;
  std::string out = "Content-Type: multipart/mixed; boundary=\"" + b + "\"\nMIME-Version: 1.0\n\n";
  auto part = [&](const std::string& type, const std::string& body) {
    out += "--" + b + "\n";
    out += "Content-Type: " + type + "; charset=\"utf-8\"\nMIME-Version: 1.0\n";
    out += "Content-Transfer-Encoding: 8bit\n\n";
    out += body;
    if (!body.ends_with("\n")) {
      out += "\n";
    }
  };
  part("text/cloud-config", config);
  if (!parts.provision_prelude.empty()) {
    part("text/x-shellscript", parts.provision_prelude);
  }
  if (!parts.user_data.empty()) {
    part(content_type_of(parts.user_data), parts.user_data);
  }
  out += "--" + b + "--\n";
  return out;
}

}  // namespace gm::drivers
