// What a machine costs, for `ls` and `create`: its hourly price (on-demand from the price table, or
// the spot price when the record knows it), the estimate of what it has cost since launch, and the
// price gate and question before a launch. Pure functions of the record, the price table and an
// injected clock, so the arithmetic is tested without a cloud.
#pragma once

#include "cost/prices.h"
#include "gm/driver.h"
#include "gm/machine.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace gm::cost {

using SystemTime = std::chrono::system_clock::time_point;

/// USD accrued at \a usd_per_hour from \a launched_at to \a now (0 when now is earlier).
double accrued_cost(double usd_per_hour, SystemTime launched_at, SystemTime now);

/// A machine's price and cost estimate, as `ls` shows them.
struct CostView {
  std::optional<double> price_per_hour;  ///< nullopt: unknown (generic driver, unknown type).
  /// "on-demand", "spot", or "spot-max" (spot price unknown: the on-demand price is its cap).
  std::string price_basis;
  std::string price_origin;             ///< "embedded 2025-08-01", "cache 2026-…", "record".
  std::optional<double> cost_estimate;  ///< Running time of this launch x price; nullopt
                                        ///< when not running or the price is unknown.
  std::string price_text;               ///< "1.006", "<=1.006" (spot-max), "-".
  std::string cost_text;                ///< "~3.21" (always an estimate), "-".
};

/// The record's price and cost at \a now: the price from \a quote (its driver's, Driver::quote();
/// nullopt where the driver has none), the running time from record.cost.launched_at.
CostView cost_view(const MachineRecord& record, const std::optional<PriceQuote>& quote,
                   SystemTime now);

/// Adds price_per_hour, price_basis, price_source, cost_estimate (null where unknown) and
/// cost_is_estimate to an `ls --format json` row.
void add_cost_fields(nlohmann::json& row, const CostView& view);

/// The AUTOSTOP column: "30m", "30m (terminate)", "30m, max 8h", "max 8h", "-".
std::string autostop_text(const MachineRecord& record);

/// The quote for an EC2 type in a region from the price tables (offline): on-demand, or for spot
/// the on-demand price as the most it pays ("spot-max").
PriceQuote quote_launch(const std::string& instance_type, const std::string& region, bool spot,
                        const std::filesystem::path& home);

/// Refuses (UsageError, exit 2, before any call) a launch whose price is above \a max_per_hour,
/// or whose price is unknown while a maximum is set (it cannot be checked).
void enforce_max_price(const PriceQuote& quote, std::optional<double> max_per_hour);

/// "g5.xlarge in us-east-1: $1.006/h on-demand (embedded prices as of 2025-08-01)".
std::string describe_quote(const PriceQuote& quote);

/// Asks a yes/no question on the terminal; returns the answer (util::ask_yes_no).
using AskFn = std::function<bool(const std::string& question)>;

/// Before a launch: prints describe_quote() (through \a say) and, when \a interactive (stdin and
/// stderr are terminals: util::terminal_attached()) and not \a assume_yes, asks "launch? [y/N]".
/// Returns false when the user said no. Scripts (not a terminal) and --yes proceed without a
/// question.
bool confirm_launch(const PriceQuote& quote, bool assume_yes, bool interactive,
                    const std::function<void(const std::string&)>& say, const AskFn& ask);

}  // namespace gm::cost
