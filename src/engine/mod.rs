//! The engine: the event loop where data, signals, decision, risk, execution and portfolio
//! meet. Per bar t, in order:
//! 1. marks move to t's open; orders due at the open fill (limits check t's range);
//! 2. stops and take-profits act on t's range (see [`crate::risk`]);
//! 3. marks move to t's close; orders due at the close fill; equity is marked;
//! 4. drawdown halt and daily-loss limit look at the close equity;
//! 5. the regime label of t (if `[regime]`) picks the parameter set in force from this close;
//!    then either the rebalancer (if `[rebalance]`) checks weights against targets and sends
//!    orders when a band or calendar trigger fires, or the decision turns t's combined signal
//!    into targets; risk clips them; orders are sent to fill at t+1's open (default), t+1's
//!    close, n bars later, or t's own close; a rebalance is checked once its last order ends;
//! 6. the bar is recorded.
//!
//! A decision at t sees nothing after t's close, so look-ahead is impossible by construction.
//! Nothing in the loop depends on wall clock, threads or hash order: a run is a pure function of
//! the experiment and the data.

#![allow(clippy::needless_range_loop)] // loops over symbol ids index several parallel arrays

mod orders;
mod prepare;
mod rebalancing;
mod runner;

pub use prepare::{prepare, Prepared, RegimePrep};
pub use runner::{run_experiment, run_file, RunOptions, RunOutput};

use crate::data::time::DAY_MS;
use crate::data::MarketData;
use crate::decision;
use crate::execution::{self, Costs, Order, OrderRecord, Outcome, PriceType, Size, Status};
use crate::experiment::{Experiment, FillTiming, OrderType, Sizing};
use crate::portfolio::{Fill, Portfolio, Reason, Trade};
use crate::rebalance::{DriftStats, RebalanceRecord};
use crate::risk::{self, RiskEvent};
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
    /// Round trips (open ones marked at the last close).
    pub trades: Vec<Trade>,
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
    /// Set when a fill or the book stopped being a finite number (prices too small or too
    /// large for the arithmetic): the bar and what went wrong. The run stops there; its
    /// results are not to be used.
    pub fault: Option<(usize, String)>,
}

struct Loop<'a> {
    exp: &'a Experiment,
    lots: &'a [f64],
    /// The rebalance whose orders are still working.
    rb_open: Option<usize>,
    /// Price of each symbol's latest fill in the working rebalance (NaN: none yet).
    rb_px: Vec<f64>,
    md: &'a MarketData,
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
    targets: Vec<f64>,
    /// Target quantity per symbol (`fixed_quantity` sizing).
    target_qty: Vec<f64>,
    /// Whether fills and orders are logged (a recorded run) or only counted (a candidate).
    log: bool,
    order_count: u64,
    /// Where status updates go when orders are not logged.
    scratch: OrderRecord,
}

/// Run one backtest over prepared inputs, recording every bar (equity, cash, positions).
pub fn backtest(exp: &Experiment, prep: &Prepared) -> RunResult {
    run(exp, prep, true)
}

/// Run one backtest keeping only running statistics, trades and risk events: no per-bar vectors,
/// no fill or order log (what an optimizer candidate needs).
pub fn backtest_stats(exp: &Experiment, prep: &Prepared) -> RunResult {
    run(exp, prep, false)
}

fn run(exp: &Experiment, prep: &Prepared, record: bool) -> RunResult {
    let md = &*prep.md;
    let (n, ns) = (md.len(), md.symbols.len());
    let rc = &exp.risk;
    let mut lp = Loop {
        exp,
        lots: &prep.lots,
        rb_open: None,
        rb_px: vec![f64::NAN; ns],
        md,
        costs: Costs::from_config(&exp.execution),
        pf: Portfolio::new(exp.portfolio.initial_cash, ns),
        pending: Vec::with_capacity(2 * ns),
        res: RunResult {
            equity: Vec::with_capacity(if record { n } else { 0 }),
            cash: Vec::with_capacity(if record { n } else { 0 }),
            positions: vec![Vec::with_capacity(if record { n } else { 0 }); ns],
            target_weights: if record && exp.rebalance.is_some() { vec![Vec::with_capacity(n); ns] } else { Vec::new() },
            stream: crate::metrics::EquityStream::new(exp.portfolio.initial_cash, exp.metrics.risk_free / prep.per_year).with_blocks(n),
            ..Default::default()
        },
        best: vec![0.0; ns],
        entry_atr: vec![f64::NAN; ns],
        atr: &prep.atr,
        entry_open_bar: vec![usize::MAX; ns],
        entry_close_bar: vec![usize::MAX; ns],
        targets: vec![0.0; ns],
        target_qty: vec![0.0; ns],
        log: record,
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
    };
    let mut stopped_dir = vec![0i8; ns];
    let mut dirty = vec![false; ns];
    let mut last_refused: Vec<Option<f64>> = vec![None; ns];
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
    let (mut ex, mut pv) = (exp, prep);
    let mut active_label = u8::MAX;
    let mut rb_bufs = rebalancing::Buffers::new(ns);
    let mut peak = exp.portfolio.initial_cash;
    let mut halted_until: Option<usize> = None; // usize::MAX = for good
    let (mut day, mut day_start_eq, mut day_blocked, mut day_entries) = (i64::MIN, peak, false, 0u32);
    let mut last_eq = peak;

    // Bars where nothing can happen but marking to market are skipped in bulk: with no order
    // waiting, no stop or account-level limit to watch and no re-evaluation owed, the state can
    // only change at the next act of some symbol's combined signal (a bar where a present signal
    // differs from the bar before: see `Combined::acts`).
    let can_skip = !has_stops
        && !calendar
        && borrow_per_bar == 0.0
        && !dynamic_size
        && rc.max_drawdown.is_none()
        && prep.regime.is_none()
        && exp.rebalance.is_none();
    let mut act_cursor = vec![0usize; ns];
    let mut t = 0;
    while t < n {
        let rc = &ex.risk;
        // UTC day boundaries matter only to the daily limits (and the division is not free).
        let d = if calendar { md.timestamps[t].div_euclid(DAY_MS) } else { 0 };
        if d != day {
            day = d;
            day_start_eq = last_eq;
            day_blocked = false;
            day_entries = 0;
        }
        // 1. Open.
        for s in 0..ns {
            lp.pf.mark[s] = md.bars[s].open[t];
        }
        lp.process(t, false);
        lp.settle_rebalance(t);
        // 2. Stops.
        for s in 0..ns {
            if !has_stops {
                break;
            }
            let q = lp.pf.qty[s];
            let b = &md.bars[s];
            if q == 0.0 || !b.tradable[t] || lp.entry_close_bar[s] == t {
                continue;
            }
            let dir = q.signum();
            if !(rc.stop_on_entry_bar || lp.entry_open_bar[s] != t) {
                continue;
            }
            if let Some((why, level, maker)) =
                risk::check_stops(rc, dir, lp.pf.avg_price[s], lp.best[s], lp.entry_atr[s], b.open[t], b.high[t], b.low[t])
            {
                let id = lp.next_id();
                let order = Order {
                    id,
                    sym: s,
                    size: Size::Qty(-q),
                    price: PriceType::Market,
                    bar: t,
                    at_close: false,
                    expires: None,
                    reason: why,
                };
                lp.submit(t, order.clone());
                lp.pending.retain(|o| o.id != id);
                let out = execution::fill(
                    Size::Qty(-q),
                    q,
                    level,
                    maker,
                    lp.pf.equity(),
                    lp.pf.cash,
                    f64::INFINITY,
                    &Costs { lot: 0.0, max_part: None, min_notional: 0.0, min_qty: 0.0, ..lp.costs },
                );
                if let Outcome::Fill { qty, price, fee, .. } = out {
                    lp.book(t, s, qty, price, fee, why, id, false);
                    let rec = lp.res.orders.get_mut(id as usize).unwrap_or(&mut lp.scratch);
                    rec.filled_qty = qty;
                    rec.status = Status::Filled;
                }
                let rule = match why {
                    Reason::TakeProfit => "take_profit",
                    Reason::TrailingStop => "trailing_stop",
                    _ => "stop_loss",
                };
                lp.res.risk_events.push(RiskEvent {
                    bar: t,
                    sym: Some(s),
                    rule,
                    requested: level,
                    allowed: lp.res.fills.last().map_or(level, |f| f.price),
                });
                lp.targets[s] = 0.0;
                lp.target_qty[s] = 0.0;
                stopped_dir[s] = dir as i8;
            } else if dir > 0.0 {
                lp.best[s] = lp.best[s].max(b.high[t]);
            } else {
                lp.best[s] = lp.best[s].min(b.low[t]);
            }
        }
        // 3. Close.
        for s in 0..ns {
            lp.pf.mark[s] = md.bars[s].close[t];
        }
        lp.process(t, true);
        lp.settle_rebalance(t);
        if borrow_per_bar > 0.0 {
            lp.pf.charge_borrow(borrow_per_bar);
        }
        let eq = lp.pf.equity();
        // 4. Account-level limits.
        if let Some(until) = halted_until {
            if until != usize::MAX && t >= until {
                halted_until = None;
                peak = eq;
            }
        }
        peak = peak.max(eq);
        if let Some(mdd) = rc.max_drawdown {
            if halted_until.is_none() && eq < peak * (1.0 - mdd) {
                halted_until = Some(if rc.halt_bars == 0 { usize::MAX } else { t + rc.halt_bars });
                lp.res.risk_events.push(RiskEvent { bar: t, sym: None, rule: "max_drawdown", requested: 1.0 - eq / peak, allowed: mdd });
                lp.flatten(t, Reason::Halt);
                dirty.fill(true);
            }
        }
        if let Some(mdl) = rc.max_daily_loss {
            if !day_blocked && eq < day_start_eq * (1.0 - mdl) {
                day_blocked = true;
                lp.res.risk_events.push(RiskEvent {
                    bar: t,
                    sym: None,
                    rule: "max_daily_loss",
                    requested: 1.0 - eq / day_start_eq,
                    allowed: mdl,
                });
                lp.flatten(t, Reason::Halt);
            }
        }
        let blocked = halted_until.is_some() || day_blocked;
        // The regime labelled from data up to this close picks the parameters from here on.
        let mut regime_changed = false;
        if let Some(rg) = &prep.regime {
            let lab = rg.labels.label[t];
            if lab != active_label {
                let (e2, p2) = match rg.which[lab as usize] {
                    Some(i) => (&rg.variants[i].0, &rg.variants[i].1),
                    None => (exp, prep),
                };
                if !std::ptr::eq(e2, ex) {
                    regime_changed = true;
                    lp.res.regime_switches += 1;
                    dirty.fill(true);
                    if record {
                        tracing::debug!("bar {t}: regime {}, its parameters from this close", crate::regime::REGIMES[lab as usize]);
                    }
                }
                (ex, pv) = (e2, p2);
                lp.exp = e2;
                lp.atr = &p2.atr;
                active_label = lab;
            }
        }
        let rc = &ex.risk;
        if ex.rebalance.is_some() {
            lp.rebalance_step(t, pv, &mut rb_bufs, regime_changed, blocked);
        }
        // 5. Decision. A symbol is looked at only when its combined signal changed, when its
        // target depends on equity or volatility, or when an earlier request was refused or
        // clipped (it may pass now): on other bars nothing can change.
        for s in 0..ns {
            if ex.rebalance.is_some() {
                break;
            }
            let c = &pv.combined[s];
            let dir = c.dir[t];
            if !(dynamic_size
                || dirty[s]
                || t == 0
                || c.dir[t - 1] != dir
                || c.strength_at(t - 1) != c.strength_at(t)
                || c.conf_at(t - 1) != c.conf_at(t))
            {
                continue;
            }
            dirty[s] = false;
            if stopped_dir[s] != 0 {
                if dir != signals::NONE && dir != stopped_dir[s] {
                    stopped_dir[s] = 0;
                } else {
                    continue;
                }
            }
            let vol = pv.vol.get(s).map_or(f64::NAN, |v| v[t]);
            let Some(mut want) = decision::target(&ex.decision, exp.portfolio.allow_short, dir, c.strength_at(t), c.conf_at(t), eq, vol)
            else {
                continue;
            };
            // A quantity target is judged by risk as the fraction it is worth at this close.
            let units = ex.decision.sizing == Sizing::FixedQuantity;
            let px = md.bars[s].close[t];
            let want_qty = want;
            if units {
                want = if eq > 0.0 { want_qty * px / eq } else { 0.0 };
            }
            let cur = lp.targets[s];
            let others: f64 = lp.targets.iter().enumerate().filter(|(i, _)| *i != s).map(|(_, x)| x.abs()).sum();
            let (mut tgt, rule) = risk::clip_target(rc, want, others);
            if rule == Some("max_gross_exposure") {
                dirty[s] = true;
            }
            if tgt.abs() < 1e-15 {
                tgt = 0.0;
            }
            let tgt_qty = if want == 0.0 { 0.0 } else { want_qty * (tgt / want) };
            let unchanged =
                if units { (tgt_qty - lp.target_qty[s]).abs() <= 1e-12 * tgt_qty.abs().max(1.0) } else { (tgt - cur).abs() < 1e-12 };
            if unchanged {
                continue;
            }
            let adds_risk = if units {
                let held = lp.target_qty[s];
                tgt_qty.abs() > held.abs() * (1.0 + 1e-12) || (tgt_qty != 0.0 && held != 0.0 && tgt_qty.signum() != held.signum())
            } else {
                tgt.abs() > cur.abs() + 1e-12 || (tgt != 0.0 && cur != 0.0 && tgt.signum() != cur.signum())
            };
            let refused = if !adds_risk {
                None
            } else if blocked {
                Some(if day_blocked { "max_daily_loss" } else { "max_drawdown" })
            } else if rc.max_trades_per_day.is_some_and(|max| day_entries >= max) {
                Some("max_trades_per_day")
            } else if correlated(pv, &lp.targets, s, tgt, t, rc.max_correlation) {
                Some("max_correlation")
            } else {
                None
            };
            if let Some(rule) = refused {
                dirty[s] = true;
                if last_refused[s] != Some(tgt) {
                    lp.res.risk_events.push(RiskEvent { bar: t, sym: Some(s), rule, requested: tgt, allowed: cur });
                    last_refused[s] = Some(tgt);
                }
                continue;
            }
            last_refused[s] = None;
            if adds_risk {
                day_entries += 1;
            }
            if let Some(rule) = rule {
                lp.res.risk_events.push(RiskEvent { bar: t, sym: Some(s), rule, requested: want, allowed: tgt });
            }
            lp.targets[s] = tgt;
            lp.target_qty[s] = tgt_qty;
            let (bar, at_close) = lp.when(t);
            let x = &exp.execution;
            let price = match x.order_type {
                OrderType::Market => PriceType::Market,
                OrderType::Limit => {
                    let side = if tgt > cur { -1.0 } else { 1.0 };
                    PriceType::Limit(md.bars[s].close[t] * (1.0 + side * x.limit_offset_bps / 1e4))
                }
                OrderType::Stop => {
                    let side = if tgt > cur { 1.0 } else { -1.0 };
                    PriceType::Stop(md.bars[s].close[t] * (1.0 + side * x.limit_offset_bps / 1e4))
                }
            };
            let by_bars = (x.time_in_force_bars > 0).then(|| bar + x.time_in_force_bars - 1);
            let by_day = x.time_in_force_day.then(|| last_bar_of_day(&md.timestamps, bar));
            let expires = match (by_bars, by_day) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let id = lp.next_id();
            let size = if units { Size::TargetQty(tgt_qty) } else { Size::TargetFraction(tgt) };
            lp.submit(t, Order { id, sym: s, size, price, bar, at_close, expires, reason: Reason::Signal });
        }
        if exp.execution.fill == FillTiming::Close {
            lp.process(t, true);
            lp.settle_rebalance(t);
        }
        // 6. Record.
        let eq = lp.pf.equity();
        if lp.res.fault.is_none() && !(eq.is_finite() && lp.pf.cash.is_finite()) {
            lp.res.fault = Some((t, format!("equity {eq:e}, cash {:e} are not finite numbers", lp.pf.cash)));
        }
        if lp.res.fault.is_some() {
            break;
        }
        last_eq = eq;
        lp.res.stream.push(eq);
        let mut exposed = false;
        for s in 0..ns {
            exposed |= lp.pf.qty[s] != 0.0;
        }
        if record {
            lp.res.equity.push(eq);
            lp.res.cash.push(lp.pf.cash);
            for s in 0..ns {
                lp.res.positions[s].push(lp.pf.qty[s]);
            }
        }
        lp.res.exposure_bars += usize::from(exposed);
        t += 1;
        if can_skip && lp.pending.is_empty() && !dirty.contains(&true) {
            let mut next = n;
            for (c, k) in prep.combined.iter().zip(&mut act_cursor) {
                next = c.next_act(k, t, next);
            }
            if next > t {
                // The bar jumped to is cold in every array the loop reads there: ask for those
                // lines now, so they arrive while the bars between are marked to market.
                if next < n {
                    for (b, c) in md.bars.iter().zip(&prep.combined) {
                        prefetch(&b.open[next]);
                        prefetch(&b.volume[next]);
                        prefetch(&b.tradable[next]);
                        prefetch(&c.dir[next - 1]);
                    }
                }
                let cash = lp.pf.cash;
                // A local copy of the statistics lets them live in registers through the loop.
                let mut stream = lp.res.stream;
                let qty = &lp.pf.qty;
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
                if record || !bulk {
                    for u in t..next {
                        let eq = equity_at(u);
                        if !bulk {
                            stream.push(eq);
                        }
                        if record {
                            lp.res.equity.push(eq);
                            lp.res.cash.push(cash);
                            for s in 0..ns {
                                lp.res.positions[s].push(qty[s]);
                            }
                        }
                    }
                }
                last_eq = equity_at(next - 1);
                lp.res.stream = stream;
                if exposed {
                    lp.res.exposure_bars += next - t;
                }
                for s in 0..ns {
                    lp.pf.mark[s] = md.bars[s].close[next - 1];
                }
                t = next;
            }
        }
    }
    lp.pf.mark_open_trades();
    let Loop { pf, mut res, .. } = lp;
    res.fees = pf.fees;
    res.borrow_paid = pf.borrow_paid;
    res.traded_notional = pf.traded_notional;
    res.trades = pf.trades;
    res
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

/// Whether adding `tgt` to symbol `s` would hold it beside a same-direction position in a symbol
/// whose rolling return correlation with it exceeds `max` at bar t.
fn correlated(prep: &Prepared, targets: &[f64], s: usize, tgt: f64, t: usize, max: Option<f64>) -> bool {
    let Some(max) = max else { return false };
    let ns = targets.len();
    (0..ns).any(|j| {
        if j == s || targets[j] == 0.0 || targets[j].signum() != tgt.signum() {
            return false;
        }
        let (a, b) = if s < j { (s, j) } else { (j, s) };
        prep.corr[a * ns + b][t] > max
    })
}
