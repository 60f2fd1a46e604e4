// Differential test: hundreds of randomized requests signed by our signer and by Debian's
// python3-botocore (tests/support/sigv4_oracle.py, one python3 process for the whole batch).
// The Authorization values must be identical.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "aws/credentials.h"
#include "aws/query.h"
#include "aws/sigv4.h"
#include "http/url.h"
#include "util/crypto.h"
#include "util/fs.h"
#include "util/time.h"

namespace gm::aws {
namespace {

namespace fs = std::filesystem;

constexpr int k_cases = 600;
constexpr unsigned k_seed = 20261122;

// Debian's interpreter carries Debian's botocore; a pyenv shim earlier on PATH may not.
std::string python() {
  return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

bool has_botocore() {
  std::string cmd = python() + " -c 'import botocore' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

std::string utf8(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

class Generator {
 public:
  explicit Generator(unsigned seed) : m_rng(seed) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(m_rng); }
  bool chance(int percent) { return pick(100) < percent; }
  template <class T>
  const T& one_of(const std::vector<T>& items) {
    return items[static_cast<std::size_t>(pick(static_cast<int>(items.size())))];
  }

  // Text mixing unreserved, reserved, space, '%' and multi-byte characters.
  std::string text(int max_len, const std::string& ascii_extra) {
    static const std::vector<char32_t> k_unicode = {0xE9, 0x1234, 0x4E2D, 0x1F600, 0x00FC, 0x3A9};
    std::string alphabet = "abcXYZ019-_.~" + ascii_extra;
    std::string out;
    int len = pick(max_len + 1);
    for (int i = 0; i < len; ++i) {
      if (chance(12)) {
        out += utf8(one_of(k_unicode));
      } else {
        out += alphabet[static_cast<std::size_t>(pick(static_cast<int>(alphabet.size())))];
      }
    }
    return out;
  }

  std::string path() {
    if (chance(5)) {
      return "";
    }
    std::string out;
    int segments = pick(5);
    for (int i = 0; i < segments; ++i) {
      out += '/';
      int kind = pick(10);
      if (kind == 0) {
        out += ".";
      } else if (kind == 1) {
        out += "..";
      } else if (kind == 2) {
        // empty segment: "//"
      } else {
        // No '?', '#', brackets or control characters: they would end or break the URL path.
        out += text(8, " !$&'()*+,;=:@%\"<>{}|^`");
      }
    }
    if (out.empty() || chance(30)) {
      out += '/';
    }
    return out;
  }

  std::string header_value() {
    std::string alphabet = "abcXYZ 019\t-_.;,=/\"'()";
    std::string out;
    int len = pick(12);
    for (int i = 0; i < len; ++i) {
      out += alphabet[static_cast<std::size_t>(pick(static_cast<int>(alphabet.size())))];
    }
    if (chance(30)) {
      out = "   " + out + "  ";
    }
    return out;
  }

  std::string header_name() {
    static const std::vector<std::string> k_fixed = {
        "Content-Type", "X-Amz-Target", "User-Agent", "Expect", "X-Amz-Meta-Thing", "My-Header"};
    if (chance(40)) {
      return one_of(k_fixed);
    }
    std::string alphabet = "abcdxyzABCDXYZ0189-";
    std::string out = "X-";
    int len = 1 + pick(8);
    for (int i = 0; i < len; ++i) {
      out += alphabet[static_cast<std::size_t>(pick(static_cast<int>(alphabet.size())))];
    }
    return out;
  }

 private:
  std::mt19937 m_rng;
};

struct TestCase {
  nlohmann::json json;
  SignableRequest request;
  Credentials credentials;
  std::string region;
  std::string service;
};

TestCase make_case(Generator& gen) {
  static const std::vector<std::string> k_hosts = {"https://ec2.us-east-1.amazonaws.com",
                                                   "https://EC2.eu-west-1.AmazonAWS.com",
                                                   "https://example.amazonaws.com:443",
                                                   "https://example.amazonaws.com:8443",
                                                   "http://127.0.0.1:8080",
                                                   "http://localhost:80",
                                                   "https://sts.ap-southeast-2.amazonaws.com"};
  static const std::vector<std::string> k_methods = {"GET", "POST", "PUT", "DELETE", "POST"};
  static const std::vector<std::string> k_regions = {"us-east-1", "eu-central-1", "sa-east-1",
                                                     "cn-north-1"};
  static const std::vector<std::string> k_services = {"ec2", "ssm", "sts", "service"};

  TestCase c;
  std::string url = gen.one_of(k_hosts) + gen.path();
  c.request.method = gen.one_of(k_methods);
  http::Url parsed = http::parse_url(url);
  c.request.path = parsed.path;
  c.request.host = parsed.authority();

  int n_params = gen.chance(50) ? gen.pick(6) : 0;
  for (int i = 0; i < n_params; ++i) {
    std::string key = gen.chance(20) && !c.request.query.empty() ? c.request.query.back().first
                                                                 : gen.text(6, " &=+%/?#");
    if (key.empty()) {
      key = "k";
    }
    c.request.query.emplace_back(key, gen.chance(15) ? "" : gen.text(10, " &=+%/?#:@"));
  }

  int n_headers = gen.pick(6);
  for (int i = 0; i < n_headers; ++i) {
    std::string name = gen.chance(20) && !c.request.headers.empty()
                           ? c.request.headers.back().first  // a repeat, maybe cased differently
                           : gen.header_name();
    if (gen.chance(30)) {
      for (char& ch : name) {
        ch = static_cast<char>(gen.chance(50) ? std::tolower(ch) : std::toupper(ch));
      }
    }
    c.request.headers.emplace_back(name, gen.header_value());
  }
  if (gen.chance(15)) {
    c.request.headers.emplace_back("Host", "example.amazonaws.com:9000");
  }

  switch (gen.pick(4)) {
    case 0:
      break;  // empty body
    case 1: {
      QueryParams params;
      params.set("ImageId", "ami-0123")
          .set("MinCount", 1)
          .set_list("SecurityGroupId", {"sg-1", gen.text(6, " +/")});
      params.add_tag_specification("instance", {{"Name", gen.text(10, " +&=")}});
      c.request.payload = encode_query_body("RunInstances", "2016-11-15", params);
      c.request.headers.emplace_back("Content-Type",
                                     "application/x-www-form-urlencoded; charset=utf-8");
      break;
    }
    case 2:
      c.request.payload = R"({"Name":")" + gen.text(20, " /") + R"("})";
      break;
    default:
      c.request.payload = util::random_bytes(static_cast<std::size_t>(gen.pick(64)));
      break;
  }

  c.credentials.access_key_id = "AKID" + gen.text(8, "");
  c.credentials.secret_access_key = "secret/" + gen.text(20, "+/=");
  if (gen.chance(50)) {
    c.credentials.session_token = "IQoJ" + gen.text(30, "+/=");
  }
  c.region = gen.one_of(k_regions);
  c.service = gen.one_of(k_services);

  nlohmann::json headers = nlohmann::json::array();
  for (const auto& [name, value] : c.request.headers) {
    headers.push_back({name, value});
  }
  nlohmann::json params = nlohmann::json::array();
  for (const auto& [key, value] : c.request.query) {
    params.push_back({key, value});
  }
  c.json = {{"method", c.request.method},
            {"url", url},
            {"headers", headers},
            {"params", params},
            {"body_b64", util::base64_encode(c.request.payload)},
            {"access_key", c.credentials.access_key_id},
            {"secret_key", c.credentials.secret_access_key},
            {"token", c.credentials.session_token},
            {"region", c.region},
            {"service", c.service},
            {"timestamp", "20260102T030405Z"}};
  return c;
}

TEST(Sigv4Differential, MatchesBotocoreOnRandomizedRequests) {
  if (!has_botocore()) {
    GTEST_SKIP() << python() << " cannot import botocore (apt-get install python3-botocore)";
  }
  char dir_template[] = "/tmp/gm-sigv4-diff-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  fs::path dir = dir_template;

  Generator gen(k_seed);
  std::vector<TestCase> cases;
  std::string input;
  for (int i = 0; i < k_cases; ++i) {
    cases.push_back(make_case(gen));
    input += cases.back().json.dump() + "\n";
  }
  util::write_file_atomic(dir / "in.jsonl", input);
  std::string cmd = python() + " " GM_SOURCE_DIR "/tests/support/sigv4_oracle.py < " +
                    (dir / "in.jsonl").string() + " > " + (dir / "out.jsonl").string();
  int rc = std::system(cmd.c_str());
  std::string output = util::try_read_file(dir / "out.jsonl").value_or("");
  fs::remove_all(dir);
  ASSERT_EQ(rc, 0) << "oracle failed: " << cmd;

  std::istringstream lines(output);
  std::string line;
  auto time = *util::parse_rfc3339("2026-01-02T03:04:05Z");
  int compared = 0;
  int mismatches = 0;
  for (TestCase& c : cases) {
    ASSERT_TRUE(std::getline(lines, line)) << "oracle answered only " << compared << " cases";
    nlohmann::json expected = nlohmann::json::parse(line);
    SigningResult ours = sign(c.request, c.credentials, c.region, c.service, time);
    ++compared;
    if (ours.authorization != expected["authorization"].get<std::string>()) {
      if (++mismatches <= 3) {
        ADD_FAILURE() << "case " << compared << ": " << c.json.dump() << "\nours:\n"
                      << ours.canonical_request << "\nbotocore:\n"
                      << expected["canonical_request"].get<std::string>();
      }
    }
  }
  EXPECT_EQ(compared, k_cases);
  EXPECT_EQ(mismatches, 0) << "of " << compared;
}

}  // namespace
}  // namespace gm::aws
