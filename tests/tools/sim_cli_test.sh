#!/usr/bin/env bash
# `messplus sim` from the command line: the stable JSON keys, and one clear one-line error
# (naming the file, row and column) with a non-zero exit for every kind of bad input.
# Usage: sim_cli_test.sh <path to messplus>
set -u
bin="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_error <name> <pattern...> -- <messplus args...>: non-zero exit, exactly one line on
# stderr, matching every pattern.
expect_error() {
  local name="$1"; shift
  local patterns=()
  while [ "$1" != "--" ]; do patterns+=("$1"); shift; done
  shift
  local out err code
  out=$("$bin" "$@" 2>"$dir/err"); code=$?
  err=$(cat "$dir/err")
  if [ "$code" -eq 0 ]; then fail "$name: exit 0"; return; fi
  if [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ]; then fail "$name: not one line: $err"; fi
  for p in "${patterns[@]}"; do
    printf '%s' "$err" | grep -q -- "$p" || fail "$name: '$p' not in: $err"
  done
  echo "ok: $name -> $err"
}

good="$dir/good.csv"
cat >"$good" <<'CSV'
id,benchmark,prompt,score__small,energy_j__small,score__large,energy_j__large
a,toy,"what is 1+1?",1,10,1,100
b,toy,"name a prime, please",0,11,1,90
c,toy,"say ""hi""",1,9,1,110
d,toy,"multi
line",0,10,0,95
CSV

json=$("$bin" sim --data "$good" --alpha 0.6 --seeds 1 --json) || fail "good file: non-zero exit"
for key in requests alpha avg_cost avg_satisfaction time_avg_satisfaction sla_met model_share \
           exploration_share final_q baselines always:small always:large educated_guess oracle \
           alpha_oracle; do
  printf '%s' "$json" | grep -q "\"$key\"" || fail "JSON lacks key $key"
done
json=$("$bin" sim --data "$good" --alpha 0.6 --seeds 1 2 --json) || fail "two seeds: non-zero exit"
printf '%s' "$json" | grep -q '"runs"' || fail "several seeds: JSON lacks runs"
"$bin" sim --data "$good" --alpha 0.6 --seeds 1 --trace "$dir/trace.csv" >/dev/null || fail "trace"
head -1 "$dir/trace.csv" |
  grep -q '^t,q,running_satisfaction,served_model,cost,explored,id,satisfaction,v,target,p__' ||
  fail "trace header"
[ "$(wc -l <"$dir/trace.csv")" -eq 5 ] || fail "trace rows"
# Each row of the file is served once; the trace names it and the served answer's score.
awk -F, 'NR > 1 {
  want["a", "small"] = 1; want["b", "small"] = 0; want["c", "small"] = 1; want["d", "small"] = 0
  want["a", "large"] = 1; want["b", "large"] = 1; want["c", "large"] = 1; want["d", "large"] = 0
  if (!(($7, $4) in want) || want[$7, $4] != $8) { print "bad trace row: " $0; bad = 1 }
  seen[$7]++
} END { exit bad || length(seen) != 4 }' "$dir/trace.csv" || fail "trace ids and satisfaction"

printf 'id,benchmark,prompt,score__small,score__large,energy_j__large\n' >"$dir/nocol.csv"
printf 'a,toy,x,1,1,100\n' >>"$dir/nocol.csv"
expect_error "missing cost column" "nocol.csv" "energy_j__small" -- sim --data "$dir/nocol.csv" --cost energy_j

sed 's/^b,toy,"name a prime, please",0,11/b,toy,"name a prime, please",0,eleven/' "$good" >"$dir/text.csv"
expect_error "non-numeric cell" "text.csv" ":3" "energy_j__small" -- sim --data "$dir/text.csv"

sed 's/^a,toy,"what is 1+1?",1,10/a,toy,"what is 1+1?",nan,10/' "$good" >"$dir/nan.csv"
expect_error "NaN cell" "nan.csv" ":2" "score__small" -- sim --data "$dir/nan.csv"

sed 's/^a,toy,"what is 1+1?",1,10/a,toy,"what is 1+1?",,10/' "$good" >"$dir/empty_cell.csv"
expect_error "empty cell" "empty_cell.csv" ":2" "score__small" -- sim --data "$dir/empty_cell.csv"

: >"$dir/empty.csv"
expect_error "empty file" "empty.csv" -- sim --data "$dir/empty.csv"

expect_error "unknown model" "nosuch" -- sim --data "$good" --models nosuch large
expect_error "missing file" "does_not_exist.csv" -- sim --data "$dir/does_not_exist.csv"
expect_error "bad constant cost" "--constant-cost" -- sim --data "$good" --constant-cost small=abc
expect_error "unknown policy" "no-such-policy" -- sim --data "$good" --policy no-such-policy

# `messplus eval` on a custom case: per-seed figures in the JSON, and the comparison with paper
# restricted to the runs where paper met alpha, counted from those figures.
awk 'BEGIN {
  print "id,benchmark,prompt,score__small,energy_j__small,score__large,energy_j__large"
  for (i = 0; i < 400; ++i)
    printf "r%d,toy,question %d about topic %d,%d,10,%d,100\n", i, i, i % 7, (i % 5 < 3), (i % 10 < 9)
}' >"$dir/many.csv"
# At alpha 0.8 paper meets alpha in some of these runs and not in others.
"$bin" eval --data "$dir/many.csv" --alpha 0.8 --policies adaptive paper --seeds 1 2 3 --json \
  >"$dir/eval.json" || fail "eval --json: non-zero exit"
"$bin" eval --data "$dir/many.csv" --alpha 0.8 --policies adaptive paper --seeds 1 2 3 \
  >"$dir/eval.txt" || fail "eval: non-zero exit"
python3 - "$dir/eval.json" "$dir/eval.txt" <<'PY' || fail "eval per-seed figures"
import json, re, sys
rows = json.load(open(sys.argv[1]))
paper = next(r for r in rows if r["policy"] == "paper")
for r in rows:
    assert len(r["seed_avg_cost"]) == 3 and len(r["seed_sla_met"]) == 3, r
    assert sum(r["seed_sla_met"]) == r["sla_met"], r
    assert abs(sum(r["seed_avg_cost"]) / 3 - r["avg_cost"]) < 1e-9 * max(1.0, r["avg_cost"]), r
kept = sum(paper["seed_sla_met"])
text = open(sys.argv[2]).read()
adaptive = next(r for r in rows if r["policy"] == "adaptive")
m = re.search(r"on the (\d+) of 3 runs where paper met alpha: ([0-9.]+) by total cost", text)
if kept == 0:
    assert m is None, text
else:
    assert m and int(m.group(1)) == kept, text
    met = [k for k in range(3) if paper["seed_sla_met"][k]]
    ratio = sum(adaptive["seed_avg_cost"][k] for k in met) / sum(paper["seed_avg_cost"][k] for k in met)
    assert abs(float(m.group(2)) - ratio) < 6e-4, (ratio, text)
PY
if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all sim CLI checks passed"
