//! Statistics of a run, from its equity curve and trades. Conventions (as quantstats/empyrical,
//! so figures agree with what users compare against):
//! - returns `r[t] = E[t]/E[t-1] - 1` with `E[-1]` = initial cash, one per bar;
//! - `N` periods per year: `metrics.periods_per_year`, or from the bars: 365-day years for a market
//!   that trades at weekends (crypto), 252 trading days of a typical day's bars for one that does
//!   not (equities, FX), as backtesting.py and quantstats count (see [`crate::data::time::bars_per_year`]);
//! - Sharpe = `mean(r - rf/N) / std(r, ddof=1) * sqrt(N)`;
//! - Sortino = `mean(r - rf/N) / sqrt(mean(min(r - rf/N, 0)^2)) * sqrt(N)` (downside deviation over
//!   all periods);
//! - CAGR = `(E_end/E_0)^(N/bars) - 1`; annualized volatility = `std(r, ddof=1) * sqrt(N)`;
//! - max drawdown = max over t of `1 - E[t]/max(E[..=t])` (initial cash included), its duration the
//!   longest run of bars below a previous peak; Calmar = CAGR / max drawdown;
//! - trades are round trips; win rate, profit factor (gross profit / gross loss), expectancy
//!   (mean net PnL), average / best / worst trade return (net PnL / entry notional) and SQN
//!   (`sqrt(n) * mean(pnl) / std(pnl, ddof=1)`) use closed trades only;
//! - turnover = traded notional / mean equity; exposure time = share of bars with a position;
//! - buy and hold = equal-weight hold of every symbol from the first close to the last close.

use crate::portfolio::Trade;
use crate::rebalance::{DriftStats, RebalanceRecord};
use serde::{Deserialize, Serialize};

/// The statistics of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Bars in the run.
    pub bars: usize,
    /// Periods per year used for annualizing.
    pub periods_per_year: f64,
    /// Starting equity.
    pub initial_equity: f64,
    /// Ending equity.
    pub final_equity: f64,
    /// `final/initial - 1`.
    pub total_return: f64,
    /// Compound annual growth rate.
    pub cagr: f64,
    /// Annualized volatility of returns.
    pub ann_volatility: f64,
    /// Sharpe ratio.
    pub sharpe: f64,
    /// Sortino ratio.
    pub sortino: f64,
    /// Calmar ratio.
    pub calmar: f64,
    /// Maximum drawdown (fraction).
    pub max_drawdown: f64,
    /// Longest drawdown in bars.
    pub max_drawdown_bars: usize,
    /// Share of bars with a position.
    pub exposure_time: f64,
    /// Closed round trips.
    pub trades: usize,
    /// Round trips still open at the end.
    pub open_trades: usize,
    /// Share of closed trades with positive net PnL.
    pub win_rate: f64,
    /// Gross profit / gross loss.
    pub profit_factor: f64,
    /// Mean net PnL per closed trade.
    pub expectancy: f64,
    /// Mean trade return.
    pub avg_trade_return: f64,
    /// Best trade return.
    pub best_trade: f64,
    /// Worst trade return.
    pub worst_trade: f64,
    /// System quality number.
    pub sqn: f64,
    /// Traded notional / mean equity.
    pub turnover: f64,
    /// Fees paid.
    pub fees_paid: f64,
    /// Borrow cost paid on shorts.
    pub borrow_paid: f64,
    /// Equal-weight buy-and-hold return of the same symbols.
    pub buy_and_hold_return: f64,
    /// Rebalancing figures (with `[rebalance]`).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceStats>,
    /// Regime figures (with `[regime]`).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub regime: Option<RegimeStats>,
    /// Why each figure that is not a number (`null` in JSON) is undefined for this run.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub undefined: std::collections::BTreeMap<String, String>,
    /// What loading and preparing the run warned about (data gaps, signal rows dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Fill `s.undefined`: for every figure that is NaN or infinite (JSON has no such numbers and
/// writes `null`), why it has no value in this run.
pub fn explain_undefined(s: &mut Stats) {
    s.undefined.clear();
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&*s) else { return };
    for (k, v) in map {
        if !v.is_null() {
            continue;
        }
        let why = match k.as_str() {
            "profit_factor" if s.trades > 0 => "no losing trade: gross loss is zero (infinite)",
            "win_rate" | "profit_factor" | "expectancy" | "avg_trade_return" | "best_trade" | "worst_trade" => "no closed trade",
            "sqn" if s.trades < 2 => "fewer than 2 closed trades",
            "sqn" => "every closed trade had the same PnL (no spread)",
            "sharpe" | "ann_volatility" | "sortino" if s.bars < 2 => "fewer than 2 returns",
            "sharpe" | "ann_volatility" => "equity never changed: zero volatility",
            "sortino" => "no return below the risk-free rate: zero downside deviation",
            "calmar" => "no drawdown",
            "cagr" => "equity fell to zero or below",
            "regime_balanced_accuracy" => "no true regime labels beside the data (only generated markets have them)",
            _ => "not a finite number for this run",
        };
        s.undefined.insert(k, why.into());
    }
}

/// Rebalancing figures. A rebalance is accurate when, after its fills, every symbol's weight is
/// within `tolerance` of its target (`trade_to = "target"`) or within its band (`band_edge`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebalanceStats {
    /// Rebalances made.
    pub rebalances: usize,
    /// Share of rebalances with every symbol within tolerance after the fills.
    pub rebalance_accuracy: f64,
    /// Share of (rebalance, symbol) checks within tolerance.
    pub rebalance_symbol_accuracy: f64,
    /// Largest |weight - target| after any rebalance's fills.
    pub rebalance_max_deviation: f64,
    /// `sqrt(mean over bars of sum over symbols (w - target)^2)` at closes.
    pub tracking_error: f64,
    /// Share of bars with some weight outside its band.
    pub time_outside_bands: f64,
    /// Rebalancing notional / mean equity.
    pub rebalance_turnover: f64,
    /// Fees and slippage paid by rebalancing fills.
    pub rebalance_cost: f64,
    /// What the rebalancer estimated those would be before trading.
    pub rebalance_cost_estimate: f64,
}

/// Regime figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeStats {
    /// Times the parameter set changed with the regime.
    pub regime_switches: usize,
    /// Share of bars labelled bull, bear, sideways, high_vol.
    pub regime_shares: [f64; 4],
    /// Times the label changed (a label may change without changing the parameter set).
    pub regime_label_changes: usize,
    /// Median run of one label, in bars: short runs are flicker.
    pub regime_median_label_bars: f64,
    /// Balanced accuracy of the labels against `_regimes.csv` beside the data, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regime_balanced_accuracy: Option<f64>,
}

/// Running statistics of closed trades, pushed in the order the trades opened: what the trade
/// statistics are computed from, whether a run kept its list of trades or folded them as they
/// closed. The deviation behind the SQN is Welford's one-pass form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TradeStats {
    n: usize,
    wins: usize,
    /// Sums of positive and of negative PnL, of PnL and of returns (each started as
    /// `Iterator::sum` starts, so a list summed at once gives the same bits).
    gp: f64,
    gl: f64,
    sum_pnl: f64,
    sum_ret: f64,
    best: f64,
    worst: f64,
    /// Welford's running mean and sum of squared deviations of PnL.
    mean: f64,
    m2: f64,
}

impl Default for TradeStats {
    fn default() -> Self {
        TradeStats {
            n: 0,
            wins: 0,
            gp: -0.0,
            gl: -0.0,
            sum_pnl: -0.0,
            sum_ret: -0.0,
            best: f64::NEG_INFINITY,
            worst: f64::INFINITY,
            mean: 0.0,
            m2: 0.0,
        }
    }
}

impl TradeStats {
    /// Add a closed trade.
    pub fn push(&mut self, t: &Trade) {
        let (pnl, ret) = (t.pnl, t.ret());
        self.n += 1;
        if pnl > 0.0 {
            self.wins += 1;
            self.gp += pnl;
        } else if pnl < 0.0 {
            self.gl += pnl;
        }
        self.sum_pnl += pnl;
        self.sum_ret += ret;
        self.best = self.best.max(ret);
        self.worst = self.worst.min(ret);
        let d = pnl - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (pnl - self.mean);
    }

    /// Closed trades pushed.
    pub fn count(&self) -> usize {
        self.n
    }

    fn fill(&self, s: &mut Stats) {
        s.trades = self.n;
        if self.n == 0 {
            return;
        }
        let n = self.n as f64;
        let gl = -self.gl;
        s.win_rate = self.wins as f64 / n;
        // No winning trade: 0, not the -0 of an empty sum.
        s.profit_factor = if gl > 0.0 && self.gp != 0.0 {
            self.gp / gl
        } else if gl > 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        s.expectancy = self.sum_pnl / n;
        s.avg_trade_return = self.sum_ret / n;
        s.best_trade = self.best;
        s.worst_trade = self.worst;
        let sd = if self.n < 2 { f64::NAN } else { (self.m2 / (n - 1.0)).sqrt() };
        s.sqn = n.sqrt() * s.expectancy / sd;
    }
}

/// Running statistics of an equity curve, one bar at a time: what a run keeps when it does not
/// record the curve (optimizer candidates), and what every run's statistics come from.
///
/// Bars may also come in bulk ([`push_flat`](Self::push_flat), [`push_position`](Self::push_position)):
/// the figures are the same as bar by bar up to rounding (sums are grouped differently), and a
/// run makes the same calls whether or not it records its curve, so its statistics are the
/// same to the bit either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquityStream {
    initial: f64,
    rf_per_period: f64,
    prev: f64,
    n: usize,
    /// Downside sum of squared excess returns.
    down_sq: f64,
    peak: f64,
    /// The bar count when the peak was last reached.
    peak_n: usize,
    mdd: f64,
    /// `peak * (1 - mdd)`: only an equity below it deepens the drawdown.
    floor: f64,
    max_dd_len: usize,
    sum_equity: f64,
    /// Per block of bars: sum of returns, of squared returns, and the count. The returns' total
    /// sums are the blocks' sums (per-bar returns have a mean far below their deviation, so the
    /// one-pass variance loses nothing that matters). Without [`with_blocks`](Self::with_blocks)
    /// everything is block 0.
    blocks: [[f64; 3]; BLOCKS],
    block: usize,
    block_len: usize,
    /// Bars left in the current block.
    left: usize,
    /// The current block's sums, kept apart from the array so the per-bar path stays in
    /// registers (an indexed array would pin the whole state to memory).
    cur: [f64; 2],
    cur_n: usize,
}

/// Blocks of bars a run's returns are summed over, for the CSCV overfitting statistic.
pub const BLOCKS: usize = 10;

impl EquityStream {
    /// Also sum returns over [`BLOCKS`] equal blocks of a run of `bars` bars.
    pub fn with_blocks(mut self, bars: usize) -> Self {
        self.block_len = bars.div_ceil(BLOCKS).max(1);
        self.left = self.block_len;
        self
    }

    /// Per-block (sum of returns, sum of squares, count); zero counts without blocks.
    pub fn blocks(&self) -> [[f64; 3]; BLOCKS] {
        let mut b = self.blocks;
        b[self.block] = self.with_current(b[self.block]);
        b
    }

    /// A block's sums with the current block's added.
    fn with_current(&self, mut c: [f64; 3]) -> [f64; 3] {
        c[0] += self.cur[0];
        c[1] += self.cur[1];
        c[2] += self.cur_n as f64;
        c
    }

    /// Sums of returns and of squared returns over every bar.
    fn sums(&self) -> (f64, f64) {
        let b = self.blocks();
        b.iter().fold((0.0, 0.0), |(s, s2), x| (s + x[0], s2 + x[1]))
    }

    #[cold]
    fn close_block(&mut self) {
        self.blocks[self.block] = self.with_current(self.blocks[self.block]);
        (self.cur, self.cur_n) = ([0.0; 2], 0);
        self.block = (self.block + 1).min(BLOCKS - 1);
        self.left = self.block_len;
    }

    /// Start from the initial equity; `rf_per_period` is the risk-free rate per bar.
    pub fn new(initial: f64, rf_per_period: f64) -> Self {
        EquityStream {
            initial,
            rf_per_period,
            prev: initial,
            n: 0,
            down_sq: 0.0,
            peak: initial,
            peak_n: 0,
            mdd: 0.0,
            floor: initial,
            max_dd_len: 0,
            sum_equity: 0.0,
            blocks: [[0.0; 3]; BLOCKS],
            block: 0,
            block_len: 0,
            left: usize::MAX,
            cur: [0.0; 2],
            cur_n: 0,
        }
    }

    /// A new peak `e` reached at bar count `n`: the drawdown before it has ended.
    #[inline]
    fn new_peak(&mut self, e: f64, n: usize) {
        self.max_dd_len = self.max_dd_len.max(n - 1 - self.peak_n);
        self.peak = e;
        self.peak_n = n;
        self.floor = e * (1.0 - self.mdd);
    }

    /// An equity `e` below the drawdown floor.
    #[inline]
    fn deeper(&mut self, e: f64) {
        self.mdd = 1.0 - e / self.peak;
        self.floor = self.peak * (1.0 - self.mdd);
    }

    /// Add one bar's closing equity.
    #[inline]
    pub fn push(&mut self, e: f64) {
        let r = e / self.prev - 1.0;
        self.prev = e;
        self.n += 1;
        self.cur[0] += r;
        self.cur[1] += r * r;
        self.cur_n += 1;
        self.left -= 1;
        if self.left == 0 {
            self.close_block();
        }
        let ex = r - self.rf_per_period;
        if ex < 0.0 {
            self.down_sq += ex * ex;
        }
        self.sum_equity += e;
        if e >= self.peak {
            self.new_peak(e, self.n);
        } else if e < self.floor {
            self.deeper(e);
        }
    }

    /// Add `k` bars of equity `e` when the latest equity already is `e` (a flat book between
    /// events): the same as `k` calls of [`push`](Self::push), without the per-bar work that
    /// adds nothing (zero returns).
    pub fn push_flat(&mut self, e: f64, k: usize) {
        if k == 0 {
            return;
        }
        if e != self.prev {
            self.push(e);
            return self.push_flat(e, k - 1);
        }
        let n0 = self.n;
        self.n += k;
        // r = 0: the sums of returns do not move; the downside sum gains rf^2 a bar.
        let ex = -self.rf_per_period;
        if ex < 0.0 {
            self.down_sq += k as f64 * (ex * ex);
        }
        self.sum_equity += e * k as f64;
        let mut rest = k;
        while rest > 0 {
            let step = rest.min(self.left);
            self.cur_n += step;
            self.left -= step;
            rest -= step;
            if self.left == 0 {
                self.close_block();
            }
        }
        if e >= self.peak {
            self.new_peak(e, n0 + 1);
            self.peak_n = self.n;
        }
    }

    /// Push the equity `cash + q * close` for every close: the same as one [`push`](Self::push)
    /// per bar (a specialization for the engine's idle-bar loop: the hottest of a sweep).
    pub fn push_position(&mut self, cash: f64, q: f64, closes: &[f64]) {
        let mut rest = closes;
        while !rest.is_empty() {
            // Up to the end of the current block: the per-bar loop need not count bars.
            let (seg, tail) = rest.split_at(rest.len().min(self.left));
            self.push_position_in_block(cash, q, seg);
            self.left -= seg.len();
            if self.left == 0 {
                self.close_block();
            }
            rest = tail;
        }
    }

    fn push_position_in_block(&mut self, cash: f64, q: f64, closes: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has just been seen to support AVX.
            return unsafe { self.push_position_avx(cash, q, closes) };
        }
        self.push_position_any(cash, q, closes)
    }

    /// [`push_position_any`](Self::push_position_any) in AVX's three-operand encoding (fewer
    /// register copies in the loop; the same IEEE operations, so the same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    fn push_position_avx(&mut self, cash: f64, q: f64, closes: &[f64]) {
        self.push_position_any(cash, q, closes)
    }

    #[inline(always)]
    fn push_position_any(&mut self, cash: f64, q: f64, closes: &[f64]) {
        // `r - 0.0` is `r` for every r, -0.0 and NaN included: without a risk-free rate the
        // excess return is the return, one subtraction less per bar.
        if self.rf_per_period == 0.0 {
            self.push_position_with::<false>(cash, q, closes)
        } else {
            self.push_position_with::<true>(cash, q, closes)
        }
    }

    #[inline(always)]
    fn push_position_with<const RF: bool>(&mut self, cash: f64, q: f64, closes: &[f64]) {
        // The stream's state lives in locals through the loop. The sums are taken per segment,
        // from a zero, and folded into the totals where a new peak or a deeper drawdown ends one
        // (the association of the additions that [`push`](Self::push)'s callers have always
        // had, so the figures stay the same to the last bit).
        let rf = self.rf_per_period;
        let (mut prev, mut peak, mut floor, mut mdd) = (self.prev, self.peak, self.floor, self.mdd);
        let (mut peak_n, mut max_dd_len) = (self.peak_n, self.max_dd_len);
        let (mut tot, mut tot_sq, mut tot_down, mut tot_equity) = (self.cur[0], self.cur[1], self.down_sq, self.sum_equity);
        let (mut sum, mut sum_sq, mut down_sq, mut sum_equity) = (0.0, 0.0, 0.0, 0.0);
        let mut open = false;
        let mut i = 0;
        while i < closes.len() {
            let e = cash + q * closes[i];
            i += 1;
            let r = e / prev - 1.0;
            prev = e;
            sum += r;
            sum_sq += r * r;
            let ex = if RF { r - rf } else { r };
            // Adding a zero leaves the (never negative-zero) sum as it is.
            down_sq += if ex < 0.0 { ex * ex } else { 0.0 };
            sum_equity += e;
            open = true;
            if e >= peak || e < floor {
                (tot, tot_sq, tot_down, tot_equity) = (tot + sum, tot_sq + sum_sq, tot_down + down_sq, tot_equity + sum_equity);
                (sum, sum_sq, down_sq, sum_equity, open) = (0.0, 0.0, 0.0, 0.0, false);
                if e >= peak {
                    let n = self.n + i;
                    max_dd_len = max_dd_len.max(n - 1 - peak_n);
                    (peak, peak_n, floor) = (e, n, e * (1.0 - mdd));
                } else {
                    mdd = 1.0 - e / peak;
                    floor = peak * (1.0 - mdd);
                }
            }
        }
        if open {
            (tot, tot_sq, tot_down, tot_equity) = (tot + sum, tot_sq + sum_sq, tot_down + down_sq, tot_equity + sum_equity);
        }
        (self.prev, self.peak, self.floor, self.mdd, self.peak_n, self.max_dd_len) = (prev, peak, floor, mdd, peak_n, max_dd_len);
        (self.cur, self.down_sq, self.sum_equity) = ([tot, tot_sq], tot_down, tot_equity);
        self.cur_n += closes.len();
        self.n += closes.len();
    }

    /// Latest equity.
    pub fn last(&self) -> f64 {
        self.prev
    }

    /// Mean equity over the bars seen.
    pub fn mean_equity(&self) -> f64 {
        self.sum_equity / self.n as f64
    }

    /// Return, risk and drawdown figures (trade figures left empty).
    pub fn stats(&self, per_year: f64) -> Stats {
        let n = self.n;
        let k = n as f64;
        let (sum, sum_sq) = self.sums();
        let sd = if n > 1 { ((sum_sq - sum * sum / k) / (k - 1.0)).max(0.0).sqrt() } else { f64::NAN };
        let ex_mean = if n > 0 { sum / k - self.rf_per_period } else { f64::NAN };
        let downside = (self.down_sq / n.max(1) as f64).sqrt();
        let fin = self.prev;
        let cagr = if n > 0 && fin > 0.0 { (fin / self.initial).powf(per_year / n as f64) - 1.0 } else { -1.0 };
        Stats {
            bars: n,
            periods_per_year: per_year,
            initial_equity: self.initial,
            final_equity: fin,
            total_return: fin / self.initial - 1.0,
            cagr,
            ann_volatility: sd * per_year.sqrt(),
            sharpe: ex_mean / sd * per_year.sqrt(),
            sortino: ex_mean / downside * per_year.sqrt(),
            calmar: if self.mdd > 0.0 { cagr / self.mdd } else { f64::NAN },
            max_drawdown: self.mdd,
            max_drawdown_bars: self.max_dd_len.max(self.n - self.peak_n),
            exposure_time: f64::NAN,
            trades: 0,
            open_trades: 0,
            win_rate: f64::NAN,
            profit_factor: f64::NAN,
            expectancy: f64::NAN,
            avg_trade_return: f64::NAN,
            best_trade: f64::NAN,
            worst_trade: f64::NAN,
            sqn: f64::NAN,
            turnover: f64::NAN,
            fees_paid: 0.0,
            borrow_paid: 0.0,
            buy_and_hold_return: f64::NAN,
            rebalance: None,
            regime: None,
            undefined: Default::default(),
            warnings: Vec::new(),
        }
    }
}

impl Default for EquityStream {
    fn default() -> Self {
        EquityStream::new(1.0, 0.0)
    }
}

/// Return, risk and drawdown figures of an equity curve (trade figures left empty).
pub fn from_equity(equity: &[f64], initial: f64, per_year: f64, rf: f64) -> Stats {
    let mut st = EquityStream::new(initial, rf / per_year);
    for &e in equity {
        st.push(e);
    }
    st.stats(per_year)
}

/// What a run's statistics are computed from: plain data, whoever ran it.
#[derive(Debug, Clone, Copy)]
pub struct RunRecord<'a> {
    /// Running equity statistics over every bar.
    pub stream: &'a EquityStream,
    /// Bars per year.
    pub per_year: f64,
    /// Round trips (open ones marked at the last close).
    pub trades: &'a [Trade],
    /// Closed trades opened before all of `trades`, folded as they closed (a candidate's run).
    pub folded: Option<&'a TradeStats>,
    /// Bars with any open position.
    pub exposure_bars: usize,
    /// Sum of |fill notional|.
    pub traded_notional: f64,
    /// Fees paid.
    pub fees: f64,
    /// Borrow cost paid on shorts.
    pub borrow_paid: f64,
    /// Each symbol's first and last close (for buy and hold).
    pub first_last: &'a [(f64, f64)],
    /// Every rebalance, and the weights' drift (with `[rebalance]`).
    pub rebalances: &'a [RebalanceRecord],
    /// Drift of the weights from their targets.
    pub drift: &'a DriftStats,
    /// With `[regime]`: the parameter-set switches and the label per bar.
    pub regime: Option<(usize, &'a [u8])>,
    /// Warnings about the inputs, for `stats.json`.
    pub warnings: &'a [String],
}

/// All statistics of a run.
pub fn summarize(r: &RunRecord) -> Stats {
    let mut s = r.stream.stats(r.per_year);
    let mut ts = r.folded.copied().unwrap_or_default();
    let mut open = 0;
    for t in r.trades {
        match t.exit_bar {
            Some(_) => ts.push(t),
            None => open += 1,
        }
    }
    ts.fill(&mut s);
    s.open_trades = open;
    s.exposure_time = if s.bars == 0 { 0.0 } else { r.exposure_bars as f64 / s.bars as f64 };
    s.turnover = r.traded_notional / r.stream.mean_equity();
    s.fees_paid = r.fees;
    s.borrow_paid = r.borrow_paid;
    s.buy_and_hold_return = r.first_last.iter().map(|(a, b)| b / a - 1.0).sum::<f64>() / r.first_last.len() as f64;
    if r.drift.bars > 0 {
        let rbs = &r.rebalances;
        let k = rbs.len().max(1) as f64;
        let checks: usize = rbs.iter().map(|r| r.checked.max(r.targets.len())).sum();
        s.rebalance = Some(RebalanceStats {
            rebalances: rbs.len(),
            rebalance_accuracy: rbs.iter().filter(|r| r.accurate()).count() as f64 / k,
            rebalance_symbol_accuracy: rbs.iter().map(|r| r.within).sum::<usize>() as f64 / checks.max(1) as f64,
            rebalance_max_deviation: rbs.iter().map(|r| r.max_dev).fold(0.0, f64::max),
            tracking_error: r.drift.tracking_error(),
            time_outside_bands: r.drift.outside_bars as f64 / r.drift.bars as f64,
            rebalance_turnover: rbs.iter().map(|r| r.notional).sum::<f64>() / r.stream.mean_equity(),
            rebalance_cost: rbs.iter().map(|r| r.cost).sum(),
            rebalance_cost_estimate: rbs.iter().map(|r| r.est_cost).sum(),
        });
    }
    if let Some((switches, labels)) = r.regime {
        let steady = crate::regime::stability(labels);
        s.regime = Some(RegimeStats {
            regime_switches: switches,
            regime_shares: steady.share,
            regime_label_changes: steady.changes,
            regime_median_label_bars: steady.median_run,
            regime_balanced_accuracy: None,
        });
    }
    s.warnings = r.warnings.to_vec();
    explain_undefined(&mut s);
    s
}

/// A short table for the terminal.
pub fn table(s: &Stats) -> String {
    let pct = |x: f64| format!("{:>10.2}%", 100.0 * x);
    let num = |x: f64| format!("{x:>11.3}");
    let rows = [
        ("total return", pct(s.total_return)),
        ("buy & hold", pct(s.buy_and_hold_return)),
        ("CAGR", pct(s.cagr)),
        ("max drawdown", pct(s.max_drawdown)),
        ("sharpe", num(s.sharpe)),
        ("sortino", num(s.sortino)),
        ("calmar", num(s.calmar)),
        ("trades", format!("{:>11}", s.trades)),
        ("win rate", pct(s.win_rate)),
        ("profit factor", num(s.profit_factor)),
        ("exposure", pct(s.exposure_time)),
        ("fees paid", format!("{:>11.2}", s.fees_paid)),
    ];
    let mut rows: Vec<(&str, String)> = rows.to_vec();
    if let Some(r) = &s.rebalance {
        rows.push(("rebalances", format!("{:>11}", r.rebalances)));
        rows.push(("rebal. accur.", pct(r.rebalance_accuracy)));
        rows.push(("tracking err.", pct(r.tracking_error)));
        rows.push(("rebal. cost", format!("{:>11.2}", r.rebalance_cost)));
    }
    if let Some(r) = &s.regime {
        rows.push(("regime switch", format!("{:>11}", r.regime_switches)));
        rows.push(("median label", format!("{:>7.0} bars", r.regime_median_label_bars)));
        if let Some(a) = r.regime_balanced_accuracy {
            rows.push(("regime accur.", pct(a)));
        }
    }
    rows.iter().map(|(k, v)| format!("{k:<14}{v}")).collect::<Vec<_>>().join("\n")
}

/// Stats of a CSV equity curve (`timestamp,equity`; the first value is the initial equity).
pub fn stats_from_equity_file(path: &std::path::Path, periods_per_year: Option<f64>, risk_free: f64) -> crate::Result<Stats> {
    use crate::error::Error;
    if !(risk_free > -1.0 && risk_free.is_finite()) {
        return Err(Error::Input(format!("--risk-free {risk_free}: expected a finite annual rate above -1 (0.04 for 4%)")));
    }
    if periods_per_year.is_some_and(|p| !(p > 0.0 && p.is_finite())) {
        return Err(Error::Input(format!("--periods-per-year {}: expected a finite number > 0", periods_per_year.unwrap_or_default())));
    }
    let t = crate::data::read_text_table(path)?;
    let ti = t.names.iter().position(|n| n.eq_ignore_ascii_case("timestamp")).unwrap_or(0);
    let ei = t
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case("equity"))
        .ok_or_else(|| Error::data(path, None, "missing-column", format!("no equity column; the file has: {}", t.names.join(", "))))?;
    let (mut ts, mut eq) = (Vec::new(), Vec::new());
    for (r, row) in t.rows.iter().enumerate() {
        let e: f64 =
            row[ei].parse().map_err(|_| Error::data(path, Some(t.loc(r)), "unparsable-number", format!("equity '{}'", row[ei])))?;
        if !(e.is_finite() && e > 0.0) {
            return Err(Error::data(path, Some(t.loc(r)), "non-positive-equity", format!("{e}")));
        }
        eq.push(e);
        let stamp = crate::data::time::parse_timestamp(&row[ti], crate::data::TimestampUnit::Auto);
        if let (Some(now), Some(Some(before))) = (stamp, ts.last()) {
            if now <= *before {
                return Err(Error::data(
                    path,
                    Some(t.loc(r)),
                    "decreasing-timestamp",
                    format!("{} does not come after the row before", row[ti]),
                ));
            }
        }
        ts.push(stamp);
    }
    if eq.len() < 3 {
        return Err(Error::data(path, None, "too-short", "need at least 3 equity values"));
    }
    let per_year = match periods_per_year {
        Some(p) => p,
        None => {
            // From the most common spacing and the calendar, as for bar data.
            let stamps: Option<Vec<i64>> = ts.iter().copied().collect();
            let tf = stamps.as_ref().and_then(|s| crate::data::time::most_common(s.windows(2).map(|w| w[1] - w[0]).collect()));
            match (stamps, tf) {
                (Some(s), Some(tf)) => crate::data::time::bars_per_year(&s, crate::data::time::Timeframe::from_ms(tf)),
                _ => return Err(Error::Input("cannot infer periods per year from the timestamps: pass --periods-per-year".into())),
            }
        }
    };
    let mut s = from_equity(&eq[1..], eq[0], per_year, risk_free);
    explain_undefined(&mut s);
    for k in [
        "win_rate",
        "profit_factor",
        "expectancy",
        "avg_trade_return",
        "best_trade",
        "worst_trade",
        "sqn",
        "turnover",
        "buy_and_hold_return",
    ] {
        if let Some(why) = s.undefined.get_mut(k) {
            *why = "an equity curve alone says nothing of trades or prices".into();
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equity_stats_by_formula() {
        // Returns: +10%, -10%, +20% from 100.
        let eq = [110.0, 99.0, 118.8];
        let s = from_equity(&eq, 100.0, 4.0, 0.0);
        let r = [0.1, -0.1, 0.2];
        let m = 0.2 / 3.0;
        let sd = (r.iter().map(|x: &f64| (x - m).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((s.sharpe - m / sd * 2.0).abs() < 1e-12);
        let dd = (0.01f64 / 3.0).sqrt(); // only -0.1 is below 0
        assert!((s.sortino - m / dd * 2.0).abs() < 1e-12);
        assert!((s.max_drawdown - 0.1).abs() < 1e-12);
        assert_eq!(s.max_drawdown_bars, 1);
        assert!((s.total_return - 0.188).abs() < 1e-12);
        assert!((s.cagr - (1.188f64.powf(4.0 / 3.0) - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn bulk_pushes_agree_with_a_direct_computation() {
        // 100 cash flat for 3 bars, then 0.5 units + 50 cash over closes, then flat again at the
        // last equity: the stream's figures against the curve's own, computed directly.
        let closes = [100.0, 104.0, 96.0, 90.0, 99.0, 110.0, 108.0, 80.0, 85.0, 120.0, 119.0];
        let mut curve = vec![100.0; 3];
        curve.extend(closes.iter().map(|c| 50.0 + 0.5 * c));
        let last = *curve.last().unwrap();
        curve.extend([last; 4]);
        let mut st = EquityStream::new(100.0, 0.0).with_blocks(curve.len());
        st.push_flat(100.0, 3);
        st.push_position(50.0, 0.5, &closes);
        st.push_flat(last, 4);
        let s = st.stats(1.0);
        let mut prev = 100.0;
        let r: Vec<f64> = curve.iter().map(|e| (e / std::mem::replace(&mut prev, *e)) - 1.0).collect();
        let m = r.iter().sum::<f64>() / r.len() as f64;
        let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64).sqrt();
        assert!((s.sharpe - m / sd).abs() < 1e-12, "{} vs {}", s.sharpe, m / sd);
        // Equity by index: 100 x4 (0..=3), 102, 98, 95, 99.5, 105, 104, 90, 92.5, 110, 109.5 x5.
        // Deepest: 105 -> 90. Stretches below a peak: 5..=7 and 9..=11 (3 bars each), then
        // 13..=17 after the peak of 110 (5 bars, still open at the end).
        assert!((s.max_drawdown - (1.0 - 90.0 / 105.0)).abs() < 1e-15);
        assert_eq!(s.max_drawdown_bars, 5);
        assert_eq!(s.bars, curve.len());
        assert!((st.mean_equity() - curve.iter().sum::<f64>() / curve.len() as f64).abs() < 1e-12);
        // Blocks of 2 bars (18 bars / 10 blocks, rounded up): counts 2 each in the first 9.
        let b = st.blocks();
        assert!(b[..9].iter().all(|x| x[2] == 2.0) && b[9][2] == 0.0);
        assert!((b[4][0] - (r[8] + r[9])).abs() < 1e-15);
    }
}
