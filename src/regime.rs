//! Market regimes: label every bar `bull`, `bear`, `sideways` or `high_vol` from data up to its
//! close, measure a detector against known labels, and build the per-regime parameter sets the
//! engine switches between.
//!
//! The market classified is one symbol (`regime.symbol`) or an equal-weight index of all: per
//! bar the mean log return and the mean Parkinson variance `ln(high/low)^2 / (4 ln 2)`.
//!
//! Names come from two axes, each from bars up to the labelled one only ([`Labels`]):
//! - volatility: the configured detector's state, its states ranked by fitted volatility; the
//!   highest is high volatility, the lowest low ([`detect_states`]);
//! - trend: the t-statistic of the mean log return over the last `trend_window` bars; up beyond
//!   `trend_t`, down below `-trend_t`, adopted once it has held `confirm_bars` bars in a row.
//!
//! A bar is `high_vol` when its volatility is high; otherwise `bull` when the trend is up, `bear`
//! when it is down, else `sideways`. `regimes.csv` carries both axes.
//!
//! Seasonality (`regime.deseasonalize`, on by default): every detector sees each bar's returns
//! and ranges divided by its hour-of-day and day-of-week volatility factor, estimated from the
//! bars before it ([`seasonal`]).
//!
//! Detectors of the volatility axis:
//! - `rules`: exponentially weighted mean of the log Parkinson variance (half-life
//!   `vol_halflife`; a geometric mean, so single jump bars do not dominate) against its own
//!   expanding median, as a ratio of volatilities `exp((v - median) / 2)`: high above
//!   `high_vol_ratio`, low below `low_vol_ratio`; a new state is adopted after `confirm_bars`;
//! - `ms_garch` (the default): see [`msgarch`]; `pf` (particle filter): see [`pf`]. Each refits
//!   on past bars only; before its first fit (`warmup`) the rules' states stand in. The pf holds
//!   a state against a wavering posterior ([`hold_states`], `switch_margin`).
//!
//! [`stability`] counts label changes and run lengths: flicker, the one thing that can be judged
//! on data without true labels (`tradelab regime eval DATA`). Measurements: `docs/regimes.md`.

pub mod msgarch;
pub mod pf;

use crate::data::MarketData;
use crate::error::{Error, Result};
use crate::experiment::{Detector, Experiment, RegimeConfig};
use std::collections::BinaryHeap;
use std::path::Path;

/// Regime names in label order (ids 0..4).
pub const REGIMES: [&str; 4] = ["bull", "bear", "sideways", "high_vol"];

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

/// The features of the equal-weight index of symbols `ids`, each bar's volatility divided by its
/// seasonal factor `exp(season[t])` (see [`seasonal`]).
pub fn features(md: &MarketData, ids: &[usize], season: &[f64]) -> Features {
    let n = md.len();
    let k = ids.len().max(1) as f64;
    let mut f = Features { ret: vec![0.0; n], var: vec![0.0; n] };
    let c = 1.0 / (4.0 * std::f64::consts::LN_2);
    for &s in ids {
        let b = &md.bars[s];
        for (t, z) in season.iter().enumerate().take(n) {
            let scale = (-z).exp();
            if t > 0 {
                f.ret[t] += scale * (b.close[t] / b.close[t - 1]).ln() / k;
            }
            f.var[t] += c * (scale * (b.high[t] / b.low[t]).ln()).powi(2) / k;
        }
    }
    f
}

/// Samples every slot needs before a profile is applied.
const SEASON_MIN_SAMPLES: usize = 10;

/// A seasonal profile over `k` slots from deviations of log volatility from its trailing
/// level: per slot the mean deviation, centered over the slots and shrunk towards 0 by the
/// positive-part James-Stein factor `1 - (k-3) * mean(se^2) / sum((d - mean d)^2)`, so a
/// profile no larger than its own noise (as on a market that has none) is mostly dropped while a
/// strong one is kept nearly whole. The sums over slots are kept up to date one sample at a time.
struct Profile {
    n: Vec<usize>,
    sum: Vec<f64>,
    sq: Vec<f64>,
    /// Per slot, the mean and its squared standard error as last counted in the totals.
    d: Vec<f64>,
    se2: Vec<f64>,
    s1: f64,
    s2: f64,
    se: f64,
    ready: usize,
}

impl Profile {
    fn new(k: usize) -> Profile {
        Profile {
            n: vec![0; k],
            sum: vec![0.0; k],
            sq: vec![0.0; k],
            d: vec![0.0; k],
            se2: vec![0.0; k],
            s1: 0.0,
            s2: 0.0,
            se: 0.0,
            ready: 0,
        }
    }

    fn add(&mut self, slot: usize, dev: f64) {
        self.n[slot] += 1;
        self.sum[slot] += dev;
        self.sq[slot] += dev * dev;
        let n = self.n[slot] as f64;
        if self.n[slot] == SEASON_MIN_SAMPLES {
            self.ready += 1;
        }
        let d = self.sum[slot] / n;
        let se2 = if n > 1.0 { ((self.sq[slot] - self.sum[slot] * d) / (n - 1.0)).max(0.0) / n } else { 0.0 };
        self.s1 += d - self.d[slot];
        self.s2 += d * d - self.d[slot] * self.d[slot];
        self.se += se2 - self.se2[slot];
        (self.d[slot], self.se2[slot]) = (d, se2);
    }

    /// The slot's shrunk, centered effect; 0 until every slot has its minimum of samples, and
    /// always for fewer than 4 slots.
    fn effect(&self, slot: usize) -> f64 {
        let k = self.n.len();
        if k < 4 || self.ready < k {
            return 0.0;
        }
        let kf = k as f64;
        let spread = self.s2 - self.s1 * self.s1 / kf;
        let g = if spread > 0.0 { (1.0 - (kf - 3.0) * (self.se / kf) / spread).max(0.0) } else { 0.0 };
        g * (self.d[slot] - self.s1 / kf)
    }
}

/// Per bar, the log of its volatility's seasonal factor, from bars before it only: the
/// slot-of-day effect (for bars shorter than a day that divide it; slots in UTC) plus the
/// day-of-week effect (for bars up to a day). The input is the log high-low range averaged over
/// the symbols `ids` (bars where a symbol's range is zero are left out). A slot-of-day sample is
/// a bar's deviation from the mean of the day of bars before it; a day-of-week sample is a day's
/// mean deviation of its bars from the mean of the week of bars before each. Deviations from a
/// trailing level leave out the regimes' and the variance's slow swings, which would otherwise
/// pass for seasonality, and each profile is shrunk by its own noise (`Profile`). Crypto's
/// hourly volatility is highest around 00:00 and 12:00-16:00 UTC and lowest at 02:00-07:00
/// (about 0.4 apart in log range on the bundled Binance data), and 0.15-0.2 lower at weekends;
/// a detector that reads raw ranges calls the quiet hours `sideways`.
pub fn seasonal(md: &MarketData, ids: &[usize]) -> Vec<f64> {
    use crate::data::time::{weekday, DAY_MS};
    let (n, tf) = (md.len(), md.timeframe.ms);
    let mut out = vec![0.0; n];
    if ids.is_empty() || tf <= 0 || tf > DAY_MS {
        return out;
    }
    let per_day = if tf < DAY_MS && DAY_MS % tf == 0 { (DAY_MS / tf) as usize } else { 1 };
    let x: Vec<f64> =
        (0..n).map(|t| ids.iter().map(|&i| (md.bars[i].high[t] / md.bars[i].low[t]).ln().ln()).sum::<f64>() / ids.len() as f64).collect();
    // Trailing means over a day and a week of bars (NaN while a window holds a missing bar).
    let trailing = |w: usize| -> Vec<f64> {
        let mut m = vec![f64::NAN; n];
        let (mut sum, mut bad) = (0.0, 0usize);
        for t in 0..n {
            if t >= w {
                m[t] = if bad == 0 { sum / w as f64 } else { f64::NAN };
                let old = x[t - w];
                if old.is_finite() {
                    sum -= old
                } else {
                    bad -= 1
                }
            }
            if x[t].is_finite() {
                sum += x[t]
            } else {
                bad += 1
            }
        }
        m
    };
    let (day_mean, week_mean) = (trailing(per_day), trailing(7 * per_day));
    let mut hours = Profile::new(if per_day >= 4 { per_day } else { 0 });
    let mut weekdays = Profile::new(7);
    // The day being summed: (day number, sum of deviations, bars).
    let mut today: Option<(i64, f64, usize)> = None;
    for (t, o) in out.iter_mut().enumerate() {
        let ts = md.timestamps[t];
        let day = ts.div_euclid(DAY_MS);
        // A day is one sample once it is over (bars before t only).
        if let Some((d, sum, c)) = today.filter(|(d, _, _)| *d != day) {
            if 2 * c >= per_day {
                weekdays.add(weekday(d), sum / c as f64);
            }
            today = None;
        }
        let slot = (ts.rem_euclid(DAY_MS) / tf) as usize;
        *o = hours.effect(slot) + weekdays.effect(weekday(day));
        if per_day >= 4 && (x[t] - day_mean[t]).is_finite() {
            hours.add(slot, x[t] - day_mean[t]);
        }
        let dev = x[t] - week_mean[t];
        let e = today.get_or_insert((day, 0.0, 0));
        if dev.is_finite() {
            e.1 += dev;
            e.2 += 1;
        }
    }
    out
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
    confirm_from(raw, confirm, raw.first().copied().unwrap_or(SIDEWAYS))
}

/// [`confirm`], starting from label `start`.
fn confirm_from(raw: &[u8], confirm: usize, start: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let (mut cur, mut cand, mut run) = (start, u8::MAX, 0usize);
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

/// The regime with the most weight.
pub fn likeliest(by: &[f64; 4]) -> usize {
    (0..4).max_by(|x, y| by[*x].total_cmp(&by[*y])).unwrap_or(0)
}

/// Hysteresis of the particle filter's states: the label after a bar whose regimes (by
/// id) have posterior shares `share`, when `held` was the label before it. The likeliest regime
/// takes over only when its share exceeds the held label's by more than `margin`, so a posterior
/// wavering between two regimes does not flip the label back and forth.
pub fn hold(held: Option<u8>, share: &[f64; 4], margin: f64) -> u8 {
    let top = likeliest(share) as u8;
    match held {
        Some(h) if share[top as usize] <= share[h as usize] + margin => h,
        _ => top,
    }
}

/// [`hold`] on weights per fitted state, state k named `names[k]` (several states may share a
/// name): the label after this bar, which also becomes `held`.
pub fn hold_states(held: &mut Option<u8>, by_state: &[f64; 4], names: &[u8; 4], margin: f64) -> u8 {
    let mut share = [0.0; 4];
    for (w, n) in by_state.iter().zip(names) {
        share[*n as usize] += w;
    }
    let l = hold(*held, &share, margin);
    *held = Some(l);
    l
}

/// Names of the volatility axis, by [`Labels::volatility`] id.
pub const VOLATILITY: [&str; 3] = ["low", "normal", "high"];

/// Every bar's regime and the two axes it is named from.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// Regime id per bar, in [`REGIMES`] order: `high_vol` when the volatility is high, else
    /// `bull` or `bear` when the trend is significantly up or down, else `sideways`.
    pub label: Vec<u8>,
    /// Volatility per bar as the detector sees it: 0 low, 1 normal, 2 high ([`VOLATILITY`]).
    pub volatility: Vec<u8>,
    /// Trend per bar: the t-statistic of the index's mean log return over the last
    /// `trend_window` bars (significant beyond `trend_t`, held `confirm_bars` bars in a row).
    pub trend_t: Vec<f64>,
}

/// The configured detector's volatility states, named by rank as its states are fitted:
/// `sideways` (lowest), `bull`, `bear`, `high_vol` (highest). For the rules detector, the
/// volatility thresholds and (between them) its trend rule. The product's labels are
/// [`detect`]'s; these are the volatility axis they are built on.
pub fn detect_states(cfg: &RegimeConfig, md: &MarketData) -> Vec<u8> {
    detect_axes(cfg, md).0
}

fn detect_axes(cfg: &RegimeConfig, md: &MarketData) -> (Vec<u8>, Vec<f64>) {
    let ids = index_symbols(md, cfg.symbol.as_deref());
    let season = if cfg.deseasonalize { seasonal(md, &ids) } else { vec![0.0; md.len()] };
    let f = features(md, &ids, &season);
    let (raw, _, tstat) = rules_raw(cfg, &f);
    let rules = confirm(&raw, cfg.confirm_bars);
    let states = match cfg.detector {
        Detector::Rules => rules,
        Detector::MsGarch => confirm(&msgarch::detect(cfg, md, &ids, &season, &rules), msgarch::CONFIRM),
        Detector::Pf => pf::detect(cfg, md, &ids, &season, &rules),
    };
    (states, tstat)
}

/// Label every bar with the configured detector: the volatility axis from the detector's states
/// (its highest state is high volatility, its lowest low), the trend axis from the t-statistic
/// of the mean log return, both from bars up to the labelled one only.
pub fn detect(cfg: &RegimeConfig, md: &MarketData) -> Labels {
    let (states, trend_t) = detect_axes(cfg, md);
    Labels::from_axes(&states, trend_t, cfg.trend_t, cfg.confirm_bars)
}

impl Labels {
    /// Name bars from a detector's volatility `states` (ranked as [`detect_states`] gives them)
    /// and the trend statistic: `high_vol` when the state is the highest, else `bull` when the
    /// trend has been above `threshold` (`bear`: below `-threshold`) for `confirm_bars` bars in
    /// a row, else `sideways`.
    pub fn from_axes(states: &[u8], trend_t: Vec<f64>, threshold: f64, confirm_bars: usize) -> Labels {
        let volatility: Vec<u8> = states
            .iter()
            .map(|s| match *s {
                HIGH_VOL => 2,
                SIDEWAYS => 0,
                _ => 1,
            })
            .collect();
        // 0 flat, 1 up, 2 down.
        let dir: Vec<u8> = trend_t
            .iter()
            .map(|t| {
                if *t > threshold {
                    1
                } else if *t < -threshold {
                    2
                } else {
                    0
                }
            })
            .collect();
        let dir = confirm_from(&dir, confirm_bars, 0);
        let label = volatility
            .iter()
            .zip(&dir)
            .map(|(v, d)| match (*v, *d) {
                (2, _) => HIGH_VOL,
                (_, 1) => BULL,
                (_, 2) => BEAR,
                _ => SIDEWAYS,
            })
            .collect();
        Labels { label, volatility, trend_t }
    }

    /// Labels given as they are (no axes known: volatility `high` for `high_vol`, else
    /// `normal`; trend NaN), e.g. to run the engine on labels made elsewhere.
    pub fn given(label: Vec<u8>) -> Labels {
        let volatility = label.iter().map(|l| if *l == HIGH_VOL { 2 } else { 1 }).collect();
        let trend_t = vec![f64::NAN; label.len()];
        Labels { label, volatility, trend_t }
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

/// How steady a sequence of labels is: flicker shows as many changes and short runs. For data
/// without true labels it is all there is to judge a detector by.
#[derive(Debug, Clone, PartialEq)]
pub struct Stability {
    /// Label changes (bars whose label differs from the bar before's).
    pub changes: usize,
    /// Median length in bars of a run of one label (the mean of the middle two for an even
    /// count of runs; the first and last runs count as they are).
    pub median_run: f64,
    /// Longest run in bars.
    pub longest_run: usize,
    /// Share of bars per label, in [`REGIMES`] order.
    pub share: [f64; 4],
}

/// Label changes, run lengths and shares of `labels` (NaN median and shares when empty).
pub fn stability(labels: &[u8]) -> Stability {
    let mut runs = Vec::new();
    let mut count = [0usize; 4];
    let mut run = 0;
    for (t, l) in labels.iter().enumerate() {
        count[*l as usize] += 1;
        if t > 0 && labels[t - 1] != *l {
            runs.push(run);
            run = 0;
        }
        run += 1;
    }
    if run > 0 {
        runs.push(run);
    }
    runs.sort_unstable();
    let m = runs.len();
    let median_run = match m {
        0 => f64::NAN,
        _ if m % 2 == 1 => runs[m / 2] as f64,
        _ => (runs[m / 2 - 1] + runs[m / 2]) as f64 / 2.0,
    };
    Stability {
        changes: m.saturating_sub(1),
        median_run,
        longest_run: runs.last().copied().unwrap_or(0),
        share: count.map(|c| c as f64 / labels.len() as f64),
    }
}

/// Read a labels file (`timestamp,regime`, as `tradelab data synth` writes `_regimes.csv`):
/// (timestamps, regime ids).
pub fn read_labels(path: &Path) -> Result<(Vec<i64>, Vec<u8>)> {
    let t = crate::data::read_text_table(path)?;
    let col = |n: &str| {
        t.names
            .iter()
            .position(|h| h == n)
            .ok_or_else(|| Error::data(path, None, "missing-column", format!("no {n} column, expected timestamp,regime")))
    };
    let (ct, cr) = (col("timestamp")?, col("regime")?);
    let (mut ts, mut ids) = (Vec::new(), Vec::new());
    for (i, row) in t.rows.iter().enumerate() {
        let loc = Some(t.loc(i));
        let (tx, r) = (row[ct].as_str(), row[cr].trim());
        ts.push(
            crate::data::time::parse_timestamp(tx, crate::data::TimestampUnit::Iso)
                .ok_or_else(|| Error::data(path, loc, "unparsable-timestamp", tx.to_string()))?,
        );
        let id = REGIMES
            .iter()
            .position(|n| *n == r)
            .ok_or_else(|| Error::data(path, loc, "unknown-regime", format!("'{r}', expected one of {}", REGIMES.join(", "))))?;
        ids.push(id as u8);
    }
    Ok((ts, ids))
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
    fn labels_name_volatility_from_the_states_and_trend_from_the_t_statistic() {
        // States by rank: sideways (low), bull and bear (normal), high_vol (high). Trend beyond
        // +-1, adopted after 2 bars in a row.
        let states = [SIDEWAYS, BULL, BEAR, HIGH_VOL, BEAR, BEAR, SIDEWAYS, BULL, BULL];
        let t = vec![0.0, 2.0, 2.0, 2.0, -3.0, -3.0, -3.0, 0.5, 0.5];
        let l = Labels::from_axes(&states, t, 1.0, 2);
        assert_eq!(l.volatility, vec![0, 1, 1, 2, 1, 1, 0, 1, 1]);
        // Up from bar 2 (second bar above 1), high_vol at 3 whatever the trend, down from bar 5,
        // flat again from bar 8; a low-volatility state with a trend is bull or bear too.
        assert_eq!(l.label, vec![SIDEWAYS, SIDEWAYS, BULL, HIGH_VOL, BULL, BEAR, BEAR, BEAR, SIDEWAYS]);
        let g = Labels::given(vec![BULL, HIGH_VOL]);
        assert_eq!((g.volatility, g.trend_t[0].is_nan()), (vec![1, 2], true));
    }

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

    /// Hourly bars of one symbol from Monday 2024-01-01 00:00 UTC, bar t's log range `range(t)`.
    fn hourly(n: usize, range: impl Fn(usize) -> f64) -> MarketData {
        let mut b = crate::data::Bars::default();
        for t in 0..n {
            let r = range(t);
            b.open.push(100.0);
            b.close.push(100.0);
            b.high.push(100.0 * (r / 2.0).exp());
            b.low.push(100.0 * (-r / 2.0).exp());
            b.volume.push(1.0);
            b.tradable.push(true);
        }
        MarketData {
            timeframe: crate::data::time::Timeframe::from_ms(crate::data::time::HOUR_MS),
            timestamps: (0..n as i64).map(|t| 1_704_067_200_000 + t * crate::data::time::HOUR_MS).collect(),
            symbols: vec!["X".into()],
            bars: vec![b],
            calendar: None,
        }
    }

    #[test]
    fn seasonal_factor_is_the_profile_of_deviations_from_the_trailing_level() {
        // Hourly ranges 1.5x at 12:00-16:00 UTC (5 hours a day), otherwise equal; L = ln 1.5. A
        // bar's deviation from the day before it is L - 5L/24 in those hours and -5L/24 in the
        // others, every day alike (no noise, so no shrinking), and every day's deviation from the
        // week before it is 0 (no weekday effect).
        let l = 1.5f64.ln();
        let md = hourly(24 * 30, |t| if (12..17).contains(&(t % 24)) { 0.015 } else { 0.01 });
        let s = seasonal(&md, &[0]);
        let (at12, at0) = (s[24 * 20 + 12], s[24 * 20]);
        assert!((at12 - 19.0 * l / 24.0).abs() < 1e-9, "{at12}");
        assert!((at0 + 5.0 * l / 24.0).abs() < 1e-9, "{at0}");
        // Before every slot has 10 samples (bars 24.. are the first with a day before them).
        assert_eq!(s[24 * 10 + 12], 0.0);

        // Daily bars with weekends at 0.8x; w = ln 0.8. A week before any day holds two weekend
        // days, so its mean is 2w/7: a weekend day deviates by 5w/7, a weekday by -2w/7.
        let w = 0.8f64.ln();
        let mut md = hourly(100, |t| if t % 7 >= 5 { 0.008 } else { 0.01 });
        md.timeframe = crate::data::time::Timeframe::from_ms(crate::data::time::DAY_MS);
        md.timestamps = (0..100).map(|t| 1_704_067_200_000 + t * crate::data::time::DAY_MS).collect();
        let s = seasonal(&md, &[0]);
        assert!((s[7 * 12 + 5] - 5.0 * w / 7.0).abs() < 1e-9, "Saturday: {}", s[89]);
        assert!((s[7 * 12] + 2.0 * w / 7.0).abs() < 1e-9, "Monday: {}", s[84]);
    }

    #[test]
    fn a_profile_no_larger_than_its_noise_is_mostly_shrunk_away() {
        // Log ranges with independent noise (sd about 0.3) and no profile: each slot's raw mean
        // deviation over ~200 days has a standard error near 0.3 * sqrt(1 + 1/24) / sqrt(200), about
        // 0.022, so raw estimates would be off by that much; shrunk, the factor is near 0.
        let mut state = 12345u64;
        let mut noise = || {
            // Sum of 12 uniforms less 6: about normal, sd 1.
            (0..12)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 11) as f64 / (1u64 << 53) as f64
                })
                .sum::<f64>()
                - 6.0
        };
        let ranges: Vec<f64> = (0..24 * 220).map(|_| 0.01 * (0.3 * noise()).exp()).collect();
        let s = seasonal(&hourly(ranges.len(), |t| ranges[t]), &[0]);
        let tail = &s[24 * 150..];
        let rms = (tail.iter().map(|v| v * v).sum::<f64>() / tail.len() as f64).sqrt();
        assert!(rms < 0.011, "rms {rms}");
    }

    #[test]
    fn seasonal_factor_reads_only_earlier_bars() {
        // A strong hour profile with some noise, then bar 300 made ten times wider.
        let base = |t: usize| 0.01 * if (12..17).contains(&(t % 24)) { 1.5 } else { 1.0 } * (1.0 + 0.2 * ((t * 7919) % 13) as f64 / 13.0);
        let a = seasonal(&hourly(600, base), &[0]);
        let b = seasonal(&hourly(600, |t| if t == 300 { 0.1 } else { base(t) }), &[0]);
        assert_eq!(a[..=300], b[..=300]);
        assert!(a[301..].iter().zip(&b[301..]).any(|(x, y)| x != y));
    }

    #[test]
    fn a_new_label_needs_more_than_the_margin_over_the_held_one() {
        // Shares by regime id; bull (0) is likeliest by 0.2 over bear (1).
        let share = [0.5, 0.3, 0.15, 0.05];
        assert_eq!(hold(Some(1), &share, 0.3), 1, "0.5 is not above 0.3 + 0.3");
        assert_eq!(hold(Some(1), &share, 0.1), 0, "0.5 is above 0.3 + 0.1");
        assert_eq!(hold(Some(1), &share, 0.0), 0);
        // Against a held label with little weight the likeliest wins at a wide margin too.
        assert_eq!(hold(Some(3), &share, 0.4), 0, "0.5 is above 0.05 + 0.4");
        // Nothing held yet: the likeliest.
        assert_eq!(hold(None, &share, 0.9), 0);
        // Equal shares at margin 0 do not switch.
        assert_eq!(hold(Some(1), &[0.4, 0.4, 0.1, 0.1], 0.0), 1);
    }

    #[test]
    fn stability_counts_changes_and_runs() {
        // Runs 2 (bull), 3 (bear), 1 (sideways), 2 (bull): three changes; sorted runs 1, 2, 2, 3
        // have median 2; shares 4/8 bull, 3/8 bear, 1/8 sideways.
        let s = stability(&[BULL, BULL, BEAR, BEAR, BEAR, SIDEWAYS, BULL, BULL]);
        assert_eq!((s.changes, s.longest_run), (3, 3));
        assert_eq!(s.median_run, 2.0);
        assert_eq!(s.share, [0.5, 0.375, 0.125, 0.0]);
        // Odd count: runs 1, 1, 4 -> median 1; one label throughout: no change, one run.
        assert_eq!(stability(&[HIGH_VOL, BULL, BULL, BULL, BULL, BEAR]).median_run, 1.0);
        let one = stability(&[SIDEWAYS; 5]);
        assert_eq!((one.changes, one.median_run, one.longest_run), (0, 5.0, 5));
        assert!(stability(&[]).median_run.is_nan());
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
