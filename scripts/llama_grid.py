#!/usr/bin/env python3
"""Runs `messplus sim` on the 8 Llama 3 benchmarks at the paper's alphas and prints a summary.

Usage: scripts/llama_grid.py [--bin build/tools/messplus] [--data ../shared/data] [extra sim flags]
"""
import json
import os
import subprocess
import sys

from simulation_tables import ALPHA  # the paper's alpha per Llama benchmark


def main():
    args = sys.argv[1:]
    binary, data = "build/tools/messplus", os.path.join("..", "shared", "data")
    if "--bin" in args:
        i = args.index("--bin"); binary = args[i + 1]; del args[i:i + 2]
    if "--data" in args:
        i = args.index("--data"); data = args[i + 1]; del args[i:i + 2]
    tot_met = tot_runs = 0
    ratios, largest_ratios = [], []
    print(f"{'benchmark':<14}{'alpha':>6}{'met':>6}{'cost':>10}{'sat':>8}{'xEG':>7}{'xEGs':>7}"
          f"{'x8B':>7}{'xLarge':>8}{'explore%':>9}")
    for bench, alpha in ALPHA.items():
        path = os.path.join(data, "messplus_llama3", f"messplus_llama3_{bench}.csv")
        cmd = [binary, "sim", "--data", path, "--alpha", str(alpha), "--json",
               "--seeds", "42", "43", "44"] + args
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        runs = out["runs"]
        met = sum(r["sla_met"] for r in runs)
        cost = sum(r["avg_cost"] for r in runs) / len(runs)
        sat = sum(r["avg_satisfaction"] for r in runs) / len(runs)
        b = runs[0]["baselines"]
        models = runs[0]["models"]
        # Expected EG cost from the LP (deterministic), and the sampled one.
        eg_s = sum(r["baselines"]["educated_guess"]["avg_cost"] for r in runs) / len(runs)
        eg = runs[0].get("eg_expected_cost", eg_s)
        largest = b["always:" + models[-1]]["avg_cost"]
        mid = b["always:" + models[1]]["avg_cost"]
        expl = sum(r["exploration_cost_share"] for r in runs) / len(runs)
        print(f"{bench:<14}{alpha:>6.2f}{met:>4}/3{cost:>10.1f}{sat:>8.4f}{cost/eg:>7.2f}"
              f"{cost/eg_s:>7.2f}{cost/mid:>7.2f}{cost/largest:>8.3f}{100*expl:>8.1f}%")
        tot_met += met; tot_runs += len(runs)
        ratios.append(cost / eg); largest_ratios.append(cost / largest)
    print(f"SLA met {tot_met}/{tot_runs}; mean cost x EG {sum(ratios)/len(ratios):.3f} "
          f"(max {max(ratios):.2f}); mean cost x largest {sum(largest_ratios)/len(largest_ratios):.3f}")


if __name__ == "__main__":
    main()
