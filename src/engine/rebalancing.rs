//! The engine's rebalancing step: weights at the close against the rebalancer's targets, drift
//! statistics, triggers, orders, and the accuracy check once a rebalance's orders are done.

#![allow(clippy::needless_range_loop)] // weights, targets and positions are parallel arrays

use super::{Loop, Prepared};
use crate::execution::{Order, PriceType, Size};
use crate::experiment::{RebalanceConfig, TradeTo};
use crate::portfolio::Reason;
use crate::rebalance::{self, RebalanceRecord, Trigger};
use crate::{risk, signals};

/// Per-run scratch space of the rebalancing step (allocated once, not per bar).
#[derive(Default)]
pub(super) struct Buffers {
    w: Vec<f64>,
    tw: Vec<f64>,
    votes: Vec<f64>,
    aims: Vec<Option<f64>>,
}

impl Buffers {
    pub(super) fn new(ns: usize) -> Self {
        Buffers { w: vec![0.0; ns], tw: vec![0.0; ns], votes: vec![0.0; ns], aims: vec![None; ns] }
    }
}

impl Loop<'_> {
    /// At bar t's close, with `[rebalance]` in the parameters in force: compare weights with
    /// targets, record drift, and send a rebalance's orders when a trigger fires (`blocked`: a
    /// halt is on, so only reductions go).
    pub(super) fn rebalance_step(&mut self, t: usize, pv: &Prepared, b: &mut Buffers, regime_changed: bool, blocked: bool) {
        let ex = self.exp;
        let Some(rb) = &ex.rebalance else { return };
        let ns = b.w.len();
        let rc = &ex.risk;
        let rpp = pv.rebalance.as_ref().expect("prepared with [rebalance]");
        let eq = self.pf.equity();
        for s in 0..ns {
            b.w[s] = self.pf.qty[s] * self.md.bars[s].close[t] / eq;
            b.votes[s] = 0.0;
            let c = &pv.combined[s];
            if rb.signal_tilt > 0.0 && c.dir[t] != signals::NONE {
                let m = ex.decision.strength_multipliers[c.strength_at(t) as usize - 1];
                b.votes[s] = (c.dir[t] as f64 * m * c.conf_at(t)).clamp(-1.0, 1.0);
            }
        }
        rebalance::target_weights(rb, rpp, t, &b.votes, &mut b.tw);
        for s in 0..ns {
            let others: f64 = (0..ns).filter(|j| *j != s).map(|j| b.tw[j].abs()).sum();
            b.tw[s] = risk::clip_target(rc, b.tw[s], others).0;
        }
        let out = rebalance::outside(rb, &b.w, &b.tw);
        let d = &mut self.res.drift;
        d.bars += 1;
        d.outside_bars += usize::from(out);
        d.sq_dev += (0..ns).map(|s| (b.w[s] - b.tw[s]).powi(2)).sum::<f64>();
        if self.log {
            for s in 0..ns {
                self.res.target_weights[s].push(b.tw[s]);
            }
        }
        let trigger = if self.rb_open.is_some() {
            None
        } else if self.res.rebalances.is_empty() {
            Some(Trigger::Initial)
        } else if regime_changed {
            Some(Trigger::Regime)
        } else if rebalance::has_calendar(rb) {
            (rebalance::calendar_due(rb, rpp, t) && (!rebalance::has_band(rb) || out)).then_some(Trigger::Calendar)
        } else {
            out.then_some(Trigger::Band)
        };
        if let Some(trigger) = trigger {
            // The first allocation and a regime's new targets go all the way.
            let full;
            let how = if matches!(trigger, Trigger::Initial | Trigger::Regime) {
                full = RebalanceConfig { trade_to: TradeTo::Target, ..rb.clone() };
                &full
            } else {
                rb
            };
            rebalance::plan(how, &b.w, &b.tw, eq, &mut b.aims);
            let (bar, at_close) = self.when(t);
            let (mut est, mut orders) = (0.0, 0);
            for s in 0..ns {
                let Some(a) = b.aims[s] else { continue };
                // A halt lets the rebalancer reduce risk, never add it.
                if blocked && a.abs() > b.w[s].abs() {
                    b.aims[s] = None;
                    continue;
                }
                est += (a - b.w[s]).abs() * eq * (self.costs.taker + self.costs.slip) + self.costs.fixed;
                self.targets[s] = a;
                let id = self.next_id();
                let order = Order {
                    id,
                    sym: s,
                    size: Size::TargetFraction(a),
                    price: PriceType::Market,
                    bar,
                    at_close,
                    expires: None,
                    reason: Reason::Rebalance,
                };
                self.submit(t, order);
                orders += 1;
            }
            if orders > 0 {
                self.rb_open = Some(self.res.rebalances.len());
                self.rb_px.fill(f64::NAN);
                self.res.rebalances.push(RebalanceRecord {
                    bar: t,
                    trigger,
                    targets: b.tw.clone(),
                    aims: b.aims.iter().zip(&b.w).map(|(a, w)| a.unwrap_or(*w)).collect(),
                    orders,
                    est_cost: est,
                    cost: 0.0,
                    notional: 0.0,
                    settled: None,
                    within: 0,
                    checked: 0,
                    max_dev: 0.0,
                });
            }
        }
    }

    /// Once no order of the working rebalance is left, check its weights against its targets,
    /// each symbol valued at its fill price in this rebalance (at its mark if it had no fill):
    /// execution accuracy, apart from how the market moves after the fills (drift is measured
    /// at the closes, in [`DriftStats`](crate::rebalance::DriftStats)).
    #[inline(always)]
    pub(super) fn settle_rebalance(&mut self, t: usize) {
        if let Some(r) = self.rb_open {
            self.settle_open_rebalance(t, r);
        }
    }

    fn settle_open_rebalance(&mut self, t: usize, r: usize) {
        if self.pending.iter().any(|o| o.reason == Reason::Rebalance) {
            return;
        }
        self.rb_open = None;
        let Some(rb) = &self.exp.rebalance else { return };
        let px = |s: usize| if self.rb_px[s].is_nan() { self.pf.mark[s] } else { self.rb_px[s] };
        let eq = self.pf.cash + (0..self.pf.qty.len()).map(|s| self.pf.qty[s] * px(s)).sum::<f64>();
        let rec = &mut self.res.rebalances[r];
        rec.settled = Some(t);
        rec.checked = rec.targets.len();
        rec.within = 0;
        for s in 0..rec.targets.len() {
            let w = self.pf.qty[s] * px(s) / eq;
            let dev = (w - rec.targets[s]).abs();
            rec.max_dev = rec.max_dev.max(dev);
            rec.within += usize::from(rebalance::within(rb, w, rec.targets[s]));
        }
    }
}
