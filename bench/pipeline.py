#!/usr/bin/env python3
"""bench/pipeline.py: the whole pipeline under load, beside the raw ZeroMQ limit of the same run.

For each mode (embedded: the stages as threads of one process over inproc://; ipc: five stage
processes over ipc://; tcp: five stage processes over tcp://127.0.0.1), with echo workers (the
text back, zero model time) and generated 200-character prompts:

  1. the raw baseline, measured right before the pipeline with messplus_bench_zmq:
     - a PUSH/PULL chain with the pipeline's hop count (client -> ingest -> embed -> route ->
       dispatch -> worker -> dispatch -> ingest -> client: 8 hops, so 9 chain stages), same
       transport, threads for inproc and processes otherwise, 200-byte messages;
     - a ROUTER/DEALER round trip (client -> broker -> worker and back) at the same fixed
       rate as the pipeline's latency run, and at its maximum (window 64);
  2. the pipeline at maximum throughput: `messplus loadgen`, closed loop, --concurrency
     requests in flight;
  3. the pipeline at each fixed rate (default 20,000 requests/s): open loop, Poisson
     arrivals, latency from each request's due time.

It prints one table (and with --json FILE writes every raw result). Every process it starts is
ended by pid (SIGTERM, then SIGKILL after a deadline); every wait is bounded; only loopback
and ipc:// in a temp dir.

    bench/pipeline.py                                   # all three modes, about 2 minutes
    bench/pipeline.py --modes ipc --duration 10 --rates 20000 10000 5000 --json out.json

Requires a Release build in $BUILD_DIR (default <repo>/build) with the `messplus` and
`messplus_bench_zmq` targets.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["small", "medium", "large"]
ENDPOINTS = ["frontend", "requests", "features", "decisions", "workers", "replies", "feedback",
             "updates", "snapshots"]
STAGES = ["feedback", "route", "dispatch", "embed", "ingest"]  # start order (any order works)
PIPELINE_HOPS = 8


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Child processes, each ended by pid when the object is closed."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.children = []

    def start(self, name, argv):
        log = open(os.path.join(self.logdir, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, p, log))
        return p

    def check_alive(self):
        for name, p, _ in self.children:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}; see "
                                   f"{os.path.join(self.logdir, name + '.log')}")

    def close(self, deadline_s=10.0):
        for _, p, _ in self.children:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        end = time.monotonic() + deadline_s
        for _, p, log in self.children:
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            log.close()
        self.children = []


def write_config(path, transport, tmpdir, metrics):
    lines = ["models:"] + [f"  - name: {m}" for m in MODELS]
    lines += ["tenants:", "  - name: default", "    alpha: 0.5", "policy: adaptive", "seed: 42",
              "log_level: warn", "endpoints:"]
    for e in ENDPOINTS:
        if transport == "inproc":
            addr = f"inproc://{e}"
        elif transport == "ipc":
            addr = f"ipc://{tmpdir}/{e}"
        else:
            addr = f"tcp://127.0.0.1:{free_port()}"
        lines.append(f"  {e}: {addr}")
    for stage in ["ingest", "embed", "route", "dispatch"]:
        lines.append(f"{stage}: {{metrics_port: {metrics.get(stage, 0)}}}")
    lines.append(f"feedback: {{metrics_port: {metrics.get('feedback', 0)}, "
                 f"checkpoint_path: \"{tmpdir}/collector.ckpt\"}}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def scrape(port, name, label=None):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head == name or (head.startswith(name + "{") and (label is None or label in head)):
            return float(value)
    return None


def wait_ready(procs, metrics, timeout_s=30.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        procs.check_alive()
        synced = scrape(metrics["route"], "messplus_route_synced") == 1.0
        workers = all((scrape(metrics["dispatch"], "messplus_dispatch_workers",
                              f'model="{m}"') or 0) >= 1 for m in MODELS)
        if synced and workers:
            return
        time.sleep(0.05)
    raise RuntimeError("the pipeline was not ready (route synced, a worker per model) in "
                       f"{timeout_s} s")


def wait_answering(messplus, config, tries=40):
    """Until a request goes through end to end: ingest refuses requests as `overloaded` until
    embed has connected to it, which the metrics scraped by wait_ready do not show."""
    for _ in range(tries):
        r = subprocess.run([messplus, "publish", "--config", config, "--timeout-ms", "2000",
                            "probe"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and '"model"' in r.stdout:
            return
        time.sleep(0.1)
    raise RuntimeError(f"no request was answered in {tries} probes: {r.stdout} {r.stderr}")


def run_json(argv, timeout_s):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"{' '.join(argv)} (exit {r.returncode}) printed no JSON:\n"
                           f"{r.stdout[-2000:]}\n{r.stderr[-4000:]}")


def loadgen_args(args, load):
    a = ["--json", "--no-progress", "--seed", "7", "--duration", str(args.duration),
         "--warmup", f"{args.warmup}s", "--timeout-ms", "10000"]
    if load[0] == "closed":
        a += ["--concurrency", str(args.concurrency)]
    else:
        a += ["--rate", str(load[1])]
    return a


def baseline(args, build, transport):
    zmq = os.path.join(build, "bench", "messplus_bench_zmq")
    chain = run_json([zmq, "--test", "chain", "--transport", transport, "--stages",
                      str(PIPELINE_HOPS + 1), "--messages", str(args.chain_messages), "--repeat",
                      "3", "--json"], 300)
    rtt = {}
    for rate in args.rates:
        rtt[rate] = run_json([zmq, "--test", "rtt", "--transport", transport, "--rate", str(rate),
                              "--rate-seconds", str(min(args.duration, 5.0)), "--pingpong",
                              "2000", "--max-count", "200000", "--json"], 300)
    return {"chain": chain, "rtt": rtt}


def run_mode(args, build, mode):
    messplus = os.path.join(build, "tools", "messplus")
    transport = "inproc" if mode == "embedded" else mode
    out = {"mode": mode, "transport": transport}
    out["baseline"] = baseline(args, build, transport)
    loads = [("closed", args.concurrency)] + [("open", r) for r in args.rates]
    out["pipeline"] = []
    tmpdir = tempfile.mkdtemp(prefix="mp-bench-")
    try:
        config = os.path.join(tmpdir, "messplus.yaml")
        if mode == "embedded":
            write_config(config, "inproc", tmpdir, {})
            for load in loads:
                out["pipeline"].append(run_json(
                    [messplus, "loadgen", "--embedded", "--config", config] +
                    loadgen_args(args, load), args.duration + args.warmup + 120))
            return out
        metrics = {s: free_port() for s in STAGES}
        write_config(config, transport, tmpdir, metrics)
        procs = Processes(tmpdir)
        try:
            for s in STAGES:
                procs.start(s, [messplus, s, "--config", config])
            for i, m in enumerate(MODELS):
                procs.start(f"worker-{m}", [messplus, "worker", "echo", "--config", config,
                                            "--model", m, "--name", f"w{i}"])
            wait_ready(procs, metrics)
            wait_answering(messplus, config)
            for load in loads:
                out["pipeline"].append(run_json(
                    [messplus, "loadgen", "--config", config] + loadgen_args(args, load),
                    args.duration + args.warmup + 120))
                procs.check_alive()
        finally:
            procs.close()
        return out
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def fmt_rate(x):
    return f"{x / 1000:.1f} k" if x < 1e6 else f"{x / 1e6:.2f} M"


def fmt_lat(lat):
    return " / ".join(f"{lat[k]:.0f}" for k in ("p50", "p90", "p99", "p99_9", "max"))


def print_table(results):
    print("\nThroughput (closed loop, requests/s answered) against the raw PUSH/PULL chain of "
          f"{PIPELINE_HOPS} hops (messages/s at the sink, median of 3):")
    print(f"  {'mode':<10} {'pipeline':>12} {'raw chain':>12} {'ratio':>8}   "
          "latency p50/p90/p99/p99.9/max (us)   errors")
    for r in results:
        p = r["pipeline"][0]
        chain = r["baseline"]["chain"]["chain"][0]["msgs_per_s_median"]
        print(f"  {r['mode']:<10} {fmt_rate(p['throughput_rps']):>12} {fmt_rate(chain):>12} "
              f"{p['throughput_rps'] / chain:>8.3f}   {fmt_lat(p['latency_us']):<36} "
              f"{p['errors_total']}")
    print("\nLatency at fixed rates (open loop, Poisson; from each request's due time, us), "
          "beside the raw ROUTER/DEALER round trip at the same rate:")
    print(f"  {'mode':<10} {'rate':>8} {'achieved':>10}   {'pipeline p50/p90/p99/p99.9/max':<36}"
          f"   {'raw round trip p50/p90/p99/p99.9/max':<36} errors")
    for r in results:
        for p in r["pipeline"][1:]:
            rate = p["target_rate"]
            raw = None
            for key, rt in r["baseline"]["rtt"].items():
                if float(key) == rate:
                    raw = next((t for t in rt["rtt"] if t["mode"] == "fixed-rate"), None)
            raw_text = fmt_lat(raw["latency_us"]) if raw else "-"
            print(f"  {r['mode']:<10} {fmt_rate(rate):>8} {fmt_rate(p['throughput_rps']):>10}   "
                  f"{fmt_lat(p['latency_us']):<36}   {raw_text:<36} {p['errors_total']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", nargs="+", default=["embedded", "ipc", "tcp"],
                    choices=["embedded", "ipc", "tcp"])
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    ap.add_argument("--concurrency", type=int, default=64, help="closed loop: in flight")
    ap.add_argument("--rates", type=float, nargs="+", default=[20000.0],
                    help="open-loop rates (requests/s) for the latency runs")
    ap.add_argument("--chain-messages", type=int, default=1000000)
    ap.add_argument("--json", help="write every raw result here")
    args = ap.parse_args()
    build = os.environ.get("BUILD_DIR", os.path.join(REPO, "build"))
    for binary in ("tools/messplus", "bench/messplus_bench_zmq"):
        if not os.access(os.path.join(build, binary), os.X_OK):
            sys.exit(f"{os.path.join(build, binary)} not built: cmake -S . -B build -G Ninja "
                     "-DCMAKE_BUILD_TYPE=Release && ninja -C build")
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    machine = {"nproc": os.cpu_count(), "cpu": cpu,
               "loadavg_start": open("/proc/loadavg").read().split()[:3],
               "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"machine: {machine['nproc']} CPUs, {cpu}, load average "
          f"{' '.join(machine['loadavg_start'])}, {machine['date_utc']}", file=sys.stderr)
    results = []
    for mode in args.modes:
        print(f"running {mode} ...", file=sys.stderr)
        results.append(run_mode(args, build, mode))
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "args": vars(args), "results": results}, f, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
