#!/usr/bin/env bash
# The honest value of experiments/model_btc.toml on real bars: walk-forward of the strategy with
# the model, of the same strategy without it (the SMA-cross signal alone), and of the model
# alone; then buy and hold of BTCUSDT over the same out-of-sample span. Prints one line each.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/model_value}
bin=target/release/tradelab
exp=experiments/model_btc.toml
"$bin" -q walk-forward "$exp" --out "$out/with_model"
"$bin" -q walk-forward "$exp" --out "$out/without_model" \
  --set 'optimize.space={ "decision.min_confidence" = [0.5, 0.75] }' --set 'signals.models=[]'
"$bin" -q walk-forward "$exp" --out "$out/model_alone" --set 'signals.technical=[]'
for k in with_model without_model model_alone; do
  f=$(ls -d "$out/$k"/*/* | tail -1)/walk_forward.json
  python3 - "$f" "$k" <<'PY'
import json, sys
w = json.load(open(sys.argv[1])); s = w['stitched']
print('%-14s out of sample: sharpe %.3f, max drawdown %.1f%%, total return %.1f%%' % (sys.argv[2], s['sharpe'], 100 * s['max_drawdown'], 100 * s['total_return']))
PY
done
# Buy and hold of BTCUSDT over the stitched out-of-sample span, hourly simple returns, Sharpe annualized by 8760.
f=$(ls -d "$out/with_model"/*/* | tail -1)/oos_equity.csv
python3 - "$f" ../shared/data/binance_usdt_1h/BTCUSDT.csv <<'PY'
import csv, math, sys
oos = list(csv.DictReader(open(sys.argv[1])))
start, end = oos[0]['timestamp'], oos[-1]['timestamp']
px = [float(r['close']) for r in csv.DictReader(open(sys.argv[2])) if start <= r['timestamp'] <= end]
r = [b / a - 1 for a, b in zip(px, px[1:])]
m = sum(r) / len(r); sd = math.sqrt(sum((x - m) ** 2 for x in r) / (len(r) - 1))
peak, dd = px[0], 0.0
for p in px:
    peak = max(peak, p); dd = max(dd, 1 - p / peak)
print('%-14s out of sample: sharpe %.3f, max drawdown %.1f%%, total return %.1f%% (%s to %s)' % ('buy_and_hold', m / sd * math.sqrt(8760), 100 * dd, 100 * (px[-1] / px[0] - 1), start, end))
PY
