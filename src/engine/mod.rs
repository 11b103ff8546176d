//! The engine: the event loop where data, signals, decision, risk, execution and portfolio
//! meet. Per bar t, in order:
//! 1. marks move to t's open; orders due at the open fill (limits check t's range);
//! 2. stops and take-profits act on t's range (see [`crate::risk`]);
//! 3. marks move to t's close; orders due at the close fill; equity is marked;
//! 4. drawdown halt and daily-loss limit look at the close equity;
//! 5. the regime label of t (if `[regime]`) picks the parameter set in force from this close;
//!    then either the rebalancer (if `[rebalance]`) checks weights against targets and sends
//!    orders when a band or calendar trigger fires, or the decision turns t's combined signal
//!    (or, for a symbol a strategy decides, the strategy's action at t given its position) into
//!    targets; risk clips them; orders are sent to fill at t+1's open (default), t+1's close, n
//!    bars later, or t's own close; a rebalance is checked once its last order ends;
//! 6. the bar is recorded. If the equity is at or below zero there (a short against a rising
//!    market), the account is ruined: its positions are closed at that close, its equity is 0
//!    from then on and the run ends (as backtesting.py ends a run out of money; see
//!    [`RunResult::ruin`]).
//!
//! A decision at t sees nothing after t's close, so look-ahead is impossible by construction.
//! Nothing in the loop depends on wall clock, threads or hash order: a run is a pure function of
//! the experiment and the data.

#![allow(clippy::needless_range_loop)] // loops over symbol ids index several parallel arrays

pub mod batch;
#[cfg(test)]
mod direct_tests;
mod orders;
mod prepare;
mod rebalancing;

pub use prepare::{check, periods_per_year, prepare, Prepared, RegimePrep, PER_YEAR};

use crate::data::time::DAY_MS;
use crate::data::MarketData;
use crate::decision;
use crate::execution::{self, Costs, Order, OrderRecord, Outcome, PriceType, Size, Status};
use crate::experiment::{Experiment, FillTiming, OrderType, Sizing};
use crate::portfolio::{Fill, Portfolio, Reason, Trade};
use crate::rebalance::{DriftStats, RebalanceRecord};
use crate::risk::{self, RiskEvent, RiskRule};
use crate::signals;

/// Everything a run recorded.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Equity at each bar's close.
    pub equity: Vec<f64>,
    /// Cash at each bar's close.
    pub cash: Vec<f64>,
    /// Quantity held per symbol per bar (`positions[sym][bar]`).
    pub positions: Vec<Vec<f64>>,
    /// Every fill.
    pub fills: Vec<Fill>,
    /// Every order and what became of it.
    pub orders: Vec<OrderRecord>,
    /// Round trips (open ones marked at the last close); without the closed ones folded into
    /// `folded` (a run that records nothing per bar).
    pub trades: Vec<Trade>,
    /// Closed trades folded into statistics as they closed, in the order they opened (a run
    /// that records nothing per bar keeps no list of them).
    pub folded: Option<crate::metrics::TradeStats>,
    /// Every intervention of the risk layer.
    pub risk_events: Vec<RiskEvent>,
    /// Fees paid.
    pub fees: f64,
    /// Borrow cost paid on shorts.
    pub borrow_paid: f64,
    /// Sum of |fill notional|.
    pub traded_notional: f64,
    /// Bars with any open position.
    pub exposure_bars: usize,
    /// Running equity statistics (kept whether or not the curve is recorded).
    pub stream: crate::metrics::EquityStream,
    /// Every rebalance (with `[rebalance]`).
    pub rebalances: Vec<RebalanceRecord>,
    /// Drift of the weights from their targets at bar closes (with `[rebalance]`).
    pub drift: DriftStats,
    /// Target weight per symbol per bar (recorded runs with `[rebalance]`).
    pub target_weights: Vec<Vec<f64>>,
    /// Times the parameter set changed with the regime.
    pub regime_switches: usize,
    /// What the strategies (`[[signals.rules]]`, `[[signals.code]]`) asked for, when not to
    /// hold (recorded runs): bar, symbol, direction (+1, -1, 0), strength, confidence.
    pub decisions: Vec<(usize, usize, i8, u8, f64)>,
    /// Set when a fill or the book stopped being a finite number (prices too small or too
    /// large for the arithmetic): the bar and what went wrong. The run stops there; its
    /// results are not to be used.
    pub fault: Option<(usize, String)>,
    /// Bar at whose close equity was at or below zero, and that equity: the account was ruined
    /// there (its positions closed at that close, equity 0 from then on) and the run ended, as
    /// backtesting.py ends a run that runs out of money.
    pub ruin: Option<(usize, f64)>,
}

/// The state of one run, bar to bar: the book, working orders, what was recorded, the
/// parameters in force, and each phase's memory. Its methods are the phases of a bar.
struct Loop<'a> {
    /// The experiment in force (the base one, or a regime's variant).
    exp: &'a Experiment,
    /// Its prepared inputs.
    pv: &'a Prepared,
    /// The base experiment and its prepared inputs.
    base: &'a Experiment,
    base_prep: &'a Prepared,
    /// The execution costs of each symbol (its own lot size in).
    sym_costs: Vec<Costs>,
    /// The rebalance whose orders are still working.
    rb_open: Option<usize>,
    /// Price of each symbol's latest fill in the working rebalance (NaN: none yet).
    rb_px: Vec<f64>,
    rb_bufs: rebalancing::Buffers,
    md: &'a MarketData,
    n: usize,
    ns: usize,
    costs: Costs,
    pf: Portfolio,
    pending: Vec<Order>,
    res: RunResult,
    best: Vec<f64>,
    /// ATR known when the current position was entered (NaN without ATR stops).
    entry_atr: Vec<f64>,
    atr: &'a [signals::Series],
    /// Bar whose open / close filled the current position's entry.
    entry_open_bar: Vec<usize>,
    entry_close_bar: Vec<usize>,
    /// Bar whose fill opened the current position (either phase).
    entry_bar: Vec<usize>,
    /// Indicator series each symbol's strategy fetched so far (see [`signals::View`]).
    memo: Vec<std::cell::RefCell<Vec<(signals::IndKey, signals::Series)>>>,
    targets: Vec<f64>,
    /// Target quantity per symbol (`fixed_quantity` sizing).
    target_qty: Vec<f64>,
    /// Whether fills and orders are logged (a recorded run) or only counted (a candidate).
    log: bool,
    /// Whether the equity curve is recorded (a recorded run, or a curve alone: see [`Record`]).
    curve: bool,
    order_count: u64,
    /// Where status updates go when orders are not logged.
    scratch: OrderRecord,
    /// Direction a stop closed per symbol (0: none); no re-entry that way until the signal turns.
    stopped_dir: Vec<i8>,
    /// Symbols owed a decision on the next bar (a request refused or clipped, a regime switch).
    dirty: Vec<bool>,
    /// The last refused target (or, when a limit cut it back to the target in force, the last
    /// request) per symbol: a refusal is recorded once, not every bar.
    last_refused: Vec<Option<f64>>,
    account: risk::Account,
    /// Label whose parameters are in force (`u8::MAX` before the first).
    active_label: u8,
    /// Whether any position was open at the last recorded close.
    exposed: bool,
    /// What the loop must be ready for, over the base parameters and every regime's.
    dynamic_size: bool,
    has_stops: bool,
    calendar: bool,
    borrow_per_bar: f64,
    /// Whether idle bars may be skipped in bulk (see [`Loop::skip_idle`]).
    can_skip: bool,
    /// One symbol filled at the deciding bar's close, under one set of parameters: a signal's
    /// order is tried as it is sent (see `submit_signal`).
    direct: bool,
    act_cursor: Vec<usize>,
    /// The next bar to run.
    t: usize,
    /// Set when the run stopped early (a fault).
    done: bool,
    /// Where a skip over idle bars began that a tile's end interrupted (see [`Loop::skip_idle`]).
    idle_from: Option<usize>,
    /// The batch path's current tile of the combined signals (empty: the prepared ones).
    tile: Vec<signals::Combined>,
}

/// All statistics of a run over its prepared inputs.
pub fn summarize(prep: &Prepared, res: &RunResult) -> crate::metrics::Stats {
    let first_last: Vec<(f64, f64)> = prep.md.bars.iter().map(|b| (b.close[0], b.close[b.len() - 1])).collect();
    let mut stats = crate::metrics::summarize(&crate::metrics::RunRecord {
        stream: &res.stream,
        per_year: prep.per_year,
        trades: &res.trades,
        folded: res.folded.as_ref(),
        exposure_bars: res.exposure_bars,
        traded_notional: res.traded_notional,
        fees: res.fees,
        borrow_paid: res.borrow_paid,
        first_last: &first_last,
        rebalances: &res.rebalances,
        drift: &res.drift,
        regime: prep.regime.as_ref().map(|rg| (res.regime_switches, rg.labels.label.as_slice())),
        warnings: &prep.warnings,
    });
    if let Some((bar, eq)) = res.ruin {
        stats.warnings.push(ruin_message(&prep.md, bar, eq));
    }
    stats
}

/// What a ruined run says (see [`RunResult::ruin`]).
pub fn ruin_message(md: &MarketData, bar: usize, eq: f64) -> String {
    format!(
        "the account was ruined at bar {bar} ({}): equity {eq:.2} at that close; its positions were closed there and the run \
         stopped (equity 0 from then on; the figures cover the bars up to it)",
        crate::data::time::format_ts(md.timestamps[bar])
    )
}

/// Run one backtest over prepared inputs, recording every bar (equity, cash, positions).
pub fn backtest(exp: &Experiment, prep: &Prepared) -> RunResult {
    run(exp, prep, Record::Full)
}

/// Run one backtest keeping only running statistics, trades and risk events: no per-bar vectors,
/// no fill or order log (what an optimizer candidate needs).
pub fn backtest_stats(exp: &Experiment, prep: &Prepared) -> RunResult {
    run(exp, prep, Record::Stats)
}

/// Run one backtest recording the equity at each bar's close and nothing else per bar.
pub fn backtest_equity(exp: &Experiment, prep: &Prepared) -> RunResult {
    run(exp, prep, Record::Equity)
}

/// What a run records beyond its running statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Nothing per bar, no fill or order log (an optimizer candidate).
    Stats,
    /// The equity at each bar's close, nothing else (returns for the search's statistics).
    Equity,
    /// Every bar (equity, cash, positions), every fill and order (a report).
    Full,
}

fn run(exp: &Experiment, prep: &Prepared, record: Record) -> RunResult {
    let mut lp = Loop::new(exp, prep, record);
    lp.advance(lp.n);
    lp.finish()
}

impl<'a> Loop<'a> {
    /// Run the bars from the next one due up to `end` (exclusive): the whole series in one
    /// call, or tile by tile in the batch path, which installs each tile's signals first.
    fn advance(&mut self, end: usize) {
        if self.done {
            return;
        }
        let mut t = self.skip_idle(self.t, end);
        while t < end {
            if self.calendar {
                // UTC day boundaries matter only to the daily limits (and the division is not free).
                self.account.start_bar(self.md.timestamps[t].div_euclid(DAY_MS));
            }
            if self.pending.is_empty() && !self.has_stops && self.rb_open.is_none() {
                // Nothing can fill or settle at the open, nothing can stop out: only the marks
                // move, to the close.
                self.mark(t, true);
            } else {
                // 1. Open.
                self.mark(t, false);
                self.process(t, false);
                self.settle_rebalance(t);
                // 2. Stops.
                self.stops(t);
                // 3. Close.
                self.mark(t, true);
                self.process(t, true);
                self.settle_rebalance(t);
            }
            if self.borrow_per_bar > 0.0 {
                self.pf.charge_borrow(self.borrow_per_bar);
            }
            let eq = self.pf.equity();
            // 4. Account-level limits.
            self.account_limits(t, eq);
            // 5. The regime labelled from data up to this close picks the parameters from here on;
            // then the rebalancer or the decision.
            let regime_changed = self.regime(t);
            if self.exp.rebalance.is_some() {
                let mut b = std::mem::take(&mut self.rb_bufs);
                self.rebalance_step(t, self.pv, &mut b, regime_changed, self.account.blocking().is_some());
                self.rb_bufs = b;
            } else {
                self.decide(t, eq);
            }
            if self.base.execution.fill == FillTiming::Close {
                self.process(t, true);
                self.settle_rebalance(t);
            }
            // 6. Record.
            if !self.record_bar(t) {
                self.done = true;
                return;
            }
            t = self.skip_idle(t + 1, end);
        }
        self.t = t;
    }

    fn new(exp: &'a Experiment, prep: &'a Prepared, record: Record) -> Loop<'a> {
        let md = &*prep.md;
        let (n, ns) = (md.len(), md.symbols.len());
        // The base parameters and every regime's: what the loop must be ready for is their union.
        let all: Vec<(&Experiment, &Prepared)> =
            std::iter::once((exp, prep)).chain(prep.regime.iter().flat_map(|r| r.variants.iter().map(|(e, p)| (e, p)))).collect();
        let dynamic_size = all.iter().any(|(e, _)| !matches!(e.decision.sizing, Sizing::FixedFraction | Sizing::FixedQuantity));
        let has_stops = all.iter().any(|(e, p)| {
            let rc = &e.risk;
            rc.stop_loss.is_some() || rc.take_profit.is_some() || rc.trailing_stop.is_some() || !p.atr.is_empty()
        });
        let borrow_per_bar = exp.portfolio.borrow_rate / prep.per_year;
        let calendar = all.iter().any(|(e, _)| e.risk.max_daily_loss.is_some() || e.risk.max_trades_per_day.is_some());
        // A strategy decides at every bar: nothing can be skipped.
        let driven = all.iter().any(|(_, p)| p.drivers.iter().any(Option::is_some));
        let can_skip = !driven
            && !has_stops
            && !calendar
            && borrow_per_bar == 0.0
            && !dynamic_size
            && exp.risk.max_drawdown.is_none()
            && prep.regime.is_none()
            && exp.rebalance.is_none();
        let full = record == Record::Full;
        let costs = Costs::from_config(&exp.execution);
        let cap = if full { n } else { 0 };
        Loop {
            exp,
            pv: prep,
            base: exp,
            base_prep: prep,
            rb_open: None,
            rb_px: vec![f64::NAN; ns],
            rb_bufs: rebalancing::Buffers::new(ns),
            md,
            n,
            ns,
            costs,
            sym_costs: (0..ns).map(|s| Costs { lot: prep.lots.get(s).copied().unwrap_or(costs.lot), ..costs }).collect(),
            pf: if full {
                Portfolio::new(exp.portfolio.initial_cash, ns)
            } else {
                Portfolio::new(exp.portfolio.initial_cash, ns).folding()
            },
            pending: Vec::with_capacity(2 * ns),
            res: RunResult {
                equity: Vec::with_capacity(if record == Record::Stats { 0 } else { n }),
                cash: Vec::with_capacity(cap),
                positions: vec![Vec::with_capacity(cap); ns],
                target_weights: if full && exp.rebalance.is_some() { vec![Vec::with_capacity(n); ns] } else { Vec::new() },
                stream: crate::metrics::EquityStream::new(exp.portfolio.initial_cash, exp.metrics.risk_free / prep.per_year).with_blocks(n),
                ..Default::default()
            },
            best: vec![0.0; ns],
            entry_atr: vec![f64::NAN; ns],
            atr: &prep.atr,
            entry_open_bar: vec![usize::MAX; ns],
            entry_close_bar: vec![usize::MAX; ns],
            entry_bar: vec![usize::MAX; ns],
            memo: (0..ns).map(|_| Default::default()).collect(),
            targets: vec![0.0; ns],
            target_qty: vec![0.0; ns],
            log: record == Record::Full,
            curve: record != Record::Stats,
            order_count: 0,
            scratch: OrderRecord {
                order: Order {
                    id: 0,
                    sym: 0,
                    size: Size::Qty(0.0),
                    price: PriceType::Market,
                    bar: 0,
                    at_close: false,
                    expires: None,
                    reason: Reason::Signal,
                },
                created: 0,
                filled_qty: 0.0,
                status: Status::Pending,
                note: String::new(),
            },
            stopped_dir: vec![0; ns],
            dirty: vec![false; ns],
            last_refused: vec![None; ns],
            account: risk::Account::new(exp.portfolio.initial_cash),
            active_label: u8::MAX,
            exposed: false,
            dynamic_size,
            has_stops,
            calendar,
            borrow_per_bar,
            can_skip,
            direct: ns == 1 && exp.execution.fill == FillTiming::Close && prep.regime.is_none() && exp.rebalance.is_none(),
            act_cursor: vec![0; ns],
            t: 0,
            done: false,
            idle_from: None,
            tile: Vec::new(),
        }
    }

    /// Marks move to bar t's open or close.
    fn mark(&mut self, t: usize, close: bool) {
        for s in 0..self.ns {
            let b = &self.md.bars[s];
            self.pf.mark[s] = if close { b.close[t] } else { b.open[t] };
        }
    }

    /// Phase 2: stops and take-profits act on bar t's range.
    fn stops(&mut self, t: usize) {
        if !self.has_stops {
            return;
        }
        let ns = self.ns;
        let rc = &self.exp.risk;
        for s in 0..ns {
            let q = self.pf.qty[s];
            let b = &self.md.bars[s];
            if q == 0.0 || !b.tradable[t] || self.entry_close_bar[s] == t {
                continue;
            }
            let dir = q.signum();
            if !(rc.stop_on_entry_bar || self.entry_open_bar[s] != t) {
                continue;
            }
            if let Some((why, level, maker)) =
                risk::check_stops(rc, dir, self.pf.avg_price[s], self.best[s], self.entry_atr[s], b.open[t], b.high[t], b.low[t])
            {
                // Logged (and the symbol's waiting order cancelled) but filled here, at the stop's
                // level.
                let id = self.enter_closing(t, s, q, false, why);
                let out = execution::fill(
                    Size::Qty(-q),
                    q,
                    level,
                    maker,
                    self.pf.equity(),
                    self.pf.cash,
                    f64::INFINITY,
                    &Costs { lot: 0.0, max_part: None, min_notional: 0.0, min_qty: 0.0, ..self.costs },
                );
                if let Outcome::Fill { qty, price, fee, .. } = out {
                    self.book_whole(t, s, qty, price, fee, why, id, false);
                }
                self.res.risk_events.push(RiskEvent {
                    bar: t,
                    sym: Some(s),
                    rule: RiskRule::of_stop(why),
                    requested: level,
                    allowed: self.res.fills.last().map_or(level, |f| f.price),
                });
                self.targets[s] = 0.0;
                self.target_qty[s] = 0.0;
                self.stopped_dir[s] = dir as i8;
            } else if dir > 0.0 {
                self.best[s] = self.best[s].max(b.high[t]);
            } else {
                self.best[s] = self.best[s].min(b.low[t]);
            }
        }
    }

    /// Phase 5: the decision turns bar t's combined signal into targets (equity `eq` at the close),
    /// risk clips or refuses them, and orders go out. A symbol is looked at only when its
    /// combined signal changed, when its target depends on equity or volatility, or when an
    /// earlier request was refused or clipped (it may pass now): on other bars nothing can change.
    fn decide(&mut self, t: usize, eq: f64) {
        let pv = self.pv;
        for s in 0..self.ns {
            if let Some(d) = &pv.drivers[s] {
                // A strategy: asked at every bar, from its position.
                let view = signals::View { t, sym: s, md: self.md, cache: &pv.cache, pos: self.position(t, s), memo: &self.memo[s] };
                let dir = match d.signal.decide(&view) {
                    signals::Action::Hold => continue,
                    signals::Action::Long => 1,
                    signals::Action::Short => -1,
                    signals::Action::Flat => 0,
                };
                self.dirty[s] = false;
                if self.log {
                    self.res.decisions.push((t, s, dir, d.strength, d.confidence));
                }
                self.set_target(t, s, eq, dir, d.strength, d.confidence);
                continue;
            }
            let c = if self.tile.is_empty() { &pv.combined[s] } else { &self.tile[s] };
            let (dir, strength, conf) = c.get(t);
            if !(self.dynamic_size || self.dirty[s] || t == 0 || c.get(t - 1) != (dir, strength, conf)) {
                continue;
            }
            self.dirty[s] = false;
            if self.stopped_dir[s] != 0 {
                if dir != signals::NONE && dir != self.stopped_dir[s] {
                    self.stopped_dir[s] = 0;
                } else {
                    continue;
                }
            }
            self.set_target(t, s, eq, dir, strength, conf);
        }
    }

    /// A strategy's position in symbol `s` at bar t (see [`signals::Position`]).
    fn position(&self, t: usize, s: usize) -> signals::Position {
        let tgt = if self.exp.decision.sizing == Sizing::FixedQuantity { self.target_qty[s] } else { self.targets[s] };
        let side = if tgt > 0.0 {
            1
        } else if tgt < 0.0 {
            -1
        } else {
            0
        };
        let q = self.pf.qty[s];
        if q == 0.0 {
            return signals::Position { side, ..Default::default() };
        }
        let entry = self.pf.avg_price[s];
        signals::Position {
            side,
            qty: q,
            entry_price: entry,
            bars_in_trade: t.saturating_sub(self.entry_bar[s]),
            unrealized_return: (self.md.bars[s].close[t] / entry - 1.0) * q.signum(),
        }
    }

    /// Turn a signal (direction, strength, confidence) for symbol `s` at bar t into its target,
    /// through the decision and the risk limits, and send the order.
    fn set_target(&mut self, t: usize, s: usize, eq: f64, dir: i8, strength: u8, conf: f64) {
        let (ex, pv, md) = (self.exp, self.pv, self.md);
        let rc = &ex.risk;
        let vol = pv.vol.get(s).map_or(f64::NAN, |v| v[t]);
        let Some(mut want) = decision::target(&ex.decision, self.base.portfolio.allow_short, dir, strength, conf, eq, vol) else {
            return;
        };
        // A quantity target is judged by risk as the fraction it is worth at this close.
        let units = ex.decision.sizing == Sizing::FixedQuantity;
        let px = md.bars[s].close[t];
        let want_qty = want;
        if units {
            want = if eq > 0.0 { want_qty * px / eq } else { 0.0 };
        }
        let cur = self.targets[s];
        let others: f64 = self.targets.iter().enumerate().filter(|(i, _)| *i != s).map(|(_, x)| x.abs()).sum();
        let (mut tgt, rule) = risk::clip_target(rc, want, others);
        if rule == Some(RiskRule::MaxGrossExposure) {
            self.dirty[s] = true;
        }
        if tgt.abs() < 1e-15 {
            tgt = 0.0;
        }
        let tgt_qty = if want == 0.0 { 0.0 } else { want_qty * (tgt / want) };
        let unchanged =
            if units { (tgt_qty - self.target_qty[s]).abs() <= 1e-12 * tgt_qty.abs().max(1.0) } else { (tgt - cur).abs() < 1e-12 };
        if unchanged {
            // A request the limits cut back to the target already in force (often to nothing: no
            // room left beside the other symbols) is still said, once while it stands.
            if let Some(rule) = rule {
                if self.last_refused[s] != Some(want) {
                    self.res.risk_events.push(RiskEvent { bar: t, sym: Some(s), rule, requested: want, allowed: tgt });
                    self.last_refused[s] = Some(want);
                }
            }
            return;
        }
        let adds_risk = if units {
            let held = self.target_qty[s];
            tgt_qty.abs() > held.abs() * (1.0 + 1e-12) || (tgt_qty != 0.0 && held != 0.0 && tgt_qty.signum() != held.signum())
        } else {
            tgt.abs() > cur.abs() + 1e-12 || (tgt != 0.0 && cur != 0.0 && tgt.signum() != cur.signum())
        };
        let refused = if !adds_risk {
            None
        } else if let Some(rule) = self.account.blocking() {
            Some(rule)
        } else if self.account.entries_used_up(rc) {
            Some(RiskRule::MaxTradesPerDay)
        } else if risk::correlated(&pv.corr, &self.targets, s, tgt, t, rc.max_correlation) {
            Some(RiskRule::MaxCorrelation)
        } else {
            None
        };
        if let Some(rule) = refused {
            self.dirty[s] = true;
            if self.last_refused[s] != Some(tgt) {
                self.res.risk_events.push(RiskEvent { bar: t, sym: Some(s), rule, requested: tgt, allowed: cur });
                self.last_refused[s] = Some(tgt);
            }
            return;
        }
        self.last_refused[s] = None;
        if adds_risk {
            self.account.count_entry();
        }
        if let Some(rule) = rule {
            self.res.risk_events.push(RiskEvent { bar: t, sym: Some(s), rule, requested: want, allowed: tgt });
        }
        self.targets[s] = tgt;
        self.target_qty[s] = tgt_qty;
        let size = if units { Size::TargetQty(tgt_qty) } else { Size::TargetFraction(tgt) };
        self.send_signal_order(t, s, size, tgt > cur);
    }

    /// Send a signal's order for symbol `s` decided at bar t (`buy`: it raises the position),
    /// at the experiment's order type and time in force.
    fn send_signal_order(&mut self, t: usize, s: usize, size: Size, buy: bool) {
        let (bar, at_close) = self.when(t);
        let x = &self.base.execution;
        let price = match x.order_type {
            OrderType::Market => PriceType::Market,
            OrderType::Limit => {
                let side = if buy { -1.0 } else { 1.0 };
                PriceType::Limit(self.md.bars[s].close[t] * (1.0 + side * x.limit_offset_bps / 1e4))
            }
            OrderType::Stop => {
                let side = if buy { 1.0 } else { -1.0 };
                PriceType::Stop(self.md.bars[s].close[t] * (1.0 + side * x.limit_offset_bps / 1e4))
            }
        };
        let by_bars = (x.time_in_force_bars > 0).then(|| bar + x.time_in_force_bars - 1);
        let by_day = x.time_in_force_day.then(|| last_bar_of_day(&self.md.timestamps, bar));
        let expires = match (by_bars, by_day) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let id = self.next_id();
        self.submit_signal(t, Order { id, sym: s, size, price, bar, at_close, expires, reason: Reason::Signal });
    }

    /// From bar t, skip the bars where nothing can happen but marking to market, in bulk: with
    /// no order waiting, no stop or account-level limit to watch and no re-evaluation owed, the
    /// state can only change at the next act of some symbol's combined signal (a bar where a
    /// present signal differs from the bar before: see `Combined::acts`). Returns the next bar
    /// to run, at most `limit`. A skip that reaches the end of a tile (`limit` short of the last
    /// bar) is put off: the bars are pushed in one piece, as a whole-series run pushes them,
    /// once a later tile shows where it ends.
    fn skip_idle(&mut self, t: usize, limit: usize) -> usize {
        let (md, n, ns) = (self.md, self.n, self.ns);
        if !(self.can_skip && self.pending.is_empty() && !self.dirty.contains(&true)) {
            return t;
        }
        let comb: &[signals::Combined] = if self.tile.is_empty() { &self.base_prep.combined } else { &self.tile };
        let mut next = limit;
        for (c, k) in comb.iter().zip(&mut self.act_cursor) {
            next = c.next_act(k, t, next);
        }
        let from = self.idle_from.unwrap_or(t);
        if next == limit && limit < n && next > from {
            self.idle_from = Some(from);
            return limit;
        }
        self.idle_from = None;
        let t = from;
        if next > t {
            // The bar jumped to is cold in every array the loop reads there: ask for those
            // lines now, so they arrive while the bars between are marked to market.
            if next < n {
                for (b, c) in md.bars.iter().zip(comb) {
                    prefetch(&b.open[next]);
                    prefetch(&b.volume[next]);
                    prefetch(&b.tradable[next]);
                    prefetch(&c.dir[next - 1 - c.base]);
                }
            }
            // A short against a rising market (or borrowed cash against a falling one) can take
            // the equity to zero inside the stretch: it stops there, and that bar ruins the run.
            let ruin = self.ruin_in(t, next);
            let stop = ruin.unwrap_or(next);
            if stop > t {
                self.push_idle(t, stop);
            }
            if let Some(r) = ruin {
                for s in 0..ns {
                    self.pf.mark[s] = md.bars[s].close[r];
                }
                self.record_bar(r);
                self.done = true;
                return limit;
            }
            return next;
        }
        t
    }

    /// The first bar in `t..next` at whose close the book as it stands is worth zero or less,
    /// summed as [`Portfolio::equity`] sums (so as `record_bar` would see it). Long positions
    /// with cash left cannot get there (prices are positive): no scan.
    fn ruin_in(&self, t: usize, next: usize) -> Option<usize> {
        let (md, cash, qty) = (self.md, self.pf.cash, &self.pf.qty);
        if cash > 0.0 && qty.iter().all(|q| *q >= 0.0) {
            return None;
        }
        (t..next).find(|&u| cash + (0..self.ns).fold(0.0, |pos, s| pos + qty[s] * md.bars[s].close[u]) <= 0.0)
    }

    /// Bars `t..next` in which nothing can happen but the marks moving: pushed in bulk.
    fn push_idle(&mut self, t: usize, next: usize) {
        let (md, ns) = (self.md, self.ns);
        let cash = self.pf.cash;
        if ns == 1 && !self.log && !self.curve {
            // One symbol, nothing recorded per bar: `equity_at` below, spelled out.
            let (q, close) = (self.pf.qty[0], &md.bars[0].close);
            let eq_at = |u: usize| cash + (0.0 + q * close[u]);
            if q == 0.0 {
                self.res.stream.push_flat(eq_at(t), next - t);
            } else {
                self.res.stream.push_position(cash, q, &close[t..next]);
            }
            self.account.closed_at(eq_at(next - 1));
            if self.exposed {
                self.res.exposure_bars += next - t;
            }
            self.pf.mark[0] = close[next - 1];
            return;
        }
        // In place: the statistics hold the block sums (a copy per skip would cost more than
        // the skip); the bulk pushes keep their hot state in locals themselves.
        let res = &mut self.res;
        let stream = &mut res.stream;
        let qty = &self.pf.qty;
        // Summed as `Portfolio::equity` sums, so both paths agree to the last bit.
        let equity_at = |u: usize| cash + (0..ns).fold(0.0, |pos, s| pos + qty[s] * md.bars[s].close[u]);
        // The same calls whether or not the curve is recorded, so the statistics are too.
        let flat = qty.iter().all(|q| *q == 0.0);
        let bulk = flat || ns == 1;
        if flat {
            stream.push_flat(equity_at(t), next - t);
        } else if ns == 1 {
            stream.push_position(cash, qty[0], &md.bars[0].close[t..next]);
        }
        if self.log || self.curve || !bulk {
            for u in t..next {
                let eq = equity_at(u);
                if !bulk {
                    stream.push(eq);
                }
                if self.curve {
                    res.equity.push(eq);
                }
                if self.log {
                    res.cash.push(cash);
                    for s in 0..ns {
                        res.positions[s].push(qty[s]);
                    }
                }
            }
        }
        self.account.closed_at(equity_at(next - 1));
        if self.exposed {
            self.res.exposure_bars += next - t;
        }
        for s in 0..ns {
            self.pf.mark[s] = md.bars[s].close[next - 1];
        }
    }

    /// Phase 4: the drawdown halt and the daily loss limit look at the close equity `eq`; either that
    /// fires flattens the book.
    fn account_limits(&mut self, t: usize, eq: f64) {
        let [drawdown, daily] = self.account.at_close(&self.exp.risk, t, eq);
        if let Some(e) = drawdown {
            self.res.risk_events.push(e);
            self.flatten(t, Reason::Halt);
            self.dirty.fill(true);
        }
        if let Some(e) = daily {
            self.res.risk_events.push(e);
            self.flatten(t, Reason::Halt);
        }
    }

    /// Phase 5, first: with `[regime]`, bar t's label picks the parameter set in force from this close;
    /// whether it changed.
    fn regime(&mut self, t: usize) -> bool {
        let Some(rg) = &self.base_prep.regime else { return false };
        let lab = rg.labels.label[t];
        if lab == self.active_label {
            return false;
        }
        let (e2, p2) = match rg.which[lab as usize] {
            Some(i) => (&rg.variants[i].0, &rg.variants[i].1),
            None => (self.base, self.base_prep),
        };
        let changed = !std::ptr::eq(e2, self.exp);
        if changed {
            self.res.regime_switches += 1;
            self.dirty.fill(true);
            if self.log {
                tracing::debug!("bar {t}: regime {}, its parameters from this close", crate::regime::REGIMES[lab as usize]);
            }
        }
        self.exp = e2;
        self.pv = p2;
        self.atr = &p2.atr;
        self.active_label = lab;
        changed
    }

    /// Phase 6: record bar t; false when the run ends there: the book stopped being finite (the
    /// bar is not recorded) or the account is ruined (it is, at equity 0).
    fn record_bar(&mut self, t: usize) -> bool {
        let mut eq = self.pf.equity();
        if self.res.fault.is_none() && !(eq.is_finite() && self.pf.cash.is_finite()) {
            self.res.fault = Some((t, format!("equity {eq:e}, cash {:e} are not finite numbers", self.pf.cash)));
        }
        if self.res.fault.is_some() {
            return false;
        }
        let ruined = eq <= 0.0;
        if ruined {
            self.liquidate(t, eq);
            eq = 0.0;
        }
        self.account.closed_at(eq);
        self.res.stream.push(eq);
        let mut exposed = false;
        for s in 0..self.ns {
            exposed |= self.pf.qty[s] != 0.0;
        }
        self.exposed = exposed;
        if self.curve {
            self.res.equity.push(eq);
        }
        if self.log {
            self.res.cash.push(self.pf.cash);
            for s in 0..self.ns {
                self.res.positions[s].push(self.pf.qty[s]);
            }
        }
        self.res.exposure_bars += usize::from(exposed);
        !ruined
    }

    /// Equity `eq` at or below zero at bar t's close: the account is ruined. Its positions are
    /// closed at that close without a fee (nothing is left to pay it from), the waiting orders
    /// are dropped and the cash is set to 0: the loss stops at the account, the rest is the
    /// broker's (a margin call), and the run ends.
    fn liquidate(&mut self, t: usize, eq: f64) {
        self.res.ruin = Some((t, eq));
        for o in std::mem::take(&mut self.pending) {
            if let Some(r) = self.res.orders.get_mut(o.id as usize) {
                r.status = Status::Cancelled;
            }
        }
        for s in 0..self.ns {
            let q = self.pf.qty[s];
            if q == 0.0 {
                continue;
            }
            let id = self.enter_closing(t, s, q, true, Reason::Liquidation);
            self.book_whole(t, s, -q, self.md.bars[s].close[t], 0.0, Reason::Liquidation, id, true);
        }
        self.pf.cash = 0.0;
    }

    /// Bars after a ruin: equity, cash and positions stay at 0 to the end (recorded runs).
    fn pad_after_ruin(&mut self) {
        let n = self.md.len();
        if self.curve {
            self.res.equity.resize(n, 0.0);
        }
        if self.log {
            self.res.cash.resize(n, 0.0);
            for p in &mut self.res.positions {
                p.resize(n, 0.0);
            }
        }
    }

    /// Open trades marked at the last close, and the book's totals.
    fn finish(mut self) -> RunResult {
        if self.res.ruin.is_some() {
            self.pad_after_ruin();
        }
        let Loop { mut pf, mut res, .. } = self;
        pf.mark_open_trades();
        res.fees = pf.fees;
        res.borrow_paid = pf.borrow_paid;
        res.traded_notional = pf.traded_notional;
        res.trades = pf.trades;
        res.folded = pf.folded;
        res
    }
}

/// The last bar on the same UTC day as bar `b` (b itself when it lies beyond the data).
fn last_bar_of_day(ts: &[i64], b: usize) -> usize {
    let Some(&t0) = ts.get(b) else { return b };
    let day = t0.div_euclid(DAY_MS);
    b + ts[b..].iter().take_while(|t| t.div_euclid(DAY_MS) == day).count() - 1
}

/// Ask the cache for the line holding `x` (a hint: nothing waits for it).
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing into the program and cannot fault, whatever the address;
    // SSE is part of every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((x as *const T).cast());
    }
}
