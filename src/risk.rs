//! Risk: limits that can never be breached and stops. Limits clip or refuse what the decision
//! layer asks for and say so with a [`RiskEvent`]; stops close positions intrabar.
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

/// One intervention of the risk layer.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskEvent {
    /// Bar index.
    pub bar: usize,
    /// Symbol id, when the event concerns one.
    pub sym: Option<usize>,
    /// Rule name (`max_position`, `max_gross_exposure`, `stop_loss`, `max_drawdown`, ...).
    pub rule: &'static str,
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
pub fn clip_target(cfg: &RiskConfig, requested: f64, others_gross: f64) -> (f64, Option<&'static str>) {
    let mut t = requested;
    let mut rule = None;
    if t.abs() > cfg.max_position {
        t = cfg.max_position * t.signum();
        rule = Some("max_position");
    }
    let room = (cfg.max_gross_exposure - others_gross).max(0.0);
    if t.abs() > room + 1e-12 {
        t = room * t.signum();
        rule = Some("max_gross_exposure");
    }
    (t, rule)
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
        assert_eq!(clip_target(&c, 0.9, 0.0), (0.5, Some("max_position")));
        assert_eq!(clip_target(&c, -0.5, 0.5), (-0.30000000000000004, Some("max_gross_exposure")));
        assert_eq!(clip_target(&c, 0.2, 0.5), (0.2, None));
    }
}
