//! Rebalancing: target weights (fixed, equal, inverse volatility, optionally tilted by signals
//! within per-symbol bounds), drift against them, triggers (bands and/or calendar), the trade
//! plan (to target or to the band's edge, small trades skipped) and the accuracy check after
//! the fills. The engine owns the loop and the orders; this module owns the arithmetic.
//!
//! Conventions:
//! - A weight is `qty * price / equity`, signed; cash is `1 - sum(weights)` for a long book.
//! - Band of a symbol: `band` (absolute), `relative_band * target`, the smaller when both are
//!   set (the "5/25" rule); with neither and no calendar, 0.05. A symbol with target 0 and any
//!   holding is outside its relative band, so symbols without a target are sold down.
//! - Trading to the band edge stops `tolerance` inside the band, so fees paid on the way do not
//!   leave a weight just outside it.
//! - Tracking error: `sqrt(mean over bars of sum over symbols (w - target)^2)`, at bar closes.

#![allow(clippy::needless_range_loop)] // weights, targets and members are parallel arrays

use crate::data::time::DAY_MS;
use crate::experiment::{Calendar, RebalanceConfig, TradeTo, WeightScheme};

/// What a run's rebalancer needs that does not change between candidates: fixed targets by
/// symbol id, membership, and rolling volatility for inverse-volatility weights.
#[derive(Debug, Clone, Default)]
pub struct RebalancePrep {
    /// `fixed` weight per symbol id (0 for symbols without a target).
    pub fixed: Vec<f64>,
    /// Symbols that `equal` / `inverse_vol` hold.
    pub members: Vec<bool>,
    /// Rolling volatility per symbol (`inverse_vol` only).
    pub vol: Vec<Vec<f64>>,
    /// Calendar period of each bar (empty without a calendar trigger).
    pub period: Vec<i64>,
}

/// Why a rebalance happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// First bar: the initial allocation.
    Initial,
    /// A weight drifted outside its band.
    Band,
    /// A calendar point (or every n bars).
    Calendar,
    /// The regime changed the targets.
    Regime,
}

impl Trigger {
    /// Name as written in `rebalances.csv`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::Initial => "initial",
            Trigger::Band => "band",
            Trigger::Calendar => "calendar",
            Trigger::Regime => "regime",
        }
    }
}

/// One rebalance, from decision to the end of its fills.
#[derive(Debug, Clone, PartialEq)]
pub struct RebalanceRecord {
    /// Bar whose close decided it.
    pub bar: usize,
    /// Why.
    pub trigger: Trigger,
    /// Target weights it aimed at.
    pub targets: Vec<f64>,
    /// Weights it traded to (equal to `targets` when trading to target).
    pub aims: Vec<f64>,
    /// Orders sent.
    pub orders: usize,
    /// Estimated fees and slippage before trading.
    pub est_cost: f64,
    /// Fees and slippage paid by its fills.
    pub cost: f64,
    /// Notional traded.
    pub notional: f64,
    /// Bar at whose open or close its last order ended (None if the run ended first).
    pub settled: Option<usize>,
    /// Symbols whose weight was within tolerance (or band) after the fills.
    pub within: usize,
    /// Symbols checked.
    pub checked: usize,
    /// Largest |weight - target| after the fills.
    pub max_dev: f64,
}

impl RebalanceRecord {
    /// Whether every symbol ended within tolerance.
    pub fn accurate(&self) -> bool {
        self.settled.is_some() && self.within == self.checked
    }
}

/// Running drift statistics at bar closes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DriftStats {
    /// Bars observed.
    pub bars: usize,
    /// Bars with some symbol outside its band.
    pub outside_bars: usize,
    /// Sum over bars of sum over symbols of (w - target)^2.
    pub sq_dev: f64,
}

impl DriftStats {
    /// Root-mean-square distance of the weights from the targets.
    pub fn tracking_error(&self) -> f64 {
        if self.bars == 0 {
            0.0
        } else {
            (self.sq_dev / self.bars as f64).sqrt()
        }
    }
}

/// Prepare fixed targets, members, volatility and calendar periods. Symbol names are checked:
/// the error is `(key, message)`.
pub fn prepare(
    cfg: &RebalanceConfig,
    symbols: &[String],
    closes: &[&[f64]],
    timestamps: &[i64],
) -> std::result::Result<RebalancePrep, (String, String)> {
    let id = |name: &str, key: String| {
        symbols.iter().position(|s| s == name).ok_or_else(|| (key, format!("{name} is not in the data ({})", symbols.join(", "))))
    };
    let ns = symbols.len();
    let mut fixed = vec![0.0; ns];
    if cfg.weights == WeightScheme::Fixed {
        if cfg.targets.is_empty() {
            return Err((
                "rebalance.targets".into(),
                "missing: fixed weights need a weight per symbol, e.g. { BTC = 0.6, ETH = 0.4 }".into(),
            ));
        }
        for (name, w) in &cfg.targets {
            fixed[id(name, format!("rebalance.targets.{name}"))?] = *w;
        }
    }
    let mut members = vec![cfg.symbols.is_empty(); ns];
    for (i, name) in cfg.symbols.iter().enumerate() {
        members[id(name, format!("rebalance.symbols[{i}]"))?] = true;
    }
    let vol = if cfg.weights == WeightScheme::InverseVol {
        closes.iter().map(|c| crate::decision::rolling_vol(c, cfg.vol_window, 1.0)).collect()
    } else {
        Vec::new()
    };
    let period = if cfg.calendar == Calendar::None { Vec::new() } else { timestamps.iter().map(|t| period_of(cfg.calendar, *t)).collect() };
    Ok(RebalancePrep { fixed, members, vol, period })
}

/// The calendar period a timestamp (ms, UTC) falls in.
pub fn period_of(cal: Calendar, ts: i64) -> i64 {
    let day = ts.div_euclid(DAY_MS);
    match cal {
        Calendar::None => 0,
        Calendar::Daily => day,
        Calendar::Weekly => crate::data::time::week(day),
        Calendar::Monthly => {
            use chrono::Datelike;
            let d = chrono::DateTime::from_timestamp_millis(ts).map(|d| d.date_naive()).unwrap_or_default();
            d.year() as i64 * 12 + d.month0() as i64
        }
    }
}

/// Whether bar t is a calendar point (the first bar of a new period, or a multiple of
/// `every_bars`).
pub fn calendar_due(cfg: &RebalanceConfig, rp: &RebalancePrep, t: usize) -> bool {
    let cal = !rp.period.is_empty() && t > 0 && rp.period[t] != rp.period[t - 1];
    cal || (cfg.every_bars > 0 && t > 0 && t.is_multiple_of(cfg.every_bars))
}

/// Whether any trigger is calendar-based.
pub fn has_calendar(cfg: &RebalanceConfig) -> bool {
    cfg.calendar != Calendar::None || cfg.every_bars > 0
}

/// The band of a symbol with target `target` (infinite when only a calendar triggers).
pub fn band(cfg: &RebalanceConfig, target: f64) -> f64 {
    let abs = cfg.band.or(if cfg.relative_band.is_none() && !has_calendar(cfg) { Some(0.05) } else { None });
    let rel = cfg.relative_band.map(|r| r * target.abs());
    match (abs, rel) {
        (Some(a), Some(r)) => a.min(r),
        (Some(a), None) => a,
        (None, Some(r)) => r,
        (None, None) => f64::INFINITY,
    }
}

/// Whether bands are part of the trigger.
pub fn has_band(cfg: &RebalanceConfig) -> bool {
    band(cfg, 1.0).is_finite()
}

/// Whether some symbol's weight is outside its band.
pub fn outside(cfg: &RebalanceConfig, w: &[f64], target: &[f64]) -> bool {
    w.iter().zip(target).any(|(w, t)| (w - t).abs() > band(cfg, *t) + 1e-12)
}

/// Target weights at bar t into `out`; `votes[s]` in [-1, 1] is the combined signal's vote.
pub fn target_weights(cfg: &RebalanceConfig, rp: &RebalancePrep, t: usize, votes: &[f64], out: &mut [f64]) {
    let ns = out.len();
    let n_members = rp.members.iter().filter(|m| **m).count().max(1) as f64;
    match cfg.weights {
        WeightScheme::Fixed => out.copy_from_slice(&rp.fixed),
        WeightScheme::Equal => {
            for s in 0..ns {
                out[s] = if rp.members[s] { cfg.invested / n_members } else { 0.0 };
            }
        }
        WeightScheme::InverseVol => {
            let inv = |s: usize| {
                let v = rp.vol[s][t];
                if rp.members[s] && v.is_finite() && v > 0.0 {
                    1.0 / v
                } else {
                    0.0
                }
            };
            let total: f64 = (0..ns).map(inv).sum();
            for s in 0..ns {
                // Before every member has a volatility, equal weights.
                out[s] = if total > 0.0 && (0..ns).all(|j| !rp.members[j] || inv(j) > 0.0) {
                    cfg.invested * inv(s) / total
                } else if rp.members[s] {
                    cfg.invested / n_members
                } else {
                    0.0
                };
            }
        }
    }
    if cfg.signal_tilt > 0.0 {
        for s in 0..ns {
            if out[s] > 0.0 || rp.members[s] && cfg.weights != WeightScheme::Fixed {
                out[s] = (out[s] * (1.0 + cfg.signal_tilt * votes[s])).clamp(cfg.min_weight, cfg.max_weight);
            }
        }
        let sum: f64 = out.iter().sum();
        if sum > 1.0 {
            for w in out.iter_mut() {
                *w /= sum;
            }
        }
    }
}

/// The weight to trade each symbol to (None: leave it), given close weights `w`, targets, and
/// equity (for `min_trade`).
pub fn plan(cfg: &RebalanceConfig, w: &[f64], target: &[f64], equity: f64, out: &mut [Option<f64>]) {
    for s in 0..w.len() {
        let b = band(cfg, target[s]);
        let d = w[s] - target[s];
        let aim = match cfg.trade_to {
            TradeTo::BandEdge if b.is_finite() => {
                if d.abs() <= b {
                    None
                } else {
                    Some(target[s] + d.signum() * (b - cfg.tolerance).max(0.0))
                }
            }
            _ => Some(target[s]),
        };
        out[s] = aim.filter(|a| (a - w[s]).abs() * equity >= cfg.min_trade.max(1e-9 * equity));
    }
}

/// Whether weight `w` counts as on target after a rebalance.
pub fn within(cfg: &RebalanceConfig, w: f64, target: f64) -> bool {
    let b = band(cfg, target);
    match cfg.trade_to {
        TradeTo::BandEdge if b.is_finite() => (w - target).abs() <= b + 1e-12,
        _ => (w - target).abs() <= cfg.tolerance + 1e-12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml: &str) -> RebalanceConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn bands_absolute_relative_and_both() {
        assert_eq!(band(&cfg(""), 0.6), 0.05);
        assert_eq!(band(&cfg("band = 0.05\nrelative_band = 0.25"), 0.6), 0.05);
        assert_eq!(band(&cfg("band = 0.05\nrelative_band = 0.25"), 0.1), 0.025);
        assert!(band(&cfg("calendar = \"monthly\""), 0.6).is_infinite());
        assert_eq!(band(&cfg("relative_band = 0.2"), 0.0), 0.0);
    }

    #[test]
    fn plan_to_band_edge_trades_only_what_is_outside() {
        let c = cfg("band = 0.05\ntrade_to = \"band_edge\"\ntolerance = 0.001");
        let mut out = [None; 2];
        plan(&c, &[0.67, 0.33], &[0.6, 0.4], 10_000.0, &mut out);
        assert!((out[0].unwrap() - 0.649).abs() < 1e-12 && (out[1].unwrap() - 0.351).abs() < 1e-12);
        plan(&c, &[0.64, 0.36], &[0.6, 0.4], 10_000.0, &mut out);
        assert_eq!(out, [None, None]);
        // min_trade: a 0.5% move of 10,000 is 50, below 100.
        let c = cfg("min_trade = 100.0");
        plan(&c, &[0.605, 0.395], &[0.6, 0.4], 10_000.0, &mut out);
        assert_eq!(out, [None, None]);
    }

    #[test]
    fn inverse_vol_weights_are_proportional_to_one_over_vol() {
        let c = cfg("weights = \"inverse_vol\"\ninvested = 0.9");
        let rp = RebalancePrep { members: vec![true, true], vol: vec![vec![0.2], vec![0.4]], ..Default::default() };
        let mut out = [0.0; 2];
        target_weights(&c, &rp, 0, &[0.0, 0.0], &mut out);
        // 1/0.2 : 1/0.4 = 2 : 1 of 0.9.
        assert!((out[0] - 0.6).abs() < 1e-12 && (out[1] - 0.3).abs() < 1e-12);
    }

    #[test]
    fn calendar_periods() {
        // 2024-01-01 was a Monday; 2024-01-07 a Sunday.
        let ms = |d: i64| 1_704_067_200_000 + d * DAY_MS;
        assert_eq!(period_of(Calendar::Weekly, ms(0)), period_of(Calendar::Weekly, ms(6)));
        assert_ne!(period_of(Calendar::Weekly, ms(6)), period_of(Calendar::Weekly, ms(7)));
        assert_ne!(period_of(Calendar::Monthly, ms(30)), period_of(Calendar::Monthly, ms(31)));
        assert_eq!(period_of(Calendar::Monthly, ms(0)), period_of(Calendar::Monthly, ms(30)));
    }
}
