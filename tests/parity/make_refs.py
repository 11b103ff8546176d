"""Reference numbers for tradelab's parity suite, made by the peers themselves.

Runs SMA-cross strategies in backtesting.py, backtrader and vectorbt (versions pinned in
requirements.txt) on the fixtures in tests/fixtures/ and writes, under refs/:

  cases.csv    one row per case: its id, settings, the peer's final equity and trade count
  signals.csv  the bars where the peer's strategy acted: case id, bar, dir (+1 long, -1 short,
               0 flat), decided at that bar's close; tradelab replays them as a signal file
  trades.csv   the peer's trades: case id, entry/exit bar (exit -1 while open at the end), size
               (signed units), entry/exit price, fees
  btpy_stats.csv  backtesting.py's own statistics of its cases: case id, closed trades, win rate,
               best and worst trade, SQN (over closed trades) and max drawdown, as fractions
  vbt_stats.csv   vectorbt's own statistics of its cases, over closed trades (`pf.trades.closed`):
               case id, closed trades, win rate, profit factor, expectancy, SQN; with the
               portfolio's max drawdown (a fraction) and the fees of all its orders

Usage (see README.md): python make_refs.py [out_dir=refs]
"""
import csv
import os
import sys
import warnings

os.environ['TQDM_DISABLE'] = '1'  # backtesting.py's progress bars

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, '..', 'fixtures')
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'refs')
warnings.filterwarnings('ignore')

# file, starting cash (enough for whole units of each market)
DATASETS = {
    'GOOG': ('GOOG.csv', 10_000.0),
    'BTCUSDT_1h': ('BTCUSDT_1h.csv', 1_000_000.0),
    'EURUSD_1h': ('EURUSD_1h.csv', 10_000.0),
}
PAIRS = [(5, 20), (10, 30), (10, 50), (15, 40), (20, 50), (20, 100), (30, 80), (50, 150)]
GRID = [(f, s) for f in range(5, 51, 5) for s in range(10, 101, 10) if f < s]  # backtesting.py docs


def load(name):
    df = pd.read_csv(os.path.join(FIX, DATASETS[name][0]))
    df.index = pd.to_datetime(df['timestamp'])
    df = df.drop(columns=['timestamp'])
    df.columns = ['Open', 'High', 'Low', 'Close', 'Volume']
    return df


cases, signals, trades, btpy_stats, vbt_stats = [], [], [], [], []


def add_case(peer, dataset, fast, slow, v, final_equity, sig, tr):
    cid = len(cases)
    row = dict(id=cid, peer=peer, dataset=dataset, fast=fast, slow=slow, **v,
               final_equity=repr(float(final_equity)), trades=len(tr))
    cases.append(row)
    signals.extend((cid, b, d) for b, d in sig)
    trades.extend((cid, *t) for t in tr)


# ---------------------------------------------------------------- backtesting.py
import backtesting
from backtesting import Backtest, Strategy
from backtesting.lib import FractionalBacktest, crossover


def sma(x, n):
    return pd.Series(x).rolling(n).mean()


class SmaCross(Strategy):
    fast = 10
    slow = 20
    long_short = True
    sl = 0.0       # relative to the entry fill, set once the entry has filled
    tp = 0.0       # relative to the entry fill, given with the order (trade_on_close only)
    frac = 0.0     # size as a fraction of the margin available (0: backtesting.py's default, all)
    limit = 0.0    # long only, by limit orders this far from the deciding close (0: market orders)
    on_close = False

    def init(self):
        self.s1 = self.I(sma, self.data.Close, self.fast)
        self.s2 = self.I(sma, self.data.Close, self.slow)
        self.log = []
        self.held = 0

    def sized(self):
        return dict(size=self.frac) if self.frac else {}

    def next(self):
        i = len(self.data) - 1
        for t in self.trades:
            if self.sl and t.sl is None:
                t.sl = t.entry_price * (1 - self.sl) if t.is_long else t.entry_price * (1 + self.sl)
        c = self.data.Close[-1]
        if self.limit:
            # A cross replaces whatever still waits: enter below the close, leave above it.
            up, down = crossover(self.s1, self.s2), crossover(self.s2, self.s1)
            if up or down:
                for o in self.orders:
                    o.cancel()
                self.log.append((i, 1 if up else 0))
            if up and self.position:
                self.held += 1  # the exit never filled: still long (tradelab re-targets here)
            if up and not self.position:
                self.buy(limit=c * (1 - self.limit))
            elif down and self.position:
                self.sell(size=self.position.size, limit=c * (1 + self.limit))
            return
        if crossover(self.s1, self.s2):
            self.log.append((i, 1))
            self.position.close()
            self.buy(tp=c * (1 + self.tp) if self.tp else None, **self.sized())
        elif crossover(self.s2, self.s1):
            if self.long_short:
                self.log.append((i, -1))
                self.position.close()
                self.sell(tp=c * (1 - self.tp) if self.tp else None, **self.sized())
            else:
                self.log.append((i, 0))
                self.position.close()


def run_btpy(dataset, fast, slow, v, df, cash):
    kw = dict(cash=cash, commission=v['fee'], trade_on_close=v['fill'] == 'close', finalize_trades=False)
    if v['lot'] != 1:
        bt = FractionalBacktest(df, SmaCross, fractional_unit=v['lot'], **kw)
    else:
        bt = Backtest(df, SmaCross, **kw)
    st = bt.run(fast=fast, slow=slow, long_short=v['long_short'], sl=v['stop_loss'], tp=v['take_profit'],
                frac=float(v['size'][4:]) if v['size'].startswith('frac') else 0.0, limit=v.get('limit', 0.0))
    strat = st['_strategy']
    tr = []
    for _, t in st['_trades'].iterrows():
        tr.append((int(t.EntryBar), int(t.ExitBar), repr(float(t.Size)), repr(float(t.EntryPrice)),
                   repr(float(t.ExitPrice)), repr(float(t.Commission))))
    u = v['lot']
    for t in strat._broker.trades:  # still open at the end: in equity, not in the trade table
        tr.append((int(t.entry_bar), -1, repr(float(t.size * u)), repr(float(t.entry_price / u)), '', ''))
    btpy_stats.append((len(cases), int(st['# Trades']), repr(float(st['Win Rate [%]']) / 100),
                       repr(float(st['Best Trade [%]']) / 100), repr(float(st['Worst Trade [%]']) / 100),
                       repr(float(st['SQN'])), repr(-float(st['Max. Drawdown [%]']) / 100)))
    add_case('backtesting', dataset, fast, slow, dict(v, held=strat.held), st['Equity Final [$]'], strat.log, tr)


def btpy_variant(name, long_short, fill, fee, lot=1, stop_loss=0.0, take_profit=0.0, size='all', limit=0.0):
    return dict(variant=name, long_short=long_short, fill=fill, fee=fee, lot=lot,
                stop_loss=stop_loss, take_profit=take_profit, size=size, limit=limit)


GRID_V = btpy_variant('docgrid', True, 'next_open', 0.002)
BTPY_VARIANTS = [
    btpy_variant('lo_open_fee10', False, 'next_open', 0.001),
    btpy_variant('ls_close_nofee', True, 'close', 0.0),
    btpy_variant('ls_open_sl3', True, 'next_open', 0.002, stop_loss=0.03),
    btpy_variant('lo_close_tp5', False, 'close', 0.001, take_profit=0.05),
    btpy_variant('ls_open_frac', True, 'next_open', 0.001, lot=0.001),
    # `size=f`: whole units of a fraction f of the margin available, after the commission.
    btpy_variant('lo_open_size50', False, 'next_open', 0.001, size='frac0.5'),
    btpy_variant('ls_open_size30', True, 'next_open', 0.002, size='frac0.3'),
    # Limit orders, long only: buy at 0.5% (1%) under the deciding close, sell that far above it,
    # from the next bar on (at the open when it is already through), until the next cross.
    btpy_variant('lo_limit50', False, 'next_open', 0.001, limit=0.005),
    btpy_variant('lo_limit100', False, 'next_open', 0.002, limit=0.01),
]

# ---------------------------------------------------------------- backtrader
import backtrader as btr


class BtrSmaCross(btr.Strategy):
    params = dict(fast=10, slow=20, long_short=True)

    def __init__(self):
        self.cross = btr.ind.CrossOver(btr.ind.SMA(self.data.close, period=self.p.fast),
                                       btr.ind.SMA(self.data.close, period=self.p.slow))
        self.log, self.fills = [], []

    def notify_order(self, o):
        if o.status == o.Completed:
            self.fills.append((len(self.data) - 1, o.executed.size, o.executed.price, o.executed.comm))

    def next(self):
        i = len(self.data) - 1
        if self.cross[0] > 0:
            self.log.append((i, 1))
            self.order_target_size(target=1)
        elif self.cross[0] < 0:
            self.log.append((i, -1 if self.p.long_short else 0))
            self.order_target_size(target=-1 if self.p.long_short else 0)


def trades_from_fills(fills):
    """Round trips from (bar, signed size, price, fee) fills: a reversal closes one and opens one."""
    out, pos, cur = [], 0.0, None
    for bar, q, px, fee in fills:
        new = pos + q
        if pos != 0 and (new == 0 or np.sign(new) != np.sign(pos)):
            share = abs(pos) / abs(q)
            cur['exit'], cur['exit_px'] = bar, px
            cur['fees'] += fee * share
            out.append(cur)
            cur = None
            fee *= 1 - share
        if new != 0 and (pos == 0 or np.sign(new) != np.sign(pos)):
            cur = dict(entry=bar, size=new, entry_px=px, fees=fee, exit=-1, exit_px=None)
        pos = new
    if cur:
        out.append(cur)
    return [(t['entry'], t['exit'], repr(float(t['size'])), repr(float(t['entry_px'])),
             '' if t['exit_px'] is None else repr(float(t['exit_px'])), repr(float(t['fees'])) if t['exit'] >= 0 else '')
            for t in out]


def run_btr(dataset, fast, slow, v, df, cash):
    c = btr.Cerebro(stdstats=False)
    c.adddata(btr.feeds.PandasData(dataname=df))
    c.addstrategy(BtrSmaCross, fast=fast, slow=slow, long_short=v['long_short'])
    c.broker.setcash(cash)
    c.broker.setcommission(commission=v['fee'])
    s = c.run()[0]
    add_case('backtrader', dataset, fast, slow, v, c.broker.getvalue(), s.log, trades_from_fills(s.fills))


BTR_VARIANTS = [
    dict(variant='ls_open_unit1_fee10', long_short=True, fill='next_open', fee=0.001, lot=1,
         stop_loss=0.0, take_profit=0.0, size='units1'),
    dict(variant='lo_open_unit1_nofee', long_short=False, fill='next_open', fee=0.0, lot=1,
         stop_loss=0.0, take_profit=0.0, size='units1'),
]

# ---------------------------------------------------------------- vectorbt
import vectorbt as vbt


def run_vbt(dataset, fast, slow, v, df, cash):
    close = df['Close']
    s1 = pd.Series(vbt.MA.run(close, fast).ma.values, index=close.index)
    s2 = pd.Series(vbt.MA.run(close, slow).ma.values, index=close.index)
    up = s1.vbt.crossed_above(s2)
    down = s1.vbt.crossed_below(s2)
    kw = dict(init_cash=cash, fees=v['fee'], slippage=v['slippage'], freq='1h')
    if v['fill'] == 'next_open':
        kw['price'] = df['Open']
        e, x = up.shift(1, fill_value=False), down.shift(1, fill_value=False)
    else:
        e, x = up, down
    stops = v['stop_loss'] or v['take_profit'] or v['trailing_stop']
    if stops:
        # Stops checked on the bars after the entry against their open, high and low, filled at
        # the stop's level (or the open past it); a trailing stop's peak moves with the highs.
        kw.update(open=df['Open'], high=df['High'], low=df['Low'],
                  sl_stop=v['trailing_stop'] or v['stop_loss'] or np.nan, sl_trail=bool(v['trailing_stop']),
                  tp_stop=v['take_profit'] or np.nan)
    if v['long_short']:
        pf = vbt.Portfolio.from_signals(close, entries=e, short_entries=x, **kw)
    else:
        pf = vbt.Portfolio.from_signals(close, entries=e, exits=x, **kw)
    # A bar where a stop fired is the stop's alone: vectorbt sets that bar's signal aside and
    # stays flat, which tradelab's signal file says as a 0 (flat) at that bar.
    stopped = set()
    if stops:
        for r in pf.orders.records_arr:
            if r['price'] != close.iloc[r['idx']]:
                stopped.add(int(r['idx']))
    sig = [(int(i), 0 if int(i) in stopped else (1 if up.iloc[i] else (-1 if v['long_short'] else 0)))
           for i in np.flatnonzero((up | down).values)]
    tr = []
    for r in pf.trades.records_arr:
        is_open = r['status'] == 0
        sign = 1 if r['direction'] == 0 else -1
        tr.append((int(r['entry_idx']), -1 if is_open else int(r['exit_idx']), repr(float(sign * r['size'])),
                   repr(float(r['entry_price'])), '' if is_open else repr(float(r['exit_price'])),
                   '' if is_open else repr(float(r['entry_fees'] + r['exit_fees']))))
    closed = pf.trades.closed
    vbt_stats.append((len(cases), int(closed.count()), repr(float(closed.win_rate())), repr(float(closed.profit_factor())),
                      repr(float(closed.expectancy())), repr(float(closed.sqn())), repr(-float(pf.max_drawdown())),
                      repr(float(pf.orders.fees.sum()))))
    add_case('vectorbt', dataset, fast, slow, v, pf.final_value(), sig, tr)


VBT_VARIANTS = [
    dict(variant='lo_close_fee10', long_short=False, fill='close', fee=0.001, slippage=0.0),
    dict(variant='ls_close_fee10', long_short=True, fill='close', fee=0.001, slippage=0.0),
    dict(variant='ls_open_fee5_slip5', long_short=True, fill='next_open', fee=0.0005, slippage=0.0005),
]
# Stops (fills at the close, so the slippage stays 0: vectorbt fills a stop at its level unslipped).
VBT_STOP_VARIANTS = [
    dict(variant='lo_close_trail5', long_short=False, fill='close', fee=0.001, slippage=0.0, trailing_stop=0.05),
    dict(variant='ls_close_trail3', long_short=True, fill='close', fee=0.001, slippage=0.0, trailing_stop=0.03),
    dict(variant='ls_close_sl2_tp4', long_short=True, fill='close', fee=0.0005, slippage=0.0, stop_loss=0.02,
         take_profit=0.04),
]
VBT_PAIRS = PAIRS + [(3, 7), (7, 21)]


def main():
    for name in DATASETS:
        df, cash = load(name), DATASETS[name][1]
        if name == 'GOOG':
            for f, s in GRID:
                run_btpy(name, f, s, GRID_V, df, cash)
        for v in BTPY_VARIANTS:
            for f, s in PAIRS:
                run_btpy(name, f, s, v, df, cash)
        for v in BTR_VARIANTS:
            for f, s in PAIRS[:5] + PAIRS[6:]:
                run_btr(name, f, s, v, df, cash)
        for v in VBT_VARIANTS + VBT_STOP_VARIANTS:
            for f, s in VBT_PAIRS:
                vv = dict(dict(lot=0, stop_loss=0.0, take_profit=0.0, trailing_stop=0.0, size='all'), **v)
                run_vbt(name, f, s, vv, df, cash)
        print(name, len(cases), 'cases so far', file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    cols = ['id', 'peer', 'dataset', 'fast', 'slow', 'variant', 'long_short', 'fill', 'fee', 'slippage', 'lot',
            'stop_loss', 'take_profit', 'trailing_stop', 'limit', 'held', 'size', 'final_equity', 'trades']
    with open(os.path.join(OUT, 'cases.csv'), 'w', newline='') as f:
        w = csv.DictWriter(f, cols, restval='0')
        w.writeheader()
        w.writerows(cases)
    with open(os.path.join(OUT, 'signals.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['case', 'bar', 'dir'])
        w.writerows(signals)
    with open(os.path.join(OUT, 'trades.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['case', 'entry_bar', 'exit_bar', 'size', 'entry_price', 'exit_price', 'fees'])
        w.writerows(trades)
    with open(os.path.join(OUT, 'btpy_stats.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['case', 'closed_trades', 'win_rate', 'best_trade', 'worst_trade', 'sqn', 'max_drawdown'])
        w.writerows(btpy_stats)
    with open(os.path.join(OUT, 'vbt_stats.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['case', 'closed_trades', 'win_rate', 'profit_factor', 'expectancy', 'sqn', 'max_drawdown', 'fees'])
        w.writerows(vbt_stats)
    with open(os.path.join(OUT, 'versions.txt'), 'w') as f:
        f.write(f'backtesting {backtesting.__version__}\nbacktrader {btr.__version__}\nvectorbt {vbt.__version__}\n'
                f'pandas {pd.__version__}\nnumpy {np.__version__}\n')


if __name__ == '__main__':
    main()
