"""Reference statistics of equity curves, made by quantstats itself.

Builds equity curves from the fixtures in tests/fixtures/ (three markets' closes, and a long/flat
curve that holds ETH while its close is above its 50-bar mean, so it has flat stretches and zero
returns), writes each as refs/curves/NAME.csv (timestamp,equity) and asks quantstats (version in
requirements.txt) for its figures, at the periods per year tradelab infers for that market:
252 for a market closed at weekends (quantstats' own default), 8,760 for hourly crypto. Writes
refs/metrics.csv: curve, periods, statistic, value. tests/parity/main.rs runs `tradelab stats`
on each curve and compares.

Usage (see README.md): python make_metric_refs.py [out_dir=refs]
"""
import csv
import os
import sys
import warnings

import numpy as np
import pandas as pd
import quantstats as qs

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, '..', 'fixtures')
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'refs')
warnings.filterwarnings('ignore')


def closes(name):
    df = pd.read_csv(os.path.join(FIX, name))
    return pd.Series(df['close'].to_numpy(float), index=pd.to_datetime(df['timestamp'], utc=True))


def long_flat(px, window=50, cash=10_000.0):
    """Hold the market over bar t when its close at t-1 was above its `window`-bar mean."""
    mean = px.rolling(window).mean()
    held = (px > mean).shift(1, fill_value=False).to_numpy()
    ret = px.pct_change().fillna(0.0).to_numpy()
    eq = cash * np.cumprod(np.where(held, 1.0 + ret, 1.0))
    return pd.Series(eq, index=px.index)


CURVES = {
    # name: (equity series, periods per year tradelab infers for it)
    'GOOG_close': (closes('GOOG.csv'), 252),
    'BTCUSDT_1h_close': (closes('BTCUSDT_1h.csv'), 8760),
    'EURUSD_1h_close': (closes('EURUSD_1h.csv'), 252 * 24),
    'ETHUSDT_1h_long_flat': (long_flat(closes('ETHUSDT_1h.csv')), 8760),
}


def figures(eq, periods):
    r = eq.pct_change().dropna()
    return {
        'total_return': float(qs.stats.comp(r)),
        'cagr': float(qs.stats.cagr(r, periods=periods)),
        'ann_volatility': float(qs.stats.volatility(r, periods=periods)),
        'sharpe': float(qs.stats.sharpe(r, periods=periods)),
        'sortino': float(qs.stats.sortino(r, periods=periods)),
        'max_drawdown': -float(qs.stats.max_drawdown(r)),
        'calmar': float(qs.stats.calmar(r, periods=periods)),
    }


def main():
    os.makedirs(os.path.join(OUT, 'curves'), exist_ok=True)
    rows = []
    for name, (eq, periods) in CURVES.items():
        path = os.path.join(OUT, 'curves', name + '.csv')
        with open(path, 'w', newline='') as f:
            w = csv.writer(f, lineterminator='\n')
            w.writerow(['timestamp', 'equity'])
            for t, v in eq.items():
                w.writerow([t.strftime('%Y-%m-%dT%H:%M:%SZ'), repr(float(v))])
        # quantstats reads the curve as written, to the last bit.
        back = pd.read_csv(path)
        eq = pd.Series(back['equity'].to_numpy(float), index=pd.to_datetime(back['timestamp'], utc=True))
        for k, v in figures(eq, periods).items():
            rows.append([name, periods, k, repr(v)])
    with open(os.path.join(OUT, 'metrics.csv'), 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['curve', 'periods', 'statistic', 'value'])
        w.writerows(rows)
    with open(os.path.join(OUT, 'metric_versions.txt'), 'w') as f:
        f.write(f'quantstats {qs.__version__}\npandas {pd.__version__}\nnumpy {np.__version__}\n')


if __name__ == '__main__':
    main()
