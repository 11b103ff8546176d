//! Risk: limits that can never be breached and stops. Limits clip or refuse what the decision
//! layer asks for and say so with a [`RiskEvent`]; stops close positions intrabar; account-level
//! rules ([`Account`]: drawdown halt, daily loss, trades per day, and the correlation cap) refuse
//! new risk or flatten the book.
//!
//! Stop rules (long; shorts mirrored): the stop level is the higher of `entry*(1-stop_loss)` and
//! `best_high_since_entry*(1-trailing_stop)`; the take-profit level is `entry*(1+take_profit)`.
//! If the bar opens at or through a level, it fills at the open (a gap gives the worse fill for
//! a stop, the better one for a take-profit). Otherwise the stop triggers when the low reaches
//! it and fills at the stop level (taker fee, slippage), the take-profit when the high reaches it
//! and fills at its level (maker fee). When one bar reaches both, `risk.same_bar` decides
//! (default `adverse`: the stop). A position filled at a bar's open is checked against the rest of
//! that bar when `risk.stop_on_entry_bar` is true (default); one filled at a bar's close is first
//! checked on the next bar. The trailing reference is updated with each bar's high after the check.

use crate::experiment::{RiskConfig, SameBarRule};
use crate::portfolio::Reason;

/// The rules of the risk layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskRule {
    /// A target clipped to `max_position`.
    MaxPosition,
    /// A target clipped to the room `max_gross_exposure` leaves.
    MaxGrossExposure,
    /// A stop-loss (fixed or ATR) closed a position.
    StopLoss,
    /// A trailing stop closed a position.
    TrailingStop,
    /// A take-profit closed a position.
    TakeProfit,
    /// The drawdown halt flattened the book (and refuses new risk while it lasts).
    MaxDrawdown,
    /// The daily loss limit flattened the book (and refuses new risk for the rest of the day).
    MaxDailyLoss,
    /// An entry refused: the day's entries are used up.
    MaxTradesPerDay,
    /// An entry refused: it would sit beside a same-direction position too correlated with it.
    MaxCorrelation,
}

impl RiskRule {
    /// The rule's name, as in the experiment file and `risk_events.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskRule::MaxPosition => "max_position",
            RiskRule::MaxGrossExposure => "max_gross_exposure",
            RiskRule::StopLoss => "stop_loss",
            RiskRule::TrailingStop => "trailing_stop",
            RiskRule::TakeProfit => "take_profit",
            RiskRule::MaxDrawdown => "max_drawdown",
            RiskRule::MaxDailyLoss => "max_daily_loss",
            RiskRule::MaxTradesPerDay => "max_trades_per_day",
            RiskRule::MaxCorrelation => "max_correlation",
        }
    }

    /// The rule a stop's exit reason stands for.
    pub fn of_stop(why: Reason) -> RiskRule {
        match why {
            Reason::TakeProfit => RiskRule::TakeProfit,
            Reason::TrailingStop => RiskRule::TrailingStop,
            _ => RiskRule::StopLoss,
        }
    }
}

impl std::fmt::Display for RiskRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One intervention of the risk layer.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskEvent {
    /// Bar index.
    pub bar: usize,
    /// Symbol id, when the event concerns one.
    pub sym: Option<usize>,
    /// The rule that acted.
    pub rule: RiskRule,
    /// What was asked (target fraction, or the level that was hit).
    pub requested: f64,
    /// What was allowed (clipped fraction, or the fill price).
    pub allowed: f64,
}

/// A stop or take-profit that triggered: (why, reference price, maker fill).
pub type StopHit = (Reason, f64, bool);

/// Check one position against one bar's open, high and low. `dir` is the position's sign,
/// `entry` its average entry price, `best` the best price since entry (highest high for longs,
/// lowest low for shorts), `atr` the average true range at entry (NaN if unknown).
#[allow(clippy::too_many_arguments)]
pub fn check_stops(cfg: &RiskConfig, dir: f64, entry: f64, best: f64, atr: f64, open: f64, high: f64, low: f64) -> Option<StopHit> {
    // Candidate stop levels; the operative one is the tightest (highest for a long, lowest for
    // a short). ATR-based levels use the ATR at entry and are skipped while it is unknown.
    let atr_ok = atr.is_finite();
    let candidates = [
        (cfg.stop_loss.map(|s| entry * (1.0 - dir * s)), Reason::StopLoss),
        (cfg.stop_atr.filter(|_| atr_ok).map(|k| entry - dir * k * atr), Reason::StopLoss),
        (cfg.trailing_stop.map(|s| best * (1.0 - dir * s)), Reason::TrailingStop),
        (cfg.trailing_atr.filter(|_| atr_ok).map(|k| best - dir * k * atr), Reason::TrailingStop),
    ];
    let mut stop: Option<(f64, Reason)> = None;
    for (level, why) in candidates {
        if let Some(l) = level {
            if stop.is_none_or(|(cur, _)| (l - cur) * dir > 0.0) {
                stop = Some((l, why));
            }
        }
    }
    let tp = cfg.take_profit.map(|t| entry * (1.0 + dir * t));
    // Long: adverse side is down. `beyond(x, level)` = x is at or past level on the adverse side.
    let adverse = |x: f64, level: f64| (level - x) * dir >= 0.0;
    let favorable = |x: f64, level: f64| (x - level) * dir >= 0.0;
    if let Some((s, why)) = stop {
        if adverse(open, s) {
            return Some((why, open, false));
        }
    }
    if let Some(t) = tp {
        if favorable(open, t) {
            return Some((Reason::TakeProfit, open, true));
        }
    }
    let (worst, bestx) = if dir > 0.0 { (low, high) } else { (high, low) };
    let stop_hit = stop.filter(|(s, _)| adverse(worst, *s));
    let tp_hit = tp.filter(|t| favorable(bestx, *t));
    match (stop_hit, tp_hit) {
        (Some((s, why)), Some(t)) => Some(match cfg.same_bar {
            SameBarRule::Adverse => (why, s, false),
            SameBarRule::Favorable => (Reason::TakeProfit, t, true),
        }),
        (Some((s, why)), None) => Some((why, s, false)),
        (None, Some(t)) => Some((Reason::TakeProfit, t, true)),
        (None, None) => None,
    }
}

/// Clip a requested target fraction for one symbol by `max_position` and by `max_gross_exposure`
/// given the other symbols' targets (`others_gross` = sum of their |targets|). Returns the allowed
/// target and the rule that clipped it, if any.
pub fn clip_target(cfg: &RiskConfig, requested: f64, others_gross: f64) -> (f64, Option<RiskRule>) {
    let mut t = requested;
    let mut rule = None;
    if t.abs() > cfg.max_position {
        t = cfg.max_position * t.signum();
        rule = Some(RiskRule::MaxPosition);
    }
    let room = (cfg.max_gross_exposure - others_gross).max(0.0);
    if t.abs() > room + 1e-12 {
        t = room * t.signum();
        rule = Some(RiskRule::MaxGrossExposure);
    }
    (t, rule)
}

/// Whether adding target `tgt` to symbol `s` would hold it beside a same-direction target in a
/// symbol whose rolling return correlation with it exceeds `max` at bar t (`corr[a * ns + b]`
/// for symbols a < b).
pub fn correlated(corr: &[Vec<f64>], targets: &[f64], s: usize, tgt: f64, t: usize, max: Option<f64>) -> bool {
    let Some(max) = max else { return false };
    let ns = targets.len();
    (0..ns).any(|j| {
        if j == s || targets[j] == 0.0 || targets[j].signum() != tgt.signum() {
            return false;
        }
        let (a, b) = if s < j { (s, j) } else { (j, s) };
        corr[a * ns + b][t] > max
    })
}

/// The account-level rules' state through a run: the equity peak and drawdown halt, the UTC
/// day's starting equity, loss block and entries.
#[derive(Debug, Clone)]
pub struct Account {
    peak: f64,
    /// Bar the halt ends at (`usize::MAX`: for good).
    halted_until: Option<usize>,
    day: i64,
    day_start_eq: f64,
    day_blocked: bool,
    day_entries: u32,
    last_eq: f64,
}

impl Account {
    /// A fresh account holding `initial` equity.
    pub fn new(initial: f64) -> Account {
        Account {
            peak: initial,
            halted_until: None,
            day: i64::MIN,
            day_start_eq: initial,
            day_blocked: false,
            day_entries: 0,
            last_eq: initial,
        }
    }

    /// At the start of a bar on UTC day `day`: a new day starts from the last close's equity.
    pub fn start_bar(&mut self, day: i64) {
        if day != self.day {
            self.day = day;
            self.day_start_eq = self.last_eq;
            self.day_blocked = false;
            self.day_entries = 0;
        }
    }

    /// At bar t's close with equity `eq`: end a timed halt, then check the drawdown halt and the
    /// daily loss limit. Each that fires returns its event; the caller flattens the book.
    pub fn at_close(&mut self, cfg: &RiskConfig, t: usize, eq: f64) -> [Option<RiskEvent>; 2] {
        if let Some(until) = self.halted_until {
            if until != usize::MAX && t >= until {
                self.halted_until = None;
                self.peak = eq;
            }
        }
        self.peak = self.peak.max(eq);
        let mut fired = [None, None];
        if let Some(mdd) = cfg.max_drawdown {
            if self.halted_until.is_none() && eq < self.peak * (1.0 - mdd) {
                self.halted_until = Some(if cfg.halt_bars == 0 { usize::MAX } else { t + cfg.halt_bars });
                let requested = 1.0 - eq / self.peak;
                fired[0] = Some(RiskEvent { bar: t, sym: None, rule: RiskRule::MaxDrawdown, requested, allowed: mdd });
            }
        }
        if let Some(mdl) = cfg.max_daily_loss {
            if !self.day_blocked && eq < self.day_start_eq * (1.0 - mdl) {
                self.day_blocked = true;
                let requested = 1.0 - eq / self.day_start_eq;
                fired[1] = Some(RiskEvent { bar: t, sym: None, rule: RiskRule::MaxDailyLoss, requested, allowed: mdl });
            }
        }
        fired
    }

    /// The rule refusing new risk now, if any (a halt or the day's loss block).
    pub fn blocking(&self) -> Option<RiskRule> {
        if self.day_blocked {
            Some(RiskRule::MaxDailyLoss)
        } else if self.halted_until.is_some() {
            Some(RiskRule::MaxDrawdown)
        } else {
            None
        }
    }

    /// Whether the day's entries are used up.
    pub fn entries_used_up(&self, cfg: &RiskConfig) -> bool {
        cfg.max_trades_per_day.is_some_and(|max| self.day_entries >= max)
    }

    /// Count an order that adds risk.
    pub fn count_entry(&mut self) {
        self.day_entries += 1;
    }

    /// Record the bar's closing equity (the next day's start).
    pub fn closed_at(&mut self, eq: f64) {
        self.last_eq = eq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(sl: Option<f64>, tp: Option<f64>, tr: Option<f64>) -> RiskConfig {
        RiskConfig { stop_loss: sl, take_profit: tp, trailing_stop: tr, ..RiskConfig::default() }
    }

    #[test]
    fn long_stop_fills_at_level_or_gapped_open() {
        let c = cfg(Some(0.05), None, None);
        assert_eq!(check_stops(&c, 1.0, 100.0, 100.0, f64::NAN, 99.0, 101.0, 94.0), Some((Reason::StopLoss, 95.0, false)));
        assert_eq!(check_stops(&c, 1.0, 100.0, 100.0, f64::NAN, 93.0, 96.0, 90.0), Some((Reason::StopLoss, 93.0, false)));
        assert_eq!(check_stops(&c, 1.0, 100.0, 100.0, f64::NAN, 99.0, 101.0, 95.5), None);
    }

    #[test]
    fn same_bar_rule_and_short_mirror() {
        let mut c = cfg(Some(0.05), Some(0.25), None);
        assert_eq!(check_stops(&c, 1.0, 100.0, 100.0, f64::NAN, 100.0, 126.0, 94.0).map(|h| h.0), Some(Reason::StopLoss));
        c.same_bar = SameBarRule::Favorable;
        assert_eq!(check_stops(&c, 1.0, 100.0, 100.0, f64::NAN, 100.0, 126.0, 94.0), Some((Reason::TakeProfit, 125.0, true)));
        // Short from 100: stop 105, take-profit 75.
        assert_eq!(check_stops(&c, -1.0, 100.0, 100.0, f64::NAN, 100.0, 106.0, 99.0), Some((Reason::StopLoss, 105.0, false)));
        assert_eq!(check_stops(&c, -1.0, 100.0, 100.0, f64::NAN, 74.0, 75.0, 70.0), Some((Reason::TakeProfit, 74.0, true)));
    }

    #[test]
    fn trailing_stop_follows_the_best_price() {
        let c = cfg(Some(0.10), None, Some(0.05));
        // best 120: trailing 114 beats fixed 90.
        assert_eq!(check_stops(&c, 1.0, 100.0, 120.0, f64::NAN, 118.0, 119.0, 113.0), Some((Reason::TrailingStop, 114.0, false)));
    }

    #[test]
    fn atr_stops() {
        let c = RiskConfig { stop_loss: Some(0.2), stop_atr: Some(2.0), ..RiskConfig::default() };
        // ATR 3 at entry 100: ATR stop 94 is tighter than the 20% stop at 80.
        assert_eq!(check_stops(&c, 1.0, 100.0, 100.0, 3.0, 99.0, 100.0, 93.0), Some((Reason::StopLoss, 94.0, false)));
        // Unknown ATR: only the fractional stop.
        assert_eq!(check_stops(&c, 1.0, 100.0, 100.0, f64::NAN, 99.0, 100.0, 93.0), None);
        let c = RiskConfig { trailing_atr: Some(1.0), ..RiskConfig::default() };
        // Short, best low 90, ATR 4: trailing stop at 94.
        assert_eq!(check_stops(&c, -1.0, 100.0, 90.0, 4.0, 92.0, 95.0, 91.0), Some((Reason::TrailingStop, 94.0, false)));
    }

    #[test]
    fn clipping() {
        let c = RiskConfig { max_position: 0.5, max_gross_exposure: 0.8, ..RiskConfig::default() };
        assert_eq!(clip_target(&c, 0.9, 0.0), (0.5, Some(RiskRule::MaxPosition)));
        assert_eq!(clip_target(&c, -0.5, 0.5), (-0.30000000000000004, Some(RiskRule::MaxGrossExposure)));
        assert_eq!(clip_target(&c, 0.2, 0.5), (0.2, None));
    }

    #[test]
    fn account_rules_by_hand() {
        // Drawdown halt of 10% for 2 bars: the peak is 100, 89 is 11% down.
        let c = RiskConfig { max_drawdown: Some(0.1), halt_bars: 2, ..RiskConfig::default() };
        let mut a = Account::new(100.0);
        a.start_bar(0);
        assert_eq!(a.at_close(&c, 0, 100.0), [None, None]);
        let [dd, _] = a.at_close(&c, 1, 89.0);
        let dd = dd.unwrap();
        assert_eq!((dd.rule, dd.bar, dd.allowed), (RiskRule::MaxDrawdown, 1, 0.1));
        assert!((dd.requested - 0.11).abs() < 1e-12);
        assert_eq!(a.blocking(), Some(RiskRule::MaxDrawdown));
        // Halted: a deeper fall fires nothing more; at bar 1 + 2 the halt ends and the peak
        // restarts from that close (85), so 80 is under 10% down from it.
        assert_eq!(a.at_close(&c, 2, 80.0), [None, None]);
        assert_eq!(a.at_close(&c, 3, 85.0), [None, None]);
        assert_eq!(a.blocking(), None);
        assert_eq!(a.at_close(&c, 4, 80.0), [None, None]);

        // Daily loss of 5% from the day's first equity (the last close before it), two entries a
        // day.
        let c = RiskConfig { max_daily_loss: Some(0.05), max_trades_per_day: Some(2), ..RiskConfig::default() };
        let mut a = Account::new(100.0);
        a.start_bar(7);
        a.count_entry();
        assert!(!a.entries_used_up(&c));
        a.count_entry();
        assert!(a.entries_used_up(&c));
        let [_, daily] = a.at_close(&c, 0, 94.0);
        assert_eq!(daily.map(|e| e.rule), Some(RiskRule::MaxDailyLoss));
        assert_eq!(a.blocking(), Some(RiskRule::MaxDailyLoss));
        a.closed_at(94.0);
        // Same day: nothing resets. Next day: starts from 94, unblocked, entries free.
        a.start_bar(7);
        assert_eq!(a.blocking(), Some(RiskRule::MaxDailyLoss));
        a.start_bar(8);
        assert_eq!((a.blocking(), a.entries_used_up(&c)), (None, false));
        assert_eq!(a.at_close(&c, 1, 89.4), [None, None]); // 4.9% below 94
        assert!(a.at_close(&c, 2, 89.2)[1].is_some()); // 5.1% below
    }
}
