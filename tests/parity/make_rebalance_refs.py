"""Reference numbers for rebalancing, made by vectorbt itself.

Each case holds a portfolio of several symbols at target weights, traded back to them on a
calendar at the bar's close: vectorbt 1.2.0's `Portfolio.from_orders` with
`size_type='targetpercent'`, one group sharing its cash, and `call_seq='auto'` (sales before
purchases, as tradelab sends them). The weights are given on the first bar and on every calendar
point (the first bar of a new month or Monday-to-Sunday week, or every n bars), NaN elsewhere.

vectorbt sizes a target percent as `w * value / price` units, its fee then paid from cash (the
last purchase trimmed to the cash left); tradelab keeps each symbol's position and its fee within
`w * value` (see src/execution.rs). Without fees the two are the same rule. With fees each case
also runs in vectorbt with tradelab's rule given as the order function (`sizing` =
`tradelab_rule`: `Portfolio.from_order_func`, flexible, each symbol's order sized from vectorbt's
own cash and positions at that moment, reductions first, then in symbol order), so that
vectorbt's accounting of fees, cash and value is compared to the last digits as well.
Data: fixtures cut from ../shared/data under tests/fixtures/ (Binance daily and hourly crypto,
daily US equities), aligned on the timestamps every symbol has.

Writes, under refs/rebalance/:

  cases.csv   one row per case: id, dataset, symbols and weights (space-separated, in the same
              order, or inverse_vol:WINDOW), calendar (monthly, weekly or every_N), fee rate, sizing (target_percent
              or tradelab_rule), final value, orders
  values.csv  case, bar, the portfolio's value at that bar's close
  orders.csv  case, bar, symbol, signed size (units), price, fee

Usage (see README.md): python make_rebalance_refs.py [out_dir=refs/rebalance]
"""
import csv
import os
import sys
import warnings

import numpy as np
import pandas as pd
import vectorbt as vbt
from numba import njit
from vectorbt.portfolio import nb as pnb
from vectorbt.portfolio.enums import NoOrder

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, '..', 'fixtures')
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'refs', 'rebalance')
warnings.filterwarnings('ignore')

# dataset: (folder under tests/fixtures, symbols as file stems, starting cash)
DATASETS = {
    'crypto_1d': ('binance_1d', ['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'XRPUSDT'], 100_000.0),
    'crypto_1h': ('.', ['BTCUSDT_1h', 'ETHUSDT_1h'], 100_000.0),
    'equities_1d': ('equities_1d', ['GOOG', 'NVDA', 'ORCL'], 10_000.0),
}


def case(dataset, weights, calendar='none', fee=0.0, band=np.inf, relative_band=np.inf, trade_to='target',
         tolerance=0.002):
    return dict(dataset=dataset, weights=weights, calendar=calendar, fee=fee, band=band,
                relative_band=relative_band, trade_to=trade_to, tolerance=tolerance)


W4 = [0.4, 0.3, 0.2, 0.1]
# On a calendar (each also with vectorbt's own target percents).
CALENDAR_CASES = [
    case('crypto_1d', W4, 'monthly'),
    case('crypto_1d', W4, 'monthly', 0.001),
    case('crypto_1d', [0.25, 0.25, 0.25, 0.25], 'weekly'),
    case('crypto_1d', [0.225, 0.225, 0.225, 0.225], 'weekly', 0.0005),
    case('crypto_1h', [0.7, 0.3], 'every_24'),
    case('crypto_1h', [0.5, 0.3], 'every_24', 0.001),
    case('equities_1d', [0.5, 0.3, 0.2], 'monthly'),
    case('equities_1d', [0.5, 0.3, 0.2], 'weekly', 0.002),
]
# Inverse-volatility weights: 1 / the rolling standard deviation of log returns over the window
# (sample, not annualized), normalized; equal weights until every symbol has one (tradelab's
# `weights = "inverse_vol"`, src/rebalance.rs), given to vectorbt's own target percents.
INVVOL_CASES = [
    case('crypto_1d', 'inverse_vol:30', 'monthly'),
    case('crypto_1d', 'inverse_vol:30', 'weekly', 0.001),
]
# When a weight drifts out of its band, judged at each close (vectorbt has no band trigger of its
# own: the trigger is the order function's, as tradelab's rebalance.rs states it).
BAND_CASES = [
    case('crypto_1d', W4, band=0.05),
    case('crypto_1d', W4, fee=0.001, band=0.05),
    case('crypto_1d', W4, fee=0.001, band=0.05, relative_band=0.25),
    case('crypto_1d', W4, fee=0.001, band=0.05, trade_to='band_edge', tolerance=0.005),
    case('crypto_1h', [0.5, 0.5], fee=0.001, band=0.02),
    case('equities_1d', [0.5, 0.3, 0.2], fee=0.002, band=0.05, trade_to='band_edge'),
]


def closes(dataset):
    folder, syms, _ = DATASETS[dataset]
    cols = {}
    for s in syms:
        df = pd.read_csv(os.path.join(FIX, folder, s + '.csv'), index_col='timestamp')
        cols[s] = df['close']
    c = pd.concat(cols, axis=1, join='inner')
    c.index = pd.to_datetime(c.index)
    return c


def due(index, calendar):
    """The bars where the weights are given: the first, and every calendar point."""
    n = len(index)
    if calendar.startswith('every_'):
        k = int(calendar.split('_')[1])
        return np.arange(n) % k == 0
    days = (index - pd.Timestamp('1970-01-01', tz='UTC')).days.values
    if calendar == 'monthly':
        period = index.year.values * 12 + index.month.values - 1
    elif calendar == 'weekly':
        period = (days + 3) // 7  # weeks Monday to Sunday; 1970-01-01 was a Thursday
    else:
        raise ValueError(calendar)
    return np.r_[True, period[1:] != period[:-1]]


@njit
def tradelab_rule_nb(c, weights, due, has_cal, band, edge, tol, fee, done, aim, cursor):
    """The next order of bar c.i under tradelab's rebalancing rules, from vectorbt's state now:
    the trigger (the first bar, a calendar point, a weight out of its band) and the aims are
    decided from the weights at the close before any order; each order is then sized from the
    cash and positions left by the orders before it."""
    i = c.i
    n = c.to_col - c.from_col
    cash = c.last_cash[c.group]
    value = cash
    for k in range(n):
        value += c.last_position[c.from_col + k] * c.close[i, c.from_col + k]
    if c.call_idx == 0:
        done[:] = False
        aim[:] = np.nan
        cursor[0] = 0
        out = False
        for k in range(n):
            w = c.last_position[c.from_col + k] * c.close[i, c.from_col + k] / value
            out = out or abs(w - weights[k]) > band[k] + 1e-12
        has_band = np.isfinite(band[0])
        if i == 0 or (has_cal and due[i] and (not has_band or out)) or (not has_cal and out):
            for k in range(n):
                w = c.last_position[c.from_col + k] * c.close[i, c.from_col + k] / value
                d = w - weights[k]
                a = weights[k]
                if edge and i > 0:
                    a = np.nan if abs(d) <= band[k] else weights[k] + np.sign(d) * max(band[k] - tol, 0.0)
                if abs(a - w) * value >= 1e-9 * value:
                    aim[k] = a
    # tradelab's book: a first pass in symbol order tries the orders that reduce a position
    # (each judged when the pass reaches it), a second pass every order left, in symbol order.
    while cursor[0] < 2 * n:
        k = cursor[0] % n
        first_pass = cursor[0] < n
        cursor[0] += 1
        col = c.from_col + k
        if done[k] or np.isnan(aim[k]):
            continue
        p, h = c.close[i, col], c.last_position[col]
        wants = aim[k] * value / p - h
        if first_pass and not (h != 0.0 and np.sign(wants) != np.sign(h)):
            continue
        done[k] = True
        if abs(wants) <= 1e-12 * (1.0 + abs(h)):
            continue
        # The largest q with q p + fee p |q - h| <= aim value (long targets, h >= 0).
        budget = aim[k] * value
        if budget >= h * p:
            q = (budget + fee * p * h) / (p * (1.0 + fee))
        else:
            q = (budget - fee * p * h) / (p * (1.0 - fee))
        d = q - h
        if d > 0.0:
            d = min(d, cash / (p * (1.0 + fee)))
        if d == 0.0:
            continue
        return col, pnb.order_nb(size=d, price=p, fees=fee)
    return -1, NoOrder


def main():
    cases, values, orders = [], [], []
    runs = ([(c, 'target_percent') for c in CALENDAR_CASES] + [(c, 'tradelab_rule') for c in CALENDAR_CASES if c['fee']]
            + [(c, 'tradelab_rule') for c in BAND_CASES] + [(c, 'target_percent') for c in INVVOL_CASES])
    for cid, (k, sizing) in enumerate(runs):
        dataset, calendar, fee = k['dataset'], k['calendar'], k['fee']
        close = closes(dataset)
        syms, cash = DATASETS[dataset][1], DATASETS[dataset][2]
        at = due(close.index, calendar) if calendar != 'none' else np.zeros(len(close), dtype=np.bool_)
        if isinstance(k['weights'], str):
            window = int(k['weights'].split(':')[1])
            vol = np.log(close).diff().rolling(window).std().values
            inv = 1.0 / vol
            ready = np.isfinite(inv).all(axis=1)[:, None]
            per_bar = np.where(ready, inv / np.where(ready, inv, 1.0).sum(axis=1)[:, None], 1.0 / len(syms))
            weights = per_bar[0]
        else:
            weights = np.array(k['weights'])
            per_bar = np.broadcast_to(weights, close.shape)
        if sizing == 'target_percent':
            size = pd.DataFrame(np.where(at[:, None], per_bar, np.nan), index=close.index, columns=syms)
            pf = vbt.Portfolio.from_orders(close, size, size_type='targetpercent', group_by=True, cash_sharing=True,
                                           call_seq='auto', fees=fee, init_cash=cash, freq='1D')
        else:
            # A symbol's band: the smaller of the absolute and the relative one.
            band = np.minimum(k['band'], k['relative_band'] * np.abs(weights))
            pf = vbt.Portfolio.from_order_func(close, tradelab_rule_nb, weights, at, calendar != 'none', band,
                                               k['trade_to'] == 'band_edge', k['tolerance'], fee,
                                               np.zeros(len(syms), dtype=np.bool_), np.zeros(len(syms)),
                                               np.zeros(1, dtype=np.int64),
                                               flexible=True, group_by=True, cash_sharing=True, init_cash=cash,
                                               freq='1D', max_orders=len(close) * len(syms))
        value = pf.value().values
        rec = pf.orders.records_arr
        opt = lambda x: '' if np.isinf(x) else repr(x)
        spec = k['weights'] if isinstance(k['weights'], str) else ' '.join(repr(float(w)) for w in weights)
        cases.append((cid, dataset, ' '.join(syms), spec, calendar, repr(fee),
                      opt(k['band']), opt(k['relative_band']), k['trade_to'], repr(k['tolerance']), sizing,
                      repr(float(value[-1])), len(rec)))
        values.extend((cid, i, repr(float(v))) for i, v in enumerate(value))
        for r in sorted(rec, key=lambda r: (r['idx'], r['id'])):
            sign = 1 if r['side'] == 0 else -1
            orders.append((cid, int(r['idx']), syms[int(r['col'])], repr(float(sign * r['size'])),
                           repr(float(r['price'])), repr(float(r['fees']))))
        print(cid, dataset, calendar, fee, k['band'], k['trade_to'], sizing, len(close), 'bars', len(rec), 'orders', file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    for name, head, rows in [
        ('cases.csv', ['id', 'dataset', 'symbols', 'weights', 'calendar', 'fee', 'band', 'relative_band',
                       'trade_to', 'tolerance', 'sizing', 'final_value', 'orders'], cases),
        ('values.csv', ['case', 'bar', 'value'], values),
        ('orders.csv', ['case', 'bar', 'symbol', 'size', 'price', 'fee'], orders),
    ]:
        with open(os.path.join(OUT, name), 'w', newline='') as f:
            w = csv.writer(f, lineterminator='\n')
            w.writerow(head)
            w.writerows(rows)
    with open(os.path.join(OUT, 'versions.txt'), 'w') as f:
        f.write(f'vectorbt {vbt.__version__}\npandas {pd.__version__}\nnumpy {np.__version__}\n')


if __name__ == '__main__':
    main()
