#include "aws/sigv4.h"

#include <algorithm>
#include <cctype>

#include "aws/credentials.h"
#include "util/crypto.h"
#include "util/time.h"

namespace gm::aws {

namespace {

constexpr std::string_view k_algorithm = "AWS4-HMAC-SHA256";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~';
}

// Headers a proxy or the HTTP library may rewrite in flight; signing them would break requests
// for no security gain, so they are left out (the same list botocore keeps).
bool is_unsigned_header(std::string_view lowercase_name) {
  return lowercase_name == "authorization" || lowercase_name == "user-agent" ||
         lowercase_name == "expect" || lowercase_name == "x-amzn-trace-id";
}

// Trimall from the spec: strip the ends and fold runs of whitespace into one space. Quotes get
// no special treatment (vector get-header-value-trim).
std::string trim_all(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    out += c;
  }
  return out;
}

// name -> values in order of appearance, sorted by name. A stable, name-only order keeps
// repeated headers in wire order, which the spec requires (vector get-header-value-order).
std::vector<std::pair<std::string, std::vector<std::string>>> signable_headers(
    const SignableRequest& request) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& [name, value] : request.headers) {
    std::string key = lower(trim_all(name));
    if (is_unsigned_header(key)) {
      continue;
    }
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == key; });
    if (it == out.end()) {
      out.emplace_back(key, std::vector<std::string>{});
      it = out.end() - 1;
    }
    // A value folded over several lines (obs-fold: a line break followed by whitespace) holds
    // one value per line, as AWS's suite reads it (vector get-header-value-multiline gives
    // "value1,value2,value3").
    std::size_t start = 0;
    while (start <= value.size()) {
      std::size_t end = value.find('\n', start);
      std::string line = trim_all(std::string_view(value).substr(
          start, end == std::string::npos ? std::string::npos : end - start));
      if (!line.empty() || start == 0) {
        it->second.push_back(std::move(line));
      }
      if (end == std::string::npos) {
        break;
      }
      start = end + 1;
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

bool has_header(const Pairs& headers, std::string_view lowercase_name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return lower(h.first) == lowercase_name; });
}

void remove_header(Pairs& headers, std::string_view lowercase_name) {
  std::erase_if(headers, [&](const auto& h) { return lower(h.first) == lowercase_name; });
}

}  // namespace

std::string uri_encode(std::string_view bytes, bool keep_slash) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 3);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += k_hex[c >> 4];
      out += k_hex[c & 0xF];
    }
  }
  return out;
}

std::string uri_decode(std::string_view text) {
  auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

Pairs parse_query(std::string_view raw) {
  Pairs out;
  while (!raw.empty()) {
    std::size_t amp = raw.find('&');
    std::string_view pair = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view{} : raw.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(uri_decode(pair), "");
    } else {
      out.emplace_back(uri_decode(pair.substr(0, eq)), uri_decode(pair.substr(eq + 1)));
    }
  }
  return out;
}

std::string normalize_path(std::string_view path) {
  if (path.empty()) {
    return "/";
  }
  // RFC 3986 5.2.4 on segments, where empty segments are dropped too: AWS merges "//" for
  // every service but S3 (vectors normalize-path/get-slashes and get-slash).
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    std::string_view seg =
        path.substr(start, slash == std::string_view::npos ? path.npos : slash - start);
    if (seg == "..") {
      if (!segments.empty()) {
        segments.pop_back();
      }
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  std::string out = path.front() == '/' ? "/" : "";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) {
      out += '/';
    }
    out += segments[i];
  }
  // A trailing slash survives only when something is left before it ("/example/" stays,
  // "/./" and "/example/.." become "/").
  if (path.back() == '/' && !segments.empty()) {
    out += '/';
  }
  return out.empty() ? "/" : out;
}

std::string canonical_uri(std::string_view path, bool normalize) {
  std::string p = normalize ? normalize_path(path) : std::string(path.empty() ? "/" : path);
  return uri_encode(p, /*keep_slash=*/true);
}

std::string canonical_query_string(const Pairs& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [key, value] : query) {
    encoded.emplace_back(uri_encode(key), uri_encode(value));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [key, value] : encoded) {
    if (!out.empty()) {
      out += '&';
    }
    out += key;
    out += '=';
    out += value;
  }
  return out;
}

std::string signed_headers(const SignableRequest& request) {
  std::string out;
  for (const auto& [name, values] : signable_headers(request)) {
    if (!out.empty()) {
      out += ';';
    }
    out += name;
  }
  return out;
}

std::string canonical_request(const SignableRequest& request, const SigningOptions& options) {
  std::string out;
  out += request.method;
  out += '\n';
  out += canonical_uri(request.path, options.normalize_path);
  out += '\n';
  out += canonical_query_string(request.query);
  out += '\n';
  for (const auto& [name, values] : signable_headers(request)) {
    out += name;
    out += ':';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) {
        out += ',';
      }
      out += values[i];
    }
    out += '\n';
  }
  out += '\n';
  out += signed_headers(request);
  out += '\n';
  out += request.payload_hash ? *request.payload_hash : util::hex(util::sha256(request.payload));
  return out;
}

std::string credential_scope(std::chrono::system_clock::time_point time, std::string_view region,
                             std::string_view service) {
  std::string date = util::amz_date(time).substr(0, 8);
  return date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
}

std::string string_to_sign(std::string_view canonical_request,
                           std::chrono::system_clock::time_point time, std::string_view scope) {
  std::string out(k_algorithm);
  out += '\n';
  out += util::amz_date(time);
  out += '\n';
  out += scope;
  out += '\n';
  out += util::hex(util::sha256(canonical_request));
  return out;
}

std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service) {
  std::string k_date = util::hmac_sha256("AWS4" + std::string(secret), date);
  std::string k_region = util::hmac_sha256(k_date, region);
  std::string k_service = util::hmac_sha256(k_region, service);
  return util::hmac_sha256(k_service, "aws4_request");
}

std::string signature(std::string_view signing_key, std::string_view string_to_sign) {
  return util::hex(util::hmac_sha256(signing_key, string_to_sign));
}

std::string authorization_header(std::string_view access_key_id, std::string_view scope,
                                 std::string_view signed_headers, std::string_view signature) {
  std::string out(k_algorithm);
  out += " Credential=";
  out += access_key_id;
  out += '/';
  out += scope;
  out += ", SignedHeaders=";
  out += signed_headers;
  out += ", Signature=";
  out += signature;
  return out;
}

SigningResult sign(SignableRequest& request, const Credentials& credentials,
                   std::string_view region, std::string_view service,
                   std::chrono::system_clock::time_point time, const SigningOptions& options) {
  // A retry re-signs the same request: drop what an earlier signing added.
  remove_header(request.headers, "authorization");
  remove_header(request.headers, "x-amz-date");
  request.headers.emplace_back("X-Amz-Date", util::amz_date(time));
  if (!has_header(request.headers, "host") && !request.host.empty()) {
    request.headers.emplace_back("Host", request.host);
  }
  bool add_token_after = false;
  if (!credentials.session_token.empty()) {
    remove_header(request.headers, "x-amz-security-token");
    if (options.omit_session_token_from_signature) {
      add_token_after = true;
    } else {
      request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
    }
  }
  if (options.add_content_sha256_header) {
    remove_header(request.headers, "x-amz-content-sha256");
    request.headers.emplace_back(
        "X-Amz-Content-SHA256",
        request.payload_hash ? *request.payload_hash : util::hex(util::sha256(request.payload)));
  }

  SigningResult result;
  result.canonical_request = canonical_request(request, options);
  std::string scope = credential_scope(time, region, service);
  result.string_to_sign = string_to_sign(result.canonical_request, time, scope);
  std::string key = signing_key(credentials.secret_access_key, util::amz_date(time).substr(0, 8),
                                region, service);
  result.authorization =
      authorization_header(credentials.access_key_id, scope, signed_headers(request),
                           signature(key, result.string_to_sign));
  request.headers.emplace_back("Authorization", result.authorization);
  if (add_token_after) {
    request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  return result;
}

}  // namespace gm::aws
