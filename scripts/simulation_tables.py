#!/usr/bin/env python3
"""Prints the tables of docs/simulation.md: `messplus sim` with the paper's policy on the 8
Llama 3 benchmarks at the paper's alphas (V = 1e-4, c = 0.1, seeds 42-44), with every
baseline, and the same runs with sparse (rate 0.2) and delayed (100 requests) feedback.

Usage: scripts/simulation_tables.py [--bin build/tools/messplus] [--data ../shared/data]
"""
import json
import os
import subprocess
import sys

ALPHA = {"arc_challenge": 0.50, "arc_easy": 0.75, "boolq": 0.80, "logiqa": 0.40,
         "piqa": 0.78, "sciq": 0.96, "social_iqa": 0.44, "winogrande": 0.70}
SHORT = {"llama-3.2-1b-instruct": "1B", "llama-3.1-8b-instruct-bnb4bit": "8B",
         "llama-3.3-70b-instruct-bnb4bit": "70B"}


def run(binary, path, alpha, extra):
    cmd = [binary, "sim", "--data", path, "--alpha", str(alpha), "--policy", "paper",
           "--v", "1e-4", "--c", "0.1", "--seeds", "42", "43", "44", "--json"] + extra
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["runs"]


def main():
    args = sys.argv[1:]
    binary, data = "build/tools/messplus", os.path.join("..", "shared", "data")
    if "--bin" in args:
        binary = args[args.index("--bin") + 1]
    if "--data" in args:
        data = args[args.index("--data") + 1]
    print("| benchmark | alpha | SLA met | messplus cost (J) | satisfaction | x always-70B | "
          "always 1B | always 8B | always 70B | educated guess | oracle | alpha oracle | "
          "explored | final Q |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    met_total, ratios, misses = 0, [], []
    for bench, alpha in ALPHA.items():
        path = os.path.join(data, "messplus_llama3", f"messplus_llama3_{bench}.csv")
        runs = run(binary, path, alpha, [])
        n = len(runs)
        met = sum(r["sla_met"] for r in runs)
        met_total += met
        cost = sum(r["avg_cost"] for r in runs) / n
        sat = sum(r["avg_satisfaction"] for r in runs) / n
        models = runs[0]["models"]

        def base(name, key):
            return sum(r["baselines"][name][key] for r in runs) / n

        largest = base("always:" + models[-1], "avg_cost")
        ratios.append(cost / largest)
        cells = []
        for name in ["always:" + m for m in models] + ["educated_guess", "oracle", "alpha_oracle"]:
            cells.append(f"{base(name, 'avg_cost'):.0f} / {base(name, 'avg_satisfaction'):.3f}")
        expl = sum(r["exploration_share"] for r in runs) / n
        q = sum(r["final_q"] for r in runs) / n
        print(f"| {bench} | {alpha:.2f} | {met}/{n} | {cost:.1f} | {sat:.4f} | {cost / largest:.3f} | "
              + " | ".join(cells) + f" | {100 * expl:.1f}% | {q:.2f} |")
        for r in runs:
            if not r["sla_met"]:
                misses.append((bench, r["seed"], r["avg_satisfaction"] - alpha,
                               (r["avg_satisfaction"] - alpha) * r["requests"]))
    print(f"\nSLA met in {met_total} of 24 runs; mean cost {sum(ratios) / len(ratios):.3f} of "
          "always-70B (cells are cost / satisfaction, means over the three seeds).\n")
    print("Misses (benchmark, seed, satisfaction - alpha, in requests):\n")
    for b, s, m, u in misses:
        print(f"- {b}, seed {s}: {m:+.4f} ({u:+.1f} satisfied requests short)")

    for label, extra in (("sparse feedback (rate 0.2)", ["--feedback-rate", "0.2"]),
                         ("delayed feedback (100 requests)", ["--feedback-delay", "100"])):
        print(f"\n#### {label}\n")
        print("| benchmark | alpha | SLA met | cost (J) | satisfaction | x always-70B | feedback delivered |")
        print("|---|---|---|---|---|---|---|")
        met_total, ratios = 0, []
        for bench, alpha in ALPHA.items():
            path = os.path.join(data, "messplus_llama3", f"messplus_llama3_{bench}.csv")
            runs = run(binary, path, alpha, extra)
            n = len(runs)
            met = sum(r["sla_met"] for r in runs)
            met_total += met
            cost = sum(r["avg_cost"] for r in runs) / n
            sat = sum(r["avg_satisfaction"] for r in runs) / n
            largest = runs[0]["baselines"]["always:" + runs[0]["models"][-1]]["avg_cost"]
            ratios.append(cost / largest)
            fb = sum(r["feedback_delivered"] for r in runs) / n
            print(f"| {bench} | {alpha:.2f} | {met}/{n} | {cost:.1f} | {sat:.4f} | "
                  f"{cost / largest:.3f} | {fb:.0f} / {runs[0]['requests']} |")
        print(f"\nSLA met in {met_total} of 24 runs; mean cost {sum(ratios) / len(ratios):.3f} of always-70B.")


if __name__ == "__main__":
    main()
