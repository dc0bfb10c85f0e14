#!/usr/bin/env bash
# Builds messplus in Release and runs the core benchmarks, writing Google Benchmark JSON.
#
#   bench/run_core.sh OUT.json [extra Google Benchmark flags...]
#
# Defaults: 3 repetitions of every case (the JSON keeps each run and the mean / median /
# stddev / cv aggregates; the console shows the aggregates only), --benchmark_min_time=0.5.
# Later flags win, e.g. `bench/run_core.sh out.json --benchmark_filter=Decide
# --benchmark_repetitions=5`. Environment: BUILD_DIR (default <repo>/build), CMAKE_GENERATOR
# (default Ninja), MESSPLUS_DATA_DIR (default <repo>/../shared/data; the Llama cases are
# skipped without it).
set -euo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: $0 OUT.json [google-benchmark flags...]" >&2
  exit 2
fi
out="$1"
shift

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$repo/build}"
generator="${CMAKE_GENERATOR:-Ninja}"

cmake -S "$repo" -B "$build" -G "$generator" -DCMAKE_BUILD_TYPE=Release -DMESSPLUS_WERROR=ON \
  >/dev/null
cmake --build "$build" --target messplus_bench_core

mkdir -p "$(dirname "$out")"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&2
"$build/bench/messplus_bench_core" \
  --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=false \
  --benchmark_display_aggregates_only=true \
  --benchmark_min_time=0.5 \
  --benchmark_out="$out" \
  --benchmark_out_format=json \
  "$@"
echo "wrote $out" >&2
