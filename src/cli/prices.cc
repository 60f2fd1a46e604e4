// `gpumachine prices [--region R] [--family F] [--refresh]`: the on-demand price table (embedded,
// overridden by the cache that --refresh writes from the AWS Price List API), with its date.
#include "cli/verbs.h"

#include "aws/client.h"
#include "aws/endpoints.h"
#include "cost/prices.h"
#include "gm/error.h"
#include "util/log.h"
#include "util/time.h"

#include <set>

namespace gm::cli {

namespace {

struct PricesOptions {
  std::vector<std::string> regions;
  std::string family;
  bool refresh = false;
};

bool in_family(const std::string& type, const std::string& family) {
  return family.empty() || type.starts_with(family + ".") || type == family;
}

int run_prices(Context& ctx, const PricesOptions& opts) {
  const std::filesystem::path home = ctx.store().home();
  const cost::PriceTable& embedded = cost::embedded_prices();
  if (opts.refresh) {
    std::vector<std::string> regions = opts.regions;
    if (regions.empty()) {
      for (const auto& [region, _] : embedded.regions) {
        regions.push_back(region);
      }
    }
    // The Price List API is served from us-east-1 (and a few others); any region's prices can be
    // asked there.
    aws::AwsClient client(aws::ClientOptions{.region = "us-east-1"});
    cost::refresh_prices(client, regions, home, util::rfc3339(std::chrono::system_clock::now()),
                         [](const std::string& line) { util::info("prices: " + line); });
    util::info("prices: wrote " + cost::price_cache_path(home).string());
  }
  std::optional<cost::PriceTable> cache = cost::load_price_cache(home);
  std::set<std::string> regions(opts.regions.begin(), opts.regions.end());
  if (regions.empty() && !opts.refresh) {
    if (std::optional<std::string> r = aws::find_region()) {
      regions.insert(*r);
    }
  }
  // The cache wins entry by entry; the embedded table fills what it lacks.
  struct Row {
    double price;
    const cost::PriceTable* table;
  };
  struct ByRegionThenType {
    bool operator()(const std::pair<std::string, std::string>& a,
                    const std::pair<std::string, std::string>& b) const {
      return a.first != b.first ? a.first < b.first : cost::instance_type_less(a.second, b.second);
    }
  };
  std::map<std::pair<std::string, std::string>, Row, ByRegionThenType> merged;
  const cost::PriceTable* cached = cache ? &*cache : nullptr;
  for (const cost::PriceTable* table : {&embedded, cached}) {
    if (table == nullptr) {
      continue;
    }
    for (const auto& [region, types] : table->regions) {
      if (!regions.empty() && !regions.contains(region)) {
        continue;
      }
      for (const auto& [type, price] : types) {
        if (in_family(type, opts.family)) {
          merged[{region, type}] = Row{price, table};
        }
      }
    }
  }
  if (merged.empty() && !opts.family.empty()) {
    throw NotFoundError("family '" + opts.family + "'", "has no prices in the table",
                        "families are the part before the dot: g5, p4d, m7i");
  }
  if (ctx.json()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& [key, row] : merged) {
      rows.push_back({{"region", key.first},
                      {"instance_type", key.second},
                      {"price_per_hour", row.price},
                      {"currency", "USD"},
                      {"source", row.table->origin},
                      {"as_of", row.table->as_of}});
    }
    ctx.out().print_json(
        {{"embedded", {{"as_of", embedded.as_of}, {"source", embedded.source}}},
         {"cache", cache ? nlohmann::json{{"as_of", cache->as_of}, {"source", cache->source}}
                         : nlohmann::json(nullptr)},
         {"prices", rows}});
    return 0;
  }
  util::info("prices: on-demand, Linux, USD/hour. Embedded table as of " + embedded.as_of +
             (cache ? "; cache (wins) from " + cache->as_of
                    : "; no cache (`gpumachine prices --refresh` fetches current prices)"));
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, row] : merged) {
    rows.push_back({key.first, key.second, cost::format_hourly(row.price),
                    row.table->origin + " " + row.table->as_of.substr(0, 10)});
  }
  ctx.out().print_table({"REGION", "TYPE", "$/H", "SOURCE"}, rows);
  return 0;
}

}  // namespace

void setup_prices(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub =
      app.add_subcommand("prices", "show on-demand prices (USD/hour) per instance type");
  auto opts = std::make_shared<PricesOptions>();
  sub->add_option("--region", opts->regions,
                  "region(s) to show or refresh (default: the configured AWS region, else all)");
  sub->add_option("--family", opts->family, "only this family (g5, p4d, m7i, ...)");
  sub->add_flag("--refresh", opts->refresh,
                "fetch current prices from the AWS Price List API into <home>/prices.json");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_prices(ctx, *opts); };
  });
}

}  // namespace gm::cli
