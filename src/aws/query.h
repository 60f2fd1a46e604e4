// The AWS Query protocol's form body (EC2, STS): "Action=X&Version=Y&Name=value&...", with lists
// flattened as "Name.N" (1-based) and nested members joined with '.', e.g.
// "TagSpecification.1.Tag.2.Key". Keys and values are RFC 3986 percent-encoded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gm::aws {

/// Builds the parameters of one Query API call, in insertion order.
class QueryParams {
 public:
  /// Sets \a name (replacing an earlier value of the same name).
  QueryParams& set(std::string_view name, std::string_view value);
  QueryParams& set(std::string_view name, const char* value) {
    return set(name, std::string_view(value));
  }
  /// "true" / "false".
  QueryParams& set(std::string_view name, bool value);
  /// Decimal.
  QueryParams& set(std::string_view name, std::int64_t value);
  QueryParams& set(std::string_view name, int value) {
    return set(name, static_cast<std::int64_t>(value));
  }
  /// "Prefix.1=v1&Prefix.2=v2..." (nothing for an empty list).
  QueryParams& set_list(std::string_view prefix, const std::vector<std::string>& values);
  /// Appends "Filter.N.Name=name" and "Filter.N.Value.M=value" for the next free N.
  QueryParams& add_filter(std::string_view name, const std::vector<std::string>& values);
  /// Appends "TagSpecification.N.ResourceType" and ".Tag.M.Key/.Value" for the next free N.
  QueryParams& add_tag_specification(std::string_view resource_type,
                                     const std::vector<std::pair<std::string, std::string>>& tags);
  /// Next unused index N for "Prefix.N..." (1 if none yet): for building other nested lists.
  int next_index(std::string_view prefix) const;

  /// Value of \a name, or nullptr.
  const std::string* find(std::string_view name) const;
  /// All parameters in order.
  const std::vector<std::pair<std::string, std::string>>& items() const { return m_items; }

 private:
  std::vector<std::pair<std::string, std::string>> m_items;
};

/// "Prefix.N" or "Prefix.N.Suffix".
std::string member(std::string_view prefix, int index, std::string_view suffix = {});

/// The form body "Action=...&Version=...&k=v...", each part percent-encoded (space as %20).
std::string encode_query_body(std::string_view action, std::string_view version,
                              const QueryParams& params);

}  // namespace gm::aws
