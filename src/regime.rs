//! Market regimes: label every bar `bull`, `bear`, `sideways` or `high_vol` from data up to its
//! close, measure a detector against known labels, and build the per-regime parameter sets the
//! engine switches between.
//!
//! The market classified is one symbol (`regime.symbol`) or an equal-weight index of all: per
//! bar the mean log return and the mean Parkinson variance `ln(high/low)^2 / (4 ln 2)`.
//!
//! Rules detector, per bar t, using bars 0..=t only:
//! - volatility: exponentially weighted mean of the log Parkinson variance (half-life
//!   `vol_halflife`; a geometric mean, so single jump bars do not dominate), against its own
//!   *expanding* median (a rolling median drifts into whatever regime fills its window; an
//!   expanding one is a stable level), as a ratio of volatilities `exp((v - median) / 2)`;
//! - trend: the t-statistic of the mean log return over `trend_window` bars;
//! - raw label: `high_vol` when the volatility ratio exceeds `high_vol_ratio`; `sideways` when it
//!   is under `low_vol_ratio`; else `bull` when the t-statistic exceeds `trend_t`, `bear` when it
//!   is under `-trend_t`; else by volatility (a ratio under 1 leans `bull`: bear markets are the
//!   more volatile, in crypto as in equities);
//! - hysteresis: a new raw label is adopted after it has held `confirm_bars` bars in a row.
//!
//! The HMM detector (`detector = "hmm"`, the default; fast): see [`hmm`]. The Markov-switching
//! GARCH detector (`detector = "ms_garch"`; more accurate than the HMM only where regimes are
//! short on markets with a persistent shared GARCH variance): see [`msgarch`]. The particle
//! filter (`detector = "pf"`; the most accurate at every regime length on synthetic markets, some
//! 40 times slower than the HMM): see [`pf`].
//!
//! Mapping to `tradelab data synth`: its regimes are the same four names; its bull and bear
//! differ in drift (+100% vs -90% a year, small next to hourly noise) and in volatility (50% vs
//! 60%), its sideways has 30% volatility and no drift, its high_vol 120%. A shared GARCH variance
//! (persistence 0.98 by default, `--garch` to change) multiplies all four volatilities, so a
//! bar's volatility level alone does not name its regime; how accurate a detector could be there
//! is measured by `cargo bench --bench regime_ceiling`.

pub mod hmm;
pub mod msgarch;
pub mod pf;

use crate::data::synth::REGIMES;
use crate::data::MarketData;
use crate::error::{Error, Result};
use crate::experiment::{Detector, Experiment, RegimeConfig};
use std::collections::BinaryHeap;
use std::path::Path;

/// Regime ids, in [`REGIMES`] order.
pub const BULL: u8 = 0;
/// Bear.
pub const BEAR: u8 = 1;
/// Sideways.
pub const SIDEWAYS: u8 = 2;
/// High volatility.
pub const HIGH_VOL: u8 = 3;

/// Per-bar inputs of the detectors.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// Log return of the index (0 on the first bar).
    pub ret: Vec<f64>,
    /// Parkinson variance of the index's bar.
    pub var: Vec<f64>,
}

/// The symbols classified: `symbol` (by name), or all of them.
fn index_symbols(md: &MarketData, symbol: Option<&str>) -> Vec<usize> {
    match symbol.and_then(|s| md.symbol_id(s)) {
        Some(i) => vec![i],
        None => (0..md.symbols.len()).collect(),
    }
}

/// The features of `symbol` (by name) or of the equal-weight index of all symbols.
pub fn features(md: &MarketData, symbol: Option<&str>) -> Features {
    let ids = index_symbols(md, symbol);
    let n = md.len();
    let k = ids.len().max(1) as f64;
    let mut f = Features { ret: vec![0.0; n], var: vec![0.0; n] };
    let c = 1.0 / (4.0 * std::f64::consts::LN_2);
    for &s in &ids {
        let b = &md.bars[s];
        for t in 0..n {
            if t > 0 {
                f.ret[t] += (b.close[t] / b.close[t - 1]).ln() / k;
            }
            f.var[t] += c * (b.high[t] / b.low[t]).ln().powi(2) / k;
        }
    }
    f
}

/// Expanding median of positive numbers, one push at a time (two heaps; positive f64 order as
/// their bit patterns).
#[derive(Default)]
struct Median {
    low: BinaryHeap<u64>,
    high: BinaryHeap<std::cmp::Reverse<u64>>,
}

impl Median {
    fn push(&mut self, x: f64) {
        let b = x.max(0.0).to_bits();
        if self.low.peek().is_none_or(|m| b <= *m) {
            self.low.push(b);
        } else {
            self.high.push(std::cmp::Reverse(b));
        }
        if self.low.len() > self.high.len() + 1 {
            let v = self.low.pop().expect("non-empty");
            self.high.push(std::cmp::Reverse(v));
        } else if self.high.len() > self.low.len() {
            let v = self.high.pop().expect("non-empty").0;
            self.low.push(v);
        }
    }
    fn get(&self) -> f64 {
        match (self.low.peek(), self.high.peek()) {
            (Some(a), Some(b)) if self.low.len() == self.high.len() => (f64::from_bits(*a) + f64::from_bits(b.0)) / 2.0,
            (Some(a), _) => f64::from_bits(*a),
            _ => f64::NAN,
        }
    }
}

/// The rules detector's raw (unconfirmed) labels and its volatility ratio and trend statistic.
pub fn rules_raw(cfg: &RegimeConfig, f: &Features) -> (Vec<u8>, Vec<f64>, Vec<f64>) {
    let n = f.ret.len();
    let alpha = 1.0 - 0.5f64.powf(1.0 / cfg.vol_halflife.max(1e-9));
    let (mut v, mut med) = (f64::NAN, Median::default());
    let (mut s, mut s2) = (0.0, 0.0);
    let w = cfg.trend_window;
    let (mut raw, mut ratio, mut tstat) = (vec![SIDEWAYS; n], vec![f64::NAN; n], vec![f64::NAN; n]);
    let mut var_sum = 0.0;
    for t in 0..n {
        // Log variance, floored at 1% of the mean so far (zero-range bars), averaged: a geometric
        // mean is not thrown by the odd jump bar as an arithmetic one is.
        var_sum += f.var[t];
        let lv = f.var[t].max(0.01 * var_sum / (t + 1) as f64).max(f64::MIN_POSITIVE).ln();
        v = if v.is_nan() { lv } else { v + alpha * (lv - v) };
        // Medians of positive numbers only: shift the log by a constant that keeps it positive.
        med.push(v + 1000.0);
        let r = ((v + 1000.0 - med.get()) / 2.0).exp();
        let x = f.ret[t];
        s += x;
        s2 += x * x;
        if t >= w {
            let o = f.ret[t - w];
            s -= o;
            s2 -= o * o;
        }
        let m = (t + 1).min(w) as f64;
        let sd = ((s2 - s * s / m) / (m - 1.0).max(1.0)).max(0.0).sqrt();
        let ts = if sd > 0.0 { s / m / (sd / m.sqrt()) } else { 0.0 };
        ratio[t] = r;
        tstat[t] = ts;
        raw[t] = if r > cfg.high_vol_ratio {
            HIGH_VOL
        } else if r < cfg.low_vol_ratio {
            SIDEWAYS
        } else if ts > cfg.trend_t {
            BULL
        } else if ts < -cfg.trend_t {
            BEAR
        } else if r < 1.0 {
            BULL
        } else {
            BEAR
        };
    }
    (raw, ratio, tstat)
}

/// Adopt a new label only after it held `confirm` bars in a row.
pub fn confirm(raw: &[u8], confirm: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let (mut cur, mut cand, mut run) = (raw.first().copied().unwrap_or(SIDEWAYS), u8::MAX, 0usize);
    for &r in raw {
        if r == cur {
            run = 0;
        } else if r == cand {
            run += 1;
        } else {
            cand = r;
            run = 1;
        }
        if run >= confirm.max(1) {
            cur = cand;
            run = 0;
        }
        out.push(cur);
    }
    out
}

/// Label every bar with the configured detector.
pub fn detect(cfg: &RegimeConfig, md: &MarketData) -> Vec<u8> {
    let f = features(md, cfg.symbol.as_deref());
    let rules = confirm(&rules_raw(cfg, &f).0, cfg.confirm_bars);
    match cfg.detector {
        Detector::Rules => rules,
        Detector::Hmm => hmm::detect(cfg, &f, &rules),
        Detector::MsGarch => confirm(&msgarch::detect(cfg, md, &index_symbols(md, cfg.symbol.as_deref()), &rules), msgarch::CONFIRM),
        Detector::Pf => pf::detect(cfg, md, &index_symbols(md, cfg.symbol.as_deref()), &rules),
    }
}

/// Detector accuracy against the truth: recall per regime (NaN where a regime never occurs),
/// balanced accuracy (mean recall over the regimes that occur) and plain accuracy.
#[derive(Debug, Clone, PartialEq)]
pub struct Accuracy {
    /// Recall per regime, in [`REGIMES`] order.
    pub recall: [f64; 4],
    /// Mean of the recalls of regimes present.
    pub balanced: f64,
    /// Share of bars labelled right.
    pub plain: f64,
    /// `confusion[truth][predicted]` bar counts.
    pub confusion: [[usize; 4]; 4],
}

/// Compare predicted labels with true ones (same length).
pub fn accuracy(truth: &[u8], pred: &[u8]) -> Accuracy {
    let mut confusion = [[0usize; 4]; 4];
    for (t, p) in truth.iter().zip(pred) {
        confusion[*t as usize][*p as usize] += 1;
    }
    let mut recall = [f64::NAN; 4];
    let mut present = Vec::new();
    for k in 0..4 {
        let total: usize = confusion[k].iter().sum();
        if total > 0 {
            recall[k] = confusion[k][k] as f64 / total as f64;
            present.push(recall[k]);
        }
    }
    let right: usize = (0..4).map(|k| confusion[k][k]).sum();
    Accuracy {
        recall,
        balanced: present.iter().sum::<f64>() / present.len().max(1) as f64,
        plain: right as f64 / truth.len().max(1) as f64,
        confusion,
    }
}

/// A detector's score on one synthetic market.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthScore {
    /// Over every bar, warm-up included: what a run gets.
    pub all: Accuracy,
    /// Over the bars from `warmup` on, where the configured detector itself labels (before
    /// that the HMM's labels are the rules detector's).
    pub after_warmup: Accuracy,
}

/// Generate the market `market` describes (`tradelab data synth`'s defaults with its own seed,
/// length, mean regime length, GARCH and jumps), label it, and score the labels against the
/// generator's.
pub fn evaluate_synth(cfg: &RegimeConfig, market: &crate::data::synth::SynthConfig) -> Result<SynthScore> {
    let m = market.generate()?;
    let md = crate::data::align(&m.series, market.timeframe, crate::data::AlignPolicy::Inner)?;
    let pred = detect(cfg, &md);
    let from = cfg.warmup_bars().min(market.bars);
    Ok(SynthScore { all: accuracy(&m.regimes, &pred), after_warmup: accuracy(&m.regimes[from..], &pred[from..]) })
}

/// The sections a regime may override.
pub const OVERRIDABLE: [&str; 4] = ["signals", "decision", "risk", "rebalance"];

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) if !k.contains('[') => flatten(&path, t, out),
            _ => out.push((path, v.clone())),
        }
    }
}

/// The experiment each regime runs with: `[None; 4]` entries for regimes without overrides.
/// Each variant is the base experiment with the overrides set by path and validated; it has no
/// `[regime]` or `[optimize]` of its own.
pub fn variants(exp: &Experiment, file: &Path) -> Result<[Option<Experiment>; 4]> {
    let mut out: [Option<Experiment>; 4] = Default::default();
    let Some(rc) = &exp.regime else { return Ok(out) };
    let mut base = exp.clone();
    base.regime = None;
    base.optimize = None;
    let root = toml::Value::try_from(&base).map_err(|e| Error::Internal(e.to_string()))?;
    for (name, table) in &rc.overrides {
        let key = format!("regime.overrides.{name}");
        let id = REGIMES.iter().position(|r| r == name).ok_or_else(|| Error::Config {
            file: file.to_path_buf(),
            key: key.clone(),
            msg: format!("unknown regime, expected one of {}", REGIMES.join(", ")),
        })?;
        let mut sets = Vec::new();
        flatten("", table, &mut sets);
        for (path, _) in &sets {
            let section = path.split(['.', '[']).next().unwrap_or("");
            if !OVERRIDABLE.contains(&section) {
                return Err(Error::Config {
                    file: file.to_path_buf(),
                    key: format!("{key}.{path}"),
                    msg: format!("only {} fields can change with the regime", OVERRIDABLE.join(", ")),
                });
            }
        }
        let v = Experiment::from_value_with(root.clone(), &sets, file).map_err(|e| match e {
            Error::Config { file, key: k, msg } => Error::Config { file, key: format!("{key}.{k}"), msg },
            other => other,
        })?;
        out[id] = Some(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expanding_median() {
        let mut m = Median::default();
        let xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        let want = [5.0, 3.0, 4.0, 3.0, 3.0];
        for (x, w) in xs.iter().zip(want) {
            m.push(*x);
            assert_eq!(m.get(), w);
        }
    }

    #[test]
    fn confirmation_delays_switches_and_ignores_blips() {
        let raw = [0, 0, 1, 0, 1, 1, 1, 0];
        assert_eq!(confirm(&raw, 2), vec![0, 0, 0, 0, 0, 1, 1, 1]);
        assert_eq!(confirm(&raw, 1), raw.to_vec());
    }

    #[test]
    fn balanced_accuracy_weights_regimes_equally() {
        // 8 bull bars all right, 2 bear bars half right: plain 0.9, balanced 0.75.
        let truth = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        let pred = [0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let a = accuracy(&truth, &pred);
        assert!((a.plain - 0.9).abs() < 1e-12 && (a.balanced - 0.75).abs() < 1e-12);
        assert!(a.recall[2].is_nan());
    }
}
