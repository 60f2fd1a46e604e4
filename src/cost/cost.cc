#include "cost/cost.h"

#include "cost/autostop.h"
#include "gm/error.h"
#include "util/time.h"

#include <cstdio>

namespace gm::cost {

namespace {

std::string number(double v, const char* format) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string price_number(double usd_per_hour) {
  return number(usd_per_hour, usd_per_hour < 1 ? "%.4f" : "%.3f");
}

}  // namespace

double accrued_cost(double usd_per_hour, SystemTime launched_at, SystemTime now) {
  if (now <= launched_at) {
    return 0;
  }
  std::chrono::duration<double, std::ratio<3600>> hours = now - launched_at;
  return usd_per_hour * hours.count();
}

CostView cost_view(const MachineRecord& record, const std::optional<PriceQuote>& quote,
                   SystemTime now) {
  CostView view;
  view.price_text = "-";
  view.cost_text = "-";
  if (!quote || !quote->usd_per_hour) {
    return view;
  }
  view.price_per_hour = quote->usd_per_hour;
  view.price_basis = quote->basis;
  view.price_origin = quote->origin + (quote->as_of.empty() ? "" : " " + quote->as_of);
  view.price_text =
      (view.price_basis == "spot-max" ? "<=" : "") + price_number(*view.price_per_hour);
  if (record.last_state == "running" && !record.cost.launched_at.empty()) {
    if (auto t = util::parse_rfc3339(record.cost.launched_at)) {
      view.cost_estimate = accrued_cost(*view.price_per_hour, *t, now);
      view.cost_text = (view.price_basis == "spot-max" ? "<=" : "~") +
                       number(*view.cost_estimate, *view.cost_estimate < 1 ? "%.3f" : "%.2f");
    }
  }
  return view;
}

void add_cost_fields(nlohmann::json& row, const CostView& view) {
  auto or_null = [](const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  row["price_per_hour"] = or_null(view.price_per_hour);
  row["price_basis"] =
      view.price_basis.empty() ? nlohmann::json(nullptr) : nlohmann::json(view.price_basis);
  row["price_source"] =
      view.price_origin.empty() ? nlohmann::json(nullptr) : nlohmann::json(view.price_origin);
  row["cost_estimate"] = or_null(view.cost_estimate);
  // Running time of the current launch x hourly price: no EBS, data transfer or past launches.
  row["cost_is_estimate"] = true;
}

std::string autostop_text(const MachineRecord& record) {
  std::optional<AutostopSettings> s = autostop_from_record(record);
  return s ? describe(*s) + (agent_on_host(record) ? "" : " (not on the host yet)") : "-";
}

PriceQuote quote_launch(const std::string& instance_type, const std::string& region, bool spot,
                        const std::filesystem::path& home) {
  PriceQuote quote{.size = instance_type, .region = region, .spot = spot};
  if (std::optional<Price> p = price_for(instance_type, region, home)) {
    quote.usd_per_hour = p->usd_per_hour;
    quote.basis = spot ? "spot-max" : "on-demand";
    quote.origin = p->origin;
    quote.as_of = p->as_of;
  }
  return quote;
}

void enforce_max_price(const PriceQuote& quote, std::optional<double> max_per_hour) {
  if (!max_per_hour) {
    return;
  }
  std::string where = quote.size + (quote.region.empty() ? "" : " in " + quote.region);
  if (!quote.usd_per_hour) {
    throw UsageError("--max-price-per-hour", "cannot be checked: no known price for " + where,
                     "run `gpumachine prices --refresh`, or drop --max-price-per-hour");
  }
  if (*quote.usd_per_hour > *max_per_hour) {
    throw UsageError(
        where,
        "costs " + format_hourly(*quote.usd_per_hour) +
            (quote.basis == "spot-max" ? " on-demand (the most a spot instance pays)" : "") +
            ", above --max-price-per-hour " + format_hourly(*max_per_hour),
        "pick a smaller type (`gpumachine prices" +
            (quote.region.empty() ? "" : " --region " + quote.region) + "`) or raise the limit");
  }
}

std::string describe_quote(const PriceQuote& quote) {
  std::string head = quote.size + (quote.region.empty() ? "" : " in " + quote.region) + ": ";
  if (!quote.usd_per_hour) {
    return head + "price unknown (not in the price table; `gpumachine prices --refresh`)";
  }
  bool at_most = quote.basis == "spot-max";
  return head + (quote.spot ? (at_most ? "spot, at most " : "spot, ") : "") +
         format_hourly(*quote.usd_per_hour) +
         (at_most      ? " (the on-demand price)"
          : quote.spot ? ""
                       : " on-demand") +
         " (" + quote.origin + " prices" + (quote.as_of.empty() ? "" : " as of " + quote.as_of) +
         ")";
}

bool confirm_launch(const PriceQuote& quote, bool assume_yes, bool interactive,
                    const std::function<void(const std::string&)>& say, const AskFn& ask) {
  if (say) {
    say(describe_quote(quote));
  }
  if (assume_yes || !interactive) {
    return true;
  }
  std::string question = quote.usd_per_hour
                             ? "this costs " + format_hourly(*quote.usd_per_hour) +
                                   (quote.basis == "spot-max" ? " at most" : "") + "; launch?"
                             : "the price is unknown; launch?";
  return ask(question);
}

}  // namespace gm::cost
