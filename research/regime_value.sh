#!/usr/bin/env bash
# Walk-forward of research/experiments/regime_value.toml with and without its regime overrides,
# on real bars from ../shared/data; prints the stitched out-of-sample figures of each.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/regime_value}
bin=target/release/tradelab
"$bin" -q walk-forward research/experiments/regime_value.toml --out "$out/with"
"$bin" -q walk-forward research/experiments/regime_value.toml --out "$out/without" --set 'regime.overrides={}'
for k in with without; do
  f=$(ls -d "$out/$k"/*/* | tail -1)/walk_forward.json
  python3 -c "import json,sys; w=json.load(open('$f')); s=w['stitched']; d=w['stitched_default']; print('$k overrides: optimized sharpe %.3f, max drawdown %.1f%%, total return %.1f%% | own windows 24/96: sharpe %.3f, drawdown %.1f%%' % (s['sharpe'], 100*s['max_drawdown'], 100*s['total_return'], d['sharpe'], 100*d['max_drawdown']))"
done
