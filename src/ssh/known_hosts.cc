#include "ssh/known_hosts.h"

#include "util/crypto.h"
#include "util/fs.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace gm::ssh {

namespace {

std::string host_string(std::string_view host, int port) {
  if (port == 22) {
    return std::string(host);
  }
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

// Hashed entries (ssh-keygen -H): "|1|base64(salt)|base64(HMAC-SHA1(key=salt, host string))".
bool matches_hashed(std::string_view entry, const std::string& host) {
  std::string_view rest = entry.substr(3);
  std::size_t bar = rest.find('|');
  if (bar == std::string_view::npos) {
    return false;
  }
  std::string salt;
  std::string expected;
  try {
    salt = util::base64_decode(rest.substr(0, bar));
    expected = util::base64_decode(rest.substr(bar + 1));
  } catch (const std::invalid_argument&) {
    return false;
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha1(), salt.data(), static_cast<int>(salt.size()),
           reinterpret_cast<const unsigned char*>(host.data()), host.size(), out,
           &len) == nullptr) {
    return false;
  }
  return expected == std::string_view(reinterpret_cast<char*>(out), len);
}

// OpenSSH's match_pattern: only '*' and '?' are special ('[' is literal, as in "[host]:port"),
// compared case-insensitively.
bool wildcard_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t star_text = 0;
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

// OpenSSH semantics (match_hostname): any negated pattern that matches rejects the line;
// otherwise one positive match accepts it. Patterns use * and ? wildcards, case-insensitively.
bool matches_patterns(std::string_view patterns, const std::string& host) {
  if (patterns.substr(0, 3) == "|1|") {
    return matches_hashed(patterns, host);
  }
  bool matched = false;
  std::size_t start = 0;
  while (start <= patterns.size()) {
    std::size_t comma = patterns.find(',', start);
    std::string pattern(patterns.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    bool negated = !pattern.empty() && pattern[0] == '!';
    if (negated) {
      pattern.erase(0, 1);
    }
    if (!pattern.empty() && wildcard_match(pattern, host)) {
      if (negated) {
        return false;
      }
      matched = true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  return matched;
}

std::vector<std::string> split_fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> fields;
  std::string field;
  while (in >> field) {
    fields.push_back(field);
  }
  return fields;
}

}  // namespace

KnownHost lookup_known_host(const std::filesystem::path& file, std::string_view host, int port) {
  KnownHost out;
  std::vector<std::string> plain;
  std::optional<std::string> content = util::try_read_file(file);
  if (!content) {
    return out;
  }
  const std::string wanted = host_string(host, port);
  std::istringstream lines(*content);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields = split_fields(line);
    if (fields.empty() || fields[0][0] == '#') {
      continue;
    }
    std::string marker;
    if (fields[0][0] == '@') {
      marker = fields[0];
      fields.erase(fields.begin());
    }
    if (fields.size() < 3 || !matches_patterns(fields[0], wanted)) {
      continue;
    }
    std::string key = fields[1] + " " + fields[2];
    if (marker == "@revoked") {
      out.revoked.push_back(std::move(key));
    } else if (marker == "@cert-authority") {
      out.cert_authority = true;
    } else if (marker.empty()) {
      plain.push_back(std::move(key));
    }
  }
  // A revoked key is never the known one, even when also listed plainly (OpenSSH refuses it).
  std::erase_if(plain, [&](const std::string& key) {
    return std::find(out.revoked.begin(), out.revoked.end(), key) != out.revoked.end();
  });
  auto ed25519 = std::find_if(plain.begin(), plain.end(), [](const std::string& key) {
    return key.starts_with("ssh-ed25519 ");
  });
  if (ed25519 != plain.end()) {
    out.key = *ed25519;
  } else if (!plain.empty()) {
    out.key = plain.front();
  }
  return out;
}

std::optional<std::string> find_known_host(const std::filesystem::path& file, std::string_view host,
                                           int port) {
  return lookup_known_host(file, host, port).key;
}

std::string known_hosts_line(std::string_view host, int port, std::string_view key) {
  std::size_t end = key.find_last_not_of(" \t\r\n");
  return host_string(host, port) + " " +
         std::string(key.substr(0, end == std::string_view::npos ? 0 : end + 1));
}

}  // namespace gm::ssh
