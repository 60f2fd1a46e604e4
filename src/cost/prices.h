// On-demand prices (USD per hour, Linux, shared tenancy) per region and instance type: a table
// embedded in the binary (src/cost/prices.json, with its source and date), overridden entry by
// entry by a cached copy refreshed from the AWS Price List API (<home>/prices.json). Everything
// here but refresh_prices() is offline, so `create --max-price-per-hour` can refuse before any
// call.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::aws {
class AwsClient;
}

namespace gm::cost {

/// A price table: region -> instance type -> USD per hour, with where it came from.
struct PriceTable {
  std::string origin;  ///< "embedded" or "cache".
  std::string as_of;   ///< Date (or RFC 3339 time) the prices were valid, "2025-08-01".
  std::string source;  ///< One line on how the numbers were obtained.
  std::map<std::string, std::map<std::string, double>> regions;

  /// The price of that type in that region, or nullopt.
  std::optional<double> find(std::string_view instance_type, std::string_view region) const;
  /// The table as the JSON document stored on disk (format 1).
  nlohmann::json to_json() const;
};

/// Parses a format-1 price document; throws gm::Error naming \a what when it is malformed.
PriceTable parse_price_table(const nlohmann::json& doc, const std::string& origin,
                             const std::string& what);

/// The table compiled into the binary.
const PriceTable& embedded_prices();

/// <home>/prices.json.
std::filesystem::path price_cache_path(const std::filesystem::path& home);

/// The cached table from `prices --refresh`, or nullopt when there is none. A corrupt cache is
/// ignored (nullopt) so a bad file never breaks `ls` or `create`.
std::optional<PriceTable> load_price_cache(const std::filesystem::path& home);

/// A price with its provenance.
struct Price {
  double usd_per_hour = 0;
  std::string origin;  ///< "embedded", "cache" or "spot".
  std::string as_of;
};

/// The on-demand price of a type in a region: the cache's entry if it has one, else the embedded
/// table's. nullopt when neither knows the type there.
std::optional<Price> price_for(std::string_view instance_type, std::string_view region,
                               const std::filesystem::path& home);

/// One product of a Price List GetProducts page, reduced to what the table needs.
struct PriceListItem {
  std::string region;
  std::string instance_type;
  double usd_per_hour = 0;
  std::string effective_date;  ///< The on-demand term's effectiveDate.
};

/// The filters a refresh sends: Linux, shared tenancy, no pre-installed software, used capacity
/// (not reservation placeholders), no license included, for one region.
nlohmann::json get_products_request(std::string_view region, const std::string& next_token);

/// Parses one GetProducts response ({"PriceList": ["<json>", ...], "NextToken": ...}). Products
/// without an hourly USD on-demand price, or not matching the filters, are skipped.
/// Throws gm::Error when the document is not a GetProducts response.
std::vector<PriceListItem> parse_get_products(const nlohmann::json& page);

/// Progress line for the user, e.g. "us-east-1: page 3 (412 prices)".
using RefreshProgress = std::function<void(const std::string& line)>;

/// Fetches every listed region's on-demand Linux prices (GetProducts, paged) through \a client
/// (region us-east-1: the Price List API lives in a few regions only), merges them over the
/// existing cache, writes <home>/prices.json atomically and returns the new table.
PriceTable refresh_prices(aws::AwsClient& client, const std::vector<std::string>& regions,
                          const std::filesystem::path& home, const std::string& now_rfc3339,
                          const RefreshProgress& progress = {});

/// "$1.006/h" (4 significant decimals below $1: "$0.0104/h").
std::string format_hourly(double usd_per_hour);

/// Orders instance types as a person reads them: by family, then by size (nano ... large,
/// xlarge, 2xlarge, ..., 48xlarge, metal), so g5.2xlarge comes before g5.12xlarge.
bool instance_type_less(std::string_view a, std::string_view b);
/// "$12.34" (3 decimals below $1, so a few minutes of a small type still shows).
std::string format_usd(double usd);

}  // namespace gm::cost
