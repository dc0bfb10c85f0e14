#!/usr/bin/env bash
# Instruction counts per request of every thread of the embedded pipeline (callgrind), and the
# top functions by self cost. Deterministic enough to compare commits (+-1%), unlike wall time
# on a shared 2-vCPU VM.
#
#   bench/profile_pipeline.sh [OUT_DIR] [messplus_profile_pipeline flags...]
#
# Defaults: --requests 5000 --warmup 2000 --concurrency 32 (about 25 s under valgrind).
# Writes OUT_DIR/cg.out-NN (callgrind, one file per thread, whole run) and prints the summary:
# each thread's total over warm-up + measured requests, divided by their number (start-up,
# a few million instructions, is included and negligible at these counts). Kernel time
# (syscalls, wake-ups) is not counted by callgrind: messplus_profile_pipeline's own
# cpu_us_per_request (run natively) shows it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$repo/build}"
out="${1:-/tmp/messplus-profile}"
shift || true
mkdir -p "$out"
rm -f "$out"/cg.out*
# Defaults for the flags the caller did not give (the binary refuses a flag given twice).
args=("$@")
for default in "--requests 5000" "--warmup 2000" "--concurrency 32"; do
  flag="${default%% *}"
  [[ " $* " == *" $flag "* ]] || args+=($default)
done
args+=(--callgrind-bracket=false)
timeout -k 10 900 valgrind --tool=callgrind --separate-threads=yes \
  --callgrind-out-file="$out/cg.out" "$build/bench/messplus_profile_pipeline" "${args[@]}" \
  2> "$out/valgrind.log"
requests=0
warmup=0
for ((i = 0; i < ${#args[@]}; ++i)); do
  [[ "${args[$i]}" == --requests ]] && requests="${args[$((i + 1))]}"
  [[ "${args[$i]}" == --warmup ]] && warmup="${args[$((i + 1))]}"
done
requests=$((requests + warmup))
python3 - "$out" "$requests" <<'PY'
import glob, re, subprocess, sys
out, requests = sys.argv[1], int(sys.argv[2])
files = sorted(glob.glob(out + "/cg.out-*"))
# The first marker found names the thread (the main thread also constructs the stages, so the
# client's marker goes first and the stages are recognised by their message handlers).
markers = [("Runner::Run", "loadgen client (main)"), ("IngestStage::OnMessage", "ingest"),
           ("EmbedStage::OnMessage", "embed"), ("RouteStage::OnMessage", "route"),
           ("DispatchStage::OnMessage", "dispatch"), ("FeedbackStage::OnMessage", "feedback"),
           ("ModelWorker::Run", "echo workers (3)")]
rows, total = [], 0
for f in files:
    text = open(f, errors="replace").read()
    ir = 0
    for line in text.splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            ir = int(line.split()[1]); break
    if ir == 0: continue
    name = "other (zmq I/O, reaper)"
    for marker, label in markers:
        if marker in text: name = label; break
    rows.append((name, ir)); total += ir
agg = {}
for name, ir in rows: agg[name] = agg.get(name, 0) + ir
print(f"instructions per request (whole run / {requests} requests):")
for name, ir in sorted(agg.items(), key=lambda x: -x[1]):
    print(f"  {name:<24} {ir / requests:10.0f}")
print(f"  {'total':<24} {total / requests:10.0f}")
PY
