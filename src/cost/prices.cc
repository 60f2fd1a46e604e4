#include "cost/prices.h"

#include "aws/client.h"
#include "gm/error.h"
#include "util/assets.h"
#include "util/fs.h"

#include <sys/stat.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>

namespace gm::cost {

std::optional<double> PriceTable::find(std::string_view instance_type,
                                       std::string_view region) const {
  auto r = regions.find(std::string(region));
  if (r == regions.end()) {
    return std::nullopt;
  }
  auto t = r->second.find(std::string(instance_type));
  if (t == r->second.end()) {
    return std::nullopt;
  }
  return t->second;
}

nlohmann::json PriceTable::to_json() const {
  nlohmann::json doc = {{"format", 1},      {"as_of", as_of},
                        {"source", source}, {"currency", "USD"},
                        {"unit", "hour"},   {"regions", nlohmann::json::object()}};
  for (const auto& [region, types] : regions) {
    doc["regions"][region] = types;
  }
  return doc;
}

PriceTable parse_price_table(const nlohmann::json& doc, const std::string& origin,
                             const std::string& what) {
  auto bad = [&](const std::string& problem) {
    return Error(what, problem, {}, "run `gpumachine prices --refresh` to rewrite it");
  };
  if (!doc.is_object() || doc.value("format", 0) != 1 || !doc.contains("regions") ||
      !doc["regions"].is_object()) {
    throw bad("is not a format-1 price table");
  }
  PriceTable table;
  table.origin = origin;
  table.as_of = doc.value("as_of", "");
  table.source = doc.value("source", "");
  for (const auto& [region, types] : doc["regions"].items()) {
    if (!types.is_object()) {
      throw bad("region " + region + " is not an object");
    }
    for (const auto& [type, price] : types.items()) {
      if (!price.is_number() || price.get<double>() < 0) {
        throw bad(region + " " + type + ": price is not a non-negative number");
      }
      table.regions[region][type] = price.get<double>();
    }
  }
  return table;
}

const PriceTable& embedded_prices() {
  static const PriceTable table = parse_price_table(
      nlohmann::json::parse(util::asset("cost/prices.json")), "embedded", "embedded price table");
  return table;
}

std::filesystem::path price_cache_path(const std::filesystem::path& home) {
  return home / "prices.json";
}

std::optional<PriceTable> load_price_cache(const std::filesystem::path& home) {
  std::optional<std::string> text = util::try_read_file(price_cache_path(home));
  if (!text) {
    return std::nullopt;
  }
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
  try {
    return parse_price_table(doc, "cache", price_cache_path(home).string());
  } catch (const Error&) {
    return std::nullopt;
  }
}

namespace {
// `ls` asks for a price per row, and the cache (every type of every refreshed region) is far
// larger than a record: it is parsed once per process and reparsed only when the file changes
// (its mtime or size), which a stat per row detects.
struct CachedTable {
  std::int64_t mtime_ns = -1;  // -1: the file did not exist
  std::int64_t size = -1;
  std::optional<PriceTable> table;
};
std::mutex g_cache_mutex;
std::map<std::filesystem::path, CachedTable> g_caches;
}  // namespace

std::optional<Price> price_for(std::string_view instance_type, std::string_view region,
                               const std::filesystem::path& home) {
  struct stat st {};
  bool present = ::stat(price_cache_path(home).c_str(), &st) == 0;
  std::int64_t mtime_ns = present ? st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec : -1;
  std::int64_t size = present ? st.st_size : -1;
  std::lock_guard lock(g_cache_mutex);
  auto it = g_caches.find(home);
  if (it == g_caches.end() || it->second.mtime_ns != mtime_ns || it->second.size != size) {
    it = g_caches.insert_or_assign(home, CachedTable{mtime_ns, size, load_price_cache(home)}).first;
  }
  if (const std::optional<PriceTable>& cache = it->second.table) {
    if (auto p = cache->find(instance_type, region)) {
      return Price{*p, "cache", cache->as_of};
    }
  }
  const PriceTable& table = embedded_prices();
  if (auto p = table.find(instance_type, region)) {
    return Price{*p, "embedded", table.as_of};
  }
  return std::nullopt;
}

nlohmann::json get_products_request(std::string_view region, const std::string& next_token) {
  auto term = [](const char* field, std::string_view value) {
    return nlohmann::json{{"Type", "TERM_MATCH"}, {"Field", field}, {"Value", value}};
  };
  nlohmann::json body = {
      {"ServiceCode", "AmazonEC2"},
      {"FormatVersion", "aws_v1"},
      {"MaxResults", 100},
      {"Filters",
       {term("regionCode", region), term("operatingSystem", "Linux"), term("tenancy", "Shared"),
        term("preInstalledSw", "NA"), term("capacitystatus", "Used"),
        term("licenseModel", "No License required")}},
  };
  if (!next_token.empty()) {
    body["NextToken"] = next_token;
  }
  return body;
}

namespace {

/// The hourly USD price of the product's single on-demand term, or nullopt.
std::optional<std::pair<double, std::string>> on_demand_hourly(const nlohmann::json& product) {
  const nlohmann::json* terms = nullptr;
  if (product.contains("terms") && product["terms"].contains("OnDemand")) {
    terms = &product["terms"]["OnDemand"];
  }
  if (terms == nullptr || !terms->is_object()) {
    return std::nullopt;
  }
  for (const auto& [_, term] : terms->items()) {
    if (!term.contains("priceDimensions")) {
      continue;
    }
    for (const auto& [__, dim] : term["priceDimensions"].items()) {
      if (dim.value("unit", "") != "Hrs" || !dim.contains("pricePerUnit") ||
          !dim["pricePerUnit"].contains("USD")) {
        continue;
      }
      const nlohmann::json& usd = dim["pricePerUnit"]["USD"];
      double value = usd.is_string() ? std::strtod(usd.get<std::string>().c_str(), nullptr)
                                     : usd.get<double>();
      return std::pair{value, term.value("effectiveDate", "")};
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<PriceListItem> parse_get_products(const nlohmann::json& page) {
  if (!page.is_object() || !page.contains("PriceList") || !page["PriceList"].is_array()) {
    throw Error("Price List API", "answered without a PriceList array");
  }
  std::vector<PriceListItem> items;
  for (const nlohmann::json& entry : page["PriceList"]) {
    // Each entry is a JSON document serialized into a string (format aws_v1).
    nlohmann::json product =
        entry.is_string() ? nlohmann::json::parse(entry.get<std::string>(), nullptr, false) : entry;
    if (!product.is_object() || !product.contains("product")) {
      continue;
    }
    const nlohmann::json& attrs = product["product"].value("attributes", nlohmann::json::object());
    auto attr = [&](const char* key) { return attrs.value(key, std::string()); };
    // The server applies the filters, but a product that slipped through must not pose as the
    // Linux on-demand price (e.g. a SQL Server or dedicated-host SKU of the same type).
    if (attr("instanceType").empty() || attr("operatingSystem") != "Linux" ||
        attr("tenancy") != "Shared" || attr("preInstalledSw") != "NA" ||
        attr("capacitystatus") != "Used") {
      continue;
    }
    auto hourly = on_demand_hourly(product);
    if (!hourly) {
      continue;
    }
    items.push_back({attr("regionCode"), attr("instanceType"), hourly->first, hourly->second});
  }
  return items;
}

PriceTable refresh_prices(aws::AwsClient& client, const std::vector<std::string>& regions,
                          const std::filesystem::path& home, const std::string& now_rfc3339,
                          const RefreshProgress& progress) {
  PriceTable table;
  if (std::optional<PriceTable> old = load_price_cache(home)) {
    table = *old;  // regions not refreshed now keep their earlier prices
  }
  table.origin = "cache";
  table.as_of = now_rfc3339;
  table.source =
      "AWS Price List API (GetProducts, AmazonEC2, Linux, shared tenancy, no "
      "pre-installed software), fetched " +
      now_rfc3339;
  for (const std::string& region : regions) {
    std::map<std::string, double> prices;
    std::string token;
    int page_number = 0;
    do {
      nlohmann::json page = client.call_json("pricing", "AWSPriceListService.GetProducts",
                                             get_products_request(region, token));
      for (const PriceListItem& item : parse_get_products(page)) {
        if (item.region.empty() || item.region == region) {
          prices[item.instance_type] = item.usd_per_hour;
        }
      }
      token = page.value("NextToken", "");
      ++page_number;
      if (progress) {
        progress(region + ": page " + std::to_string(page_number) + " (" +
                 std::to_string(prices.size()) + " prices)");
      }
    } while (!token.empty());
    if (prices.empty()) {
      throw Error("region " + region, "the Price List API has no on-demand Linux prices for it", {},
                  "check the region name (e.g. us-east-1)");
    }
    table.regions[region] = std::move(prices);
  }
  util::make_private_dir(home);
  util::write_file_atomic(price_cache_path(home), table.to_json().dump(1) + "\n", 0644);
  return table;
}

std::string format_hourly(double usd_per_hour) {
  char buf[64];
  std::snprintf(buf, sizeof buf, usd_per_hour < 1 ? "$%.4f/h" : "$%.3f/h", usd_per_hour);
  return buf;
}

std::string format_usd(double usd) {
  char buf[64];
  std::snprintf(buf, sizeof buf, usd < 1 ? "$%.3f" : "$%.2f", usd);
  return buf;
}

namespace {

// Sizes by how large they are; unknown ones sort after every known size, by name.
int size_rank(std::string_view size) {
  static constexpr std::string_view k_small[] = {"nano", "micro", "small", "medium", "large"};
  for (int i = 0; i < 5; ++i) {
    if (size == k_small[i]) {
      return i;
    }
  }
  if (size == "xlarge") {
    return 5;
  }
  if (size.ends_with("xlarge")) {
    int n = 0;
    auto [end, ec] = std::from_chars(size.data(), size.data() + size.size() - 6, n);
    if (ec == std::errc() && end == size.data() + size.size() - 6) {
      return 4 + n;
    }
  }
  return size == "metal" ? 100000 : 100001;
}

}  // namespace

bool instance_type_less(std::string_view a, std::string_view b) {
  std::string_view fa = a.substr(0, a.find('.')), fb = b.substr(0, b.find('.'));
  if (fa != fb) {
    return fa < fb;
  }
  std::string_view sa = a.size() > fa.size() ? a.substr(fa.size() + 1) : "";
  std::string_view sb = b.size() > fb.size() ? b.substr(fb.size() + 1) : "";
  int ra = size_rank(sa), rb = size_rank(sb);
  return ra != rb ? ra < rb : sa < sb;
}

}  // namespace gm::cost
