#include "aws/query.h"

#include <algorithm>
#include <charconv>

#include "aws/sigv4.h"

namespace gm::aws {

std::string member(std::string_view prefix, int index, std::string_view suffix) {
  std::string out(prefix);
  out += '.';
  out += std::to_string(index);
  if (!suffix.empty()) {
    out += '.';
    out += suffix;
  }
  return out;
}

QueryParams& QueryParams::set(std::string_view name, std::string_view value) {
  for (auto& [key, existing] : m_items) {
    if (key == name) {
      existing = std::string(value);
      return *this;
    }
  }
  m_items.emplace_back(std::string(name), std::string(value));
  return *this;
}

QueryParams& QueryParams::set(std::string_view name, bool value) {
  return set(name, std::string_view(value ? "true" : "false"));
}

QueryParams& QueryParams::set(std::string_view name, std::int64_t value) {
  return set(name, std::string_view(std::to_string(value)));
}

QueryParams& QueryParams::set_list(std::string_view prefix,
                                   const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    set(member(prefix, static_cast<int>(i + 1)), std::string_view(values[i]));
  }
  return *this;
}

int QueryParams::next_index(std::string_view prefix) const {
  int highest = 0;
  std::string head = std::string(prefix) + ".";
  for (const auto& [key, value] : m_items) {
    if (key.rfind(head, 0) != 0) {
      continue;
    }
    std::string_view rest = std::string_view(key).substr(head.size());
    int n = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec == std::errc{} && (ptr == rest.data() + rest.size() || *ptr == '.')) {
      highest = std::max(highest, n);
    }
  }
  return highest + 1;
}

QueryParams& QueryParams::add_filter(std::string_view name,
                                     const std::vector<std::string>& values) {
  int n = next_index("Filter");
  set(member("Filter", n, "Name"), name);
  set_list(member("Filter", n, "Value"), values);
  return *this;
}

QueryParams& QueryParams::add_tag_specification(
    std::string_view resource_type, const std::vector<std::pair<std::string, std::string>>& tags) {
  int n = next_index("TagSpecification");
  set(member("TagSpecification", n, "ResourceType"), resource_type);
  std::string tag_prefix = member("TagSpecification", n, "Tag");
  for (std::size_t i = 0; i < tags.size(); ++i) {
    int m = static_cast<int>(i + 1);
    set(member(tag_prefix, m, "Key"), std::string_view(tags[i].first));
    set(member(tag_prefix, m, "Value"), std::string_view(tags[i].second));
  }
  return *this;
}

const std::string* QueryParams::find(std::string_view name) const {
  for (const auto& [key, value] : m_items) {
    if (key == name) {
      return &value;
    }
  }
  return nullptr;
}

std::string encode_query_body(std::string_view action, std::string_view version,
                              const QueryParams& params) {
  // Strict RFC 3986 encoding: '+' must become %2B because the server form-decodes '+' as a
  // space; space itself is written %20, which form decoding accepts too.
  std::string out = "Action=" + uri_encode(action) + "&Version=" + uri_encode(version);
  for (const auto& [key, value] : params.items()) {
    out += '&';
    out += uri_encode(key);
    out += '=';
    out += uri_encode(value);
  }
  return out;
}

}  // namespace gm::aws
