#include "cost/cost.h"

#include "cost/autostop.h"
#include "gm/error.h"
#include "util/time.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace gm::cost {

namespace {

std::string config_string(const MachineRecord& record, const char* key) {
  const nlohmann::json& cfg = record.driver_config;
  return cfg.contains(key) && cfg[key].is_string() ? cfg[key].get<std::string>() : std::string();
}

bool record_is_spot(const MachineRecord& record) {
  const nlohmann::json& cfg = record.driver_config;
  if (!cfg.contains("spot")) {
    return false;
  }
  const nlohmann::json& spot = cfg["spot"];
  return spot.is_boolean() ? spot.get<bool>() : (spot.is_string() && spot == "true");
}

/// The spot price the driver recorded (facts.spot_price, number or numeric string), if any.
std::optional<double> recorded_spot_price(const MachineRecord& record) {
  if (!record.facts.contains("spot_price")) {
    return std::nullopt;
  }
  const nlohmann::json& p = record.facts["spot_price"];
  if (p.is_number()) {
    return p.get<double>();
  }
  if (p.is_string()) {
    char* end = nullptr;
    double v = std::strtod(p.get<std::string>().c_str(), &end);
    if (end != p.get<std::string>().c_str()) {
      return v;
    }
  }
  return std::nullopt;
}

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

CostView cost_view(const MachineRecord& record, SystemTime now, const std::filesystem::path& home) {
  CostView view;
  view.price_text = "-";
  view.cost_text = "-";
  std::string type = config_string(record, "instance_type");
  std::string region = config_string(record, "region");
  bool spot = record_is_spot(record);
  if (spot) {
    if (auto p = recorded_spot_price(record)) {
      view.price_per_hour = *p;
      view.price_basis = "spot";
      view.price_origin = "record";
    }
  }
  if (!view.price_per_hour && !type.empty() && !region.empty()) {
    if (std::optional<Price> p = price_for(type, region, home)) {
      view.price_per_hour = p->usd_per_hour;
      // AWS caps the spot price at the on-demand price, so that is an upper bound.
      view.price_basis = spot ? "spot-max" : "on-demand";
      view.price_origin = p->origin + " " + p->as_of;
    }
  }
  if (!view.price_per_hour) {
    return view;
  }
  view.price_text =
      (view.price_basis == "spot-max" ? "<=" : "") + price_number(*view.price_per_hour);
  if (record.last_state == "running" && record.facts.contains("launched_at") &&
      record.facts["launched_at"].is_string()) {
    if (auto t = util::parse_rfc3339(record.facts["launched_at"].get<std::string>())) {
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

LaunchQuote quote_launch(const std::string& instance_type, const std::string& region, bool spot,
                         const std::filesystem::path& home) {
  return {instance_type, region, spot, price_for(instance_type, region, home)};
}

void enforce_max_price(const LaunchQuote& quote, std::optional<double> max_per_hour) {
  if (!max_per_hour) {
    return;
  }
  if (!quote.price) {
    throw UsageError(
        "--max-price-per-hour",
        "cannot be checked: no known price for " + quote.instance_type + " in " + quote.region,
        "run `gpumachine prices --refresh`, or drop --max-price-per-hour");
  }
  if (quote.price->usd_per_hour > *max_per_hour) {
    throw UsageError(quote.instance_type + " in " + quote.region,
                     "costs " + format_hourly(quote.price->usd_per_hour) +
                         (quote.spot ? " on-demand (the most a spot instance pays)" : "") +
                         ", above --max-price-per-hour " + format_hourly(*max_per_hour),
                     "pick a smaller type (`gpumachine prices --region " + quote.region +
                         "`) or raise the limit");
  }
}

std::string describe_quote(const LaunchQuote& quote) {
  std::string head = quote.instance_type + " in " + quote.region + ": ";
  if (!quote.price) {
    return head + "price unknown (not in the price table; `gpumachine prices --refresh`)";
  }
  return head + (quote.spot ? "spot, at most " : "") + format_hourly(quote.price->usd_per_hour) +
         (quote.spot ? " (the on-demand price)" : " on-demand") + " (" + quote.price->origin +
         " prices as of " + quote.price->as_of + ")";
}

bool confirm_launch(const LaunchQuote& quote, bool assume_yes, bool interactive,
                    const std::function<void(const std::string&)>& say, const AskFn& ask) {
  if (say) {
    say(describe_quote(quote));
  }
  if (assume_yes || !interactive) {
    return true;
  }
  std::string question = quote.price ? "this costs " + format_hourly(quote.price->usd_per_hour) +
                                           (quote.spot ? " at most" : "") + "; launch?"
                                     : "the price is unknown; launch?";
  return ask(question);
}

bool terminal_attached() {
  return ::isatty(STDIN_FILENO) == 1 && ::isatty(STDERR_FILENO) == 1;
}

bool ask_on_terminal(const std::string& question) {
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace gm::cost
