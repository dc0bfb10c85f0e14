#!/usr/bin/env python3
"""Sensitivity of the adaptive policy to each setting, one change at a time (docs/policies.md).

For every setting, runs `messplus eval --suite llama pooled routellm` (seeds 42-44) with the
setting halved and doubled (or switched), and prints one markdown row per variant: SLA met and
mean / worst cost relative to the educated guess, per suite; and, because three seeds move the
per-benchmark cost by 0.1-0.5 x EG between neighbouring settings, the same for the Llama
benchmarks over seeds 1-80 and the SLA of the pooled stream over seeds 1-20; and the cost of
the pooled stream at alpha 0.70 with the task, the case closest to its target.

Usage: scripts/policy_sensitivity.py [--bin build/tools/messplus] [--data-dir ../shared/data]
"""
import json
import subprocess
import sys

VARIANTS = [
    ("defaults", []),
    ("model_prior_strength", [5, 20]),
    ("task_prior_strength", [10, 40]),
    ("task_offset_strength", [2.5, 10]),
    ("q_reference", [5, 20]),
    ("backlog_scale", [3, 12]),
    ("clear_requests", [0, 75, 300]),
    ("queue_dither", [0, 4]),
    ("start_backlog", [2, 8]),
    ("buffer_labels", [150, 600]),
    ("margin", [0.0015, 0.006]),
    ("margin_scale", [2500, 10000]),
    ("price_integral", [0, 0.01]),
    ("max_price_correction", [0.5, 2]),
    ("integral_anti_windup", [0]),
    ("price_quantile", [0, 0.25]),
    ("price_draws", [1, 31]),
    ("optimism", [0.5, 2]),
    ("optimism_start", [1.5, 6]),
    ("optimism_floor", [0, 2]),
    ("hull_z", [0, 1.5, 6]),
    ("explore_budget", [0.025, 0.1]),
    ("explore_rate", [0.125, 0.5]),
    ("text_gate_margin", [0.001, 0.004]),
    ("text_gate_min_labels", [100, 400]),
    ("count_pending", [0]),
    ("calibration_uncertainty", [0]),
    ("cost_discovery", [0]),
    ("exponential_queue", [0]),
]


def summarize(rows):
    out = {}
    for suite, prefix in (("llama", None), ("pooled", "pooled@"), ("mmlu", "mmlu@")):
        sel = [r for r in rows if (r["case"].startswith(prefix) if prefix else "@" not in r["case"])]
        met = sum(r["sla_met"] for r in sel)
        runs = sum(r["runs"] for r in sel)
        x = [r["cost_x_educated_guess"] for r in sel]
        if x:
            out[suite] = (met, runs, sum(x) / len(x), max(x))
    return out


def run(binary, extra, suites, seeds, tune):
    cmd = [binary, "eval", "--suite", *suites, "--policies", "adaptive", "--json", "--seeds",
           *map(str, seeds)] + extra + tune
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    args = sys.argv[1:]
    binary = args[args.index("--bin") + 1] if "--bin" in args else "build/tools/messplus"
    extra = ["--data-dir", args[args.index("--data-dir") + 1]] if "--data-dir" in args else []
    print("| setting | value | Llama SLA | Llama x EG mean / worst | Llama 1-80 SLA | "
          "Llama 1-80 x EG | pooled SLA | pooled x EG | pooled 0.70+task x EG | pooled 1-20 SLA | "
          "MMLU SLA | MMLU x EG |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, values in VARIANTS:
        for value in (values or [None]):
            tune = [] if value is None else ["--tune", f"{name}={value}"]
            rows = run(binary, extra, ["llama", "pooled", "routellm"], (42, 43, 44), tune)
            s = summarize(rows)
            p70 = next(r["cost_x_educated_guess"] for r in rows if r["case"] == "pooled@0.70+task")
            wide = summarize(run(binary, extra, ["llama"], range(1, 81), tune))["llama"]
            pooled = summarize(run(binary, extra, ["pooled"], range(1, 21), tune))["pooled"]
            l, p, m = s["llama"], s["pooled"], s["mmlu"]
            print(f"| {name} | {'default' if value is None else value} | {l[0]}/{l[1]} | "
                  f"{l[2]:.2f} / {l[3]:.2f} | {wide[0]}/{wide[1]} | {wide[2]:.2f} | "
                  f"{p[0]}/{p[1]} | {p[2]:.2f} | {p70:.2f} | {pooled[0]}/{pooled[1]} | {m[0]}/{m[1]} | "
                  f"{m[2]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
