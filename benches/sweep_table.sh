#!/usr/bin/env bash
# The sweep scaling table of README's Performance section: SMA-cross grids (long only, fills at
# the signal bar's close, fees 0.1%, as experiments/sma_sweep.toml) over generated one-minute
# bars, timed from the command line with peak memory (GNU time). Prints one markdown row per run.
#
#   bash benches/sweep_table.sh [WORK_DIR]     # default /tmp/tradelab_sweep_table
#
# Bars come from `research` bin bench_bars (seeded Student-t random walks, parameterised apart
# from `tradelab data synth`). Needs GNU time at /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/tradelab_sweep_table}
mkdir -p "$work"
cargo build --release -q --bin tradelab
cargo build --release -q -p tradelab-research --bin bench_bars
bin=target/release
for spec in "10000 1" "100000 1" "1000000 1" "100000 10" "1000000 10"; do
  set -- $spec
  d="$work/bars_${1}_$2"
  [ -d "$d" ] || "$bin/bench_bars" "$d" "$1" "$2" 2>/dev/null
done

# experiment NAME DATA FAST_RANGE SLOW_RANGE METHOD FRACTION: a search over fast and slow
# (fast < slow).
experiment() {
  cat > "$work/$1.toml" <<EOF
[experiment]
name = "$1"
seed = 1
[data]
path = "$2"
[portfolio]
initial_cash = 100
[decision]
fraction = $6
[[signals.technical]]
kind = "sma_cross"
fast = 2
slow = 10
mode = "event"
[execution]
fill = "close"
fee_bps = 10
min_qty = 1e-8
[optimize]
method = "$5"
objective = "total_return"
budget = 100000
rules = ["signals.technical[0].fast < signals.technical[0].slow"]
[optimize.space]
"signals.technical[0].fast" = $3
"signals.technical[0].slow" = $4
[optimize.walk_forward]
windows = 4
train_ratio = 3
EOF
}

echo "| bars | symbols | candidates | search | seconds (whole command) | search seconds (optimize.json) | peak MB | ms per candidate |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
row() { # name bars symbols fast_range slow_range method fraction [walk-forward]
  local name=$1 bars=$2 syms=$3 cmd=${8:-optimize}
  experiment "$name" "$work/bars_${bars}_$syms" "$4" "$5" "$6" "$7"
  rm -rf "$work/out"
  local t
  t=$( { /usr/bin/time -f "%e %M" "$bin/tradelab" "$cmd" "$work/$name.toml" --quiet --out "$work/out" >/dev/null; } 2>&1 | tail -1)
  local n secs what=$6
  if [ "$cmd" = optimize ]; then
    local json
    json=$(ls "$work"/out/"$name"/*/optimize.json)
    n=$(grep -m1 '"trials"' "$json" | tr -dc '0-9')
    secs=$(grep '"seconds"' "$json" | tr -dc '0-9.')
  else
    # Four windows, each searching the budget on its train part and running its test part.
    n=$(cat "$work"/out/"${name}_walk_forward"/*/window_*/trials.csv | grep -vc '^trial,')
    secs=${t%% *}
    what="walk-forward ($6, 4 windows)"
  fi
  set -- $t
  echo "| $bars | $syms | $n | $what | $1 | $(printf %.2f "$secs") | $(( $2 / 1024 )) | $(echo "$secs $n" | awk '{printf "%.3f", 1000 * $1 / ($2 > 0 ? $2 : 1)}') |"
}
row g500_100k 100000 1 "[2, 11]" "[12, 61]" grid 1
row g4950_100k 100000 1 "[2, 101]" "[2, 101]" grid 1
row r100k_100k 100000 1 "[2, 400]" "[401, 2000]" random 1
row g500_1m 1000000 1 "[2, 11]" "[12, 61]" grid 1
row g4950_1m 1000000 1 "[2, 101]" "[2, 101]" grid 1
row g500_100k_10 100000 10 "[2, 11]" "[12, 61]" grid 0.1
row g4950_100k_10 100000 10 "[2, 101]" "[2, 101]" grid 0.1
row g500_1m_10 1000000 10 "[2, 11]" "[12, 61]" grid 0.1
row wf500_1m 1000000 1 "[2, 11]" "[12, 61]" grid 1 walk-forward
# Memory flat in candidates: 100,000 and 1,000,000 pairs on 10,000 bars (trials stream to disk).
row g100k_10k 10000 1 "[2, 101]" "[1002, 2001]" grid 1
row g1m_10k 10000 1 "[2, 1001]" "[1002, 2001]" grid 1
