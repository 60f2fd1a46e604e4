#!/usr/bin/env python3
"""Writes src/cost/prices.json, the on-demand price table embedded in gpumachine.

Provenance, stated plainly: these numbers were compiled from public AWS EC2 on-demand pricing
pages (Linux, shared tenancy, no pre-installed software) as known to the author on AS_OF; they
were NOT fetched (the build machine has no internet). us-east-1 values are the remembered list
prices. us-east-2 and us-west-2 are priced as us-east-1 (AWS prices these families the same
there). eu-west-1, eu-central-1 and ap-northeast-1 are us-east-1 times a per-family regional ratio
remembered from a few anchor prices (g4dn.xlarge, g5.xlarge, m5.large, c5.large, t3.micro), so
they are approximate to a few percent. P4/P5 prices are the levels after AWS's June 2025
on-demand reduction as remembered. `gpumachine prices --refresh` replaces all of this with the
Price List API's answer.
"""
import json
import sys
from pathlib import Path

AS_OF = "2025-08-01"

US_EAST_1 = {
    "g4dn": {"xlarge": 0.526, "2xlarge": 0.752, "4xlarge": 1.204, "8xlarge": 2.176,
             "12xlarge": 3.912, "16xlarge": 4.352, "metal": 7.824},
    "g5": {"xlarge": 1.006, "2xlarge": 1.212, "4xlarge": 1.624, "8xlarge": 2.448,
           "12xlarge": 5.672, "16xlarge": 4.096, "24xlarge": 8.144, "48xlarge": 16.288},
    "g5g": {"xlarge": 0.42, "2xlarge": 0.556, "4xlarge": 0.828, "8xlarge": 1.372,
            "16xlarge": 2.744, "metal": 2.744},
    "g6": {"xlarge": 0.8048, "2xlarge": 0.9776, "4xlarge": 1.3232, "8xlarge": 2.0144,
           "12xlarge": 4.6016, "16xlarge": 3.3968, "24xlarge": 6.6752, "48xlarge": 13.3504},
    "g6e": {"xlarge": 1.861, "2xlarge": 2.24208, "4xlarge": 3.00424, "8xlarge": 4.52856,
            "12xlarge": 10.49264, "16xlarge": 7.57719, "24xlarge": 15.06559, "48xlarge": 30.13118},
    "gr6": {"4xlarge": 1.5392, "8xlarge": 2.6464},
    "p3": {"2xlarge": 3.06, "8xlarge": 12.24, "16xlarge": 24.48},
    "p3dn": {"24xlarge": 31.212},
    "p4d": {"24xlarge": 21.96},
    "p4de": {"24xlarge": 27.45},
    "p5": {"4xlarge": 6.88, "48xlarge": 55.04},
    "p5e": {"48xlarge": 60.8},
    "p5en": {"48xlarge": 63.3},
    "p6-b200": {"48xlarge": 113.93},
    "t3": {"nano": 0.0052, "micro": 0.0104, "small": 0.0208, "medium": 0.0416, "large": 0.0832,
           "xlarge": 0.1664, "2xlarge": 0.3328},
    "m5": {"large": 0.096, "xlarge": 0.192, "2xlarge": 0.384, "4xlarge": 0.768, "8xlarge": 1.536,
           "12xlarge": 2.304, "16xlarge": 3.072, "24xlarge": 4.608},
    "m6i": {"large": 0.096, "xlarge": 0.192, "2xlarge": 0.384, "4xlarge": 0.768, "8xlarge": 1.536,
            "16xlarge": 3.072, "32xlarge": 6.144},
    "m7i": {"large": 0.1008, "xlarge": 0.2016, "2xlarge": 0.4032, "4xlarge": 0.8064,
            "8xlarge": 1.6128, "16xlarge": 3.2256, "48xlarge": 9.6768},
    "c5": {"large": 0.085, "xlarge": 0.17, "2xlarge": 0.34, "4xlarge": 0.68, "9xlarge": 1.53,
           "18xlarge": 3.06},
    "c7i": {"large": 0.08925, "xlarge": 0.1785, "2xlarge": 0.357, "4xlarge": 0.714,
            "8xlarge": 1.428},
    "c7g": {"medium": 0.0363, "large": 0.0725, "xlarge": 0.145, "2xlarge": 0.29, "4xlarge": 0.58},
}

# Per-family ratio to us-east-1; None: the family is not offered there (as far as known).
RATIOS = {
    "eu-west-1": {"g4dn": 1.116, "g5": 1.116, "g5g": 1.116, "g6": 1.116, "g6e": 1.116,
                  "gr6": None, "p3": 1.08, "p3dn": None, "p4d": 1.10, "p4de": None, "p5": 1.10,
                  "p5e": None, "p5en": None, "p6-b200": None, "t3": 1.096, "m5": 1.115,
                  "m6i": 1.115, "m7i": 1.115, "c5": 1.13, "c7i": 1.13, "c7g": 1.13},
    "eu-central-1": {"g4dn": 1.251, "g5": 1.25, "g5g": 1.25, "g6": 1.25, "g6e": 1.25,
                     "gr6": None, "p3": 1.25, "p3dn": None, "p4d": 1.25, "p4de": None,
                     "p5": 1.25, "p5e": None, "p5en": None, "p6-b200": None, "t3": 1.154,
                     "m5": 1.198, "m6i": 1.198, "m7i": 1.198, "c5": 1.141, "c7i": 1.141,
                     "c7g": 1.141},
    "ap-northeast-1": {"g4dn": 1.35, "g5": 1.45, "g5g": 1.45, "g6": 1.45, "g6e": 1.45,
                       "gr6": None, "p3": 1.39, "p3dn": None, "p4d": 1.3, "p4de": None,
                       "p5": 1.3, "p5e": None, "p5en": 1.3, "p6-b200": None, "t3": 1.31,
                       "m5": 1.29, "m6i": 1.29, "m7i": 1.29, "c5": 1.26, "c7i": 1.26,
                       "c7g": 1.26},
}


def main() -> None:
    base = {f"{fam}.{size}": price for fam, sizes in US_EAST_1.items()
            for size, price in sizes.items()}
    regions = {"us-east-1": base, "us-east-2": dict(base), "us-west-2": dict(base)}
    for region, ratios in RATIOS.items():
        table = {}
        for fam, sizes in US_EAST_1.items():
            ratio = ratios.get(fam)
            if ratio is None:
                continue
            for size, price in sizes.items():
                table[f"{fam}.{size}"] = round(price * ratio, 4)
        regions[region] = table
    doc = {
        "format": 1,
        "as_of": AS_OF,
        "source": "compiled from public AWS EC2 on-demand pricing pages as known on " + AS_OF
                  + " (not fetched: no internet at build time); us-east-2/us-west-2 = us-east-1;"
                  " eu-west-1, eu-central-1, ap-northeast-1 derived by per-family regional ratios"
                  " (approximate). Run `gpumachine prices --refresh` for current prices.",
        "currency": "USD",
        "unit": "hour",
        "filters": {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
                    "capacitystatus": "Used"},
        "regions": {r: dict(sorted(t.items())) for r, t in sorted(regions.items())},
    }
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "src/cost/prices.json")
    out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
