//! Signals: built-in technical signals computed from bars, signal files replayed, and the
//! combiner that turns every source's vote into one signal per symbol and bar; and strategies
//! that decide bar by bar instead, written as rules ([`rules`]) or in Rust ([`Signal`]).
//!
//! A signal at bar t uses data up to t's close and is acted on at t's close. Every signal carries
//! a direction (+1 long, -1 short, 0 flat), a strength level (1..=4) and a confidence in [0, 1];
//! a bar without a signal is [`NONE`].
//!
//! Combiner, per symbol and bar, over the sources present at that bar (source weight `w`,
//! direction `d`, strength multiplier `m`, confidence `c`):
//! `S = sum(w*d*m*c) / sum(w)`. Direction = sign(S) (|S| < 1e-12, a tie, is flat).
//! Confidence = sum of `w*c` over sources agreeing with that direction / sum(w) (disagreement
//! lowers it; flat when tied has confidence 0). Strength = the level whose multiplier is nearest
//! `|S| / confidence`, so that `m(strength) * confidence` ~ |S|. With one source the combined
//! signal is that source's signal. A source with weight 0 is switched off: it does not vote, and
//! a bar where only switched-off sources speak is flat with confidence 1 (so a signal turned off,
//! e.g. for one regime, takes its positions out of the market instead of leaving them held).

mod files;
pub(crate) mod indicators;
pub mod models;
pub mod rules;
mod strategy;

pub use files::{file_streams, read_signal_file, usable_span, FileSignal};
pub use indicators::{atr, ema, rolling_correlation, rolling_std, rsi, IndKey, IndicatorCache, Series};
pub(crate) use strategy::build as build_code;
pub use strategy::{register, registered, Action, Driver, Factory, Indicator, Params, Position, Signal, View};

use crate::data::Bars;
use crate::experiment::{BandStyle, SignalKind, SignalMode, TechnicalSignal};
use std::collections::BTreeMap;

/// "No signal at this bar".
pub const NONE: i8 = i8::MIN;

/// A technical signal with every parameter resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spec {
    /// SMA(fast) vs SMA(slow).
    SmaCross { fast: usize, slow: usize },
    /// EMA(fast) vs EMA(slow).
    EmaCross { fast: usize, slow: usize },
    /// RSI(period) against lower/upper.
    Rsi { period: usize, lower: f64, upper: f64 },
    /// MACD line vs signal line.
    Macd { fast: usize, slow: usize, signal: usize },
    /// Close against Bollinger bands.
    Bollinger { period: usize, k: f64, style: BandStyle },
    /// n-bar return against a threshold.
    Momentum { period: usize, threshold: f64 },
    /// Close against the previous n bars' channel.
    Donchian { period: usize },
}

impl Spec {
    /// Bars of history before the first bar that can hold a signal.
    pub fn warmup(&self) -> usize {
        match *self {
            Spec::SmaCross { fast, slow } | Spec::EmaCross { fast, slow } => fast.max(slow),
            Spec::Macd { fast, slow, signal } => fast.max(slow) + signal,
            Spec::Rsi { period, .. } | Spec::Bollinger { period, .. } | Spec::Momentum { period, .. } | Spec::Donchian { period } => period,
        }
    }

    /// Resolve defaults.
    pub fn from_config(s: &TechnicalSignal) -> Spec {
        match s.kind {
            SignalKind::SmaCross => Spec::SmaCross { fast: s.fast.unwrap_or(20), slow: s.slow.unwrap_or(50) },
            SignalKind::EmaCross => Spec::EmaCross { fast: s.fast.unwrap_or(12), slow: s.slow.unwrap_or(26) },
            SignalKind::Rsi => Spec::Rsi { period: s.period.unwrap_or(14), lower: s.lower.unwrap_or(30.0), upper: s.upper.unwrap_or(70.0) },
            SignalKind::Macd => Spec::Macd { fast: s.fast.unwrap_or(12), slow: s.slow.unwrap_or(26), signal: s.signal.unwrap_or(9) },
            SignalKind::Bollinger => {
                Spec::Bollinger { period: s.period.unwrap_or(20), k: s.std_dev.unwrap_or(2.0), style: s.style.unwrap_or_default() }
            }
            SignalKind::Momentum => Spec::Momentum { period: s.period.unwrap_or(24), threshold: s.threshold.unwrap_or(0.0) },
            SignalKind::Donchian => Spec::Donchian { period: s.period.unwrap_or(20) },
        }
    }

    /// A broken parameter: (key, message).
    pub fn check(&self) -> Option<(&'static str, String)> {
        let pos = |k: &'static str, v: usize, min: usize| (v < min).then(|| (k, format!("{v} must be >= {min}")));
        match *self {
            Spec::SmaCross { fast, slow } | Spec::EmaCross { fast, slow } => {
                pos("fast", fast, 1).or_else(|| (fast >= slow).then(|| ("fast", format!("fast ({fast}) must be < slow ({slow})"))))
            }
            Spec::Macd { fast, slow, signal } => pos("fast", fast, 1)
                .or_else(|| pos("signal", signal, 1))
                .or_else(|| (fast >= slow).then(|| ("fast", format!("fast ({fast}) must be < slow ({slow})")))),
            Spec::Rsi { period, lower, upper } => pos("period", period, 2).or_else(|| {
                (!(0.0 <= lower && lower < upper && upper <= 100.0))
                    .then(|| ("lower", format!("need 0 <= lower ({lower}) < upper ({upper}) <= 100")))
            }),
            Spec::Bollinger { period, k, .. } => {
                pos("period", period, 2).or_else(|| (!(k > 0.0 && k.is_finite())).then(|| ("std_dev", format!("{k} must be > 0"))))
            }
            Spec::Momentum { period, threshold } => pos("period", period, 1)
                .or_else(|| (!(threshold >= 0.0 && threshold.is_finite())).then(|| ("threshold", format!("{threshold} must be >= 0")))),
            Spec::Donchian { period } => pos("period", period, 1),
        }
    }

    /// Whether the signal is a crossing of two lines (events are strict crosses) rather than a
    /// zone (events are entries into the zone).
    pub fn is_cross(&self) -> bool {
        matches!(self, Spec::SmaCross { .. } | Spec::EmaCross { .. } | Spec::Macd { .. })
    }
}

fn sign_or_none(a: f64, b: f64) -> i8 {
    if a.is_nan() || b.is_nan() {
        NONE
    } else if a > b {
        1
    } else if a < b {
        -1
    } else {
        0
    }
}

/// Strict crosses of `a` over `b`: the same as [`events`] of the state `sign(a - b)`, without
/// the state series; and the bars where a cross fires, in order.
///
/// Bar i fires up when `a > b` at i and `a < b` at i-1 (down the other way round); a NaN
/// compares neither way, as a tie does, so warm-up needs no test of its own. The comparisons
/// are gathered 64 bars at a time into bit masks, where a cross is two shifted ANDs: a sweep
/// calls this once per candidate over every bar, and most 64-bar words hold no cross at all.
pub fn cross_events(a: &[f64], b: &[f64]) -> (Vec<i8>, Vec<u32>) {
    let (mut out, mut fired_at) = (Vec::new(), Vec::new());
    cross_events_into(a, b, &mut out, &mut fired_at);
    (out, fired_at)
}

/// [`cross_events`] into buffers that are cleared first (the batch path reuses them tile
/// after tile).
pub fn cross_events_into(a: &[f64], b: &[f64], out: &mut Vec<i8>, fired_at: &mut Vec<u32>) {
    let n = a.len().min(b.len());
    out.clear();
    out.resize(a.len(), NONE);
    fired_at.clear();
    let (mut prev_gt, mut prev_lt) = (0u64, 0u64);
    let mut lo = 0;
    while lo < n {
        let hi = (lo + 64).min(n);
        let (gt, lt) = compare_masks(&a[lo..hi], &b[lo..hi]);
        let up = gt & ((lt << 1) | prev_lt);
        let down = lt & ((gt << 1) | prev_gt);
        let mut fired = up | down;
        while fired != 0 {
            let j = fired.trailing_zeros() as usize;
            out[lo + j] = if (up >> j) & 1 == 1 { 1 } else { -1 };
            fired_at.push((lo + j) as u32);
            fired &= fired - 1;
        }
        let last = hi - lo - 1;
        (prev_gt, prev_lt) = ((gt >> last) & 1, (lt >> last) & 1);
        lo = hi;
    }
}

/// Bit j set where `a[j] > b[j]`, and where `a[j] < b[j]` (NaN: neither), for up to 64 bars.
#[inline]
fn compare_masks(a: &[f64], b: &[f64]) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    if let (Ok(a), Ok(b)) = (<&[f64; 64]>::try_from(a), <&[f64; 64]>::try_from(b)) {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has just been seen to support AVX.
            return unsafe { compare_masks_avx(a, b) };
        }
        // SAFETY: SSE2 is part of every x86_64 target.
        return unsafe { compare_masks_sse2(a, b) };
    }
    let (mut gt, mut lt) = (0u64, 0u64);
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        gt |= u64::from(x > y) << j;
        lt |= u64::from(x < y) << j;
    }
    (gt, lt)
}

/// [`compare_masks`] of 64 bars, four per compare (ordered, non-signalling: NaN compares
/// neither way, as in the scalar loop).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn compare_masks_avx(a: &[f64; 64], b: &[f64; 64]) -> (u64, u64) {
    use std::arch::x86_64::{_mm256_cmp_pd, _mm256_loadu_pd, _mm256_movemask_pd, _CMP_GT_OQ, _CMP_LT_OQ};
    let (mut gt, mut lt) = (0u64, 0u64);
    // A plain count the compiler unrolls (a `step_by` loop it does not).
    for k in 0..16 {
        let i = 4 * k;
        // SAFETY: i + 4 <= 64, inside both arrays.
        let (x, y) = unsafe { (_mm256_loadu_pd(a.as_ptr().add(i)), _mm256_loadu_pd(b.as_ptr().add(i))) };
        gt |= (_mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(x, y)) as u64) << i;
        lt |= (_mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(x, y)) as u64) << i;
    }
    (gt, lt)
}

/// [`compare_masks`] of 64 bars, two per compare, two mask bits out of each (the compiler's own
/// vectorization of the plain loop is no faster than comparing one bar at a time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn compare_masks_sse2(a: &[f64; 64], b: &[f64; 64]) -> (u64, u64) {
    use std::arch::x86_64::{_mm_cmpgt_pd, _mm_cmplt_pd, _mm_movemask_pd, _mm_set_pd};
    let (mut gt, mut lt) = (0u64, 0u64);
    for i in (0..64).step_by(2) {
        let (x, y) = (_mm_set_pd(a[i + 1], a[i]), _mm_set_pd(b[i + 1], b[i]));
        gt |= (_mm_movemask_pd(_mm_cmpgt_pd(x, y)) as u64) << i;
        lt |= (_mm_movemask_pd(_mm_cmplt_pd(x, y)) as u64) << i;
    }
    (gt, lt)
}

/// The state series of a signal: +1 / -1 / 0 per bar, [`NONE`] during warm-up.
pub fn state(spec: &Spec, sym: usize, bars: &Bars, cache: &IndicatorCache) -> Vec<i8> {
    let lines: Vec<Series> = spec.keys().into_iter().map(|k| cache.get(sym, bars, k)).collect();
    let line = |i: usize| lines.get(i).map_or(&[][..], |l| l.as_slice());
    let mut out = vec![NONE; bars.len()];
    spec.state_into(&bars.close, 0..bars.len(), line(0), line(1), &mut out);
    out
}

impl Spec {
    /// The indicator series the signal reads, in the order [`Spec::state_into`] takes them.
    pub fn keys(&self) -> Vec<IndKey> {
        match *self {
            Spec::SmaCross { fast, slow } => vec![IndKey::Sma(fast), IndKey::Sma(slow)],
            Spec::EmaCross { fast, slow } => vec![IndKey::Ema(fast), IndKey::Ema(slow)],
            Spec::Macd { fast, slow, signal } => vec![IndKey::MacdLine(fast, slow), IndKey::MacdSignal(fast, slow, signal)],
            Spec::Rsi { period, .. } => vec![IndKey::Rsi(period)],
            Spec::Bollinger { period, .. } => vec![IndKey::Sma(period), IndKey::Std(period)],
            Spec::Momentum { .. } => vec![],
            Spec::Donchian { period } => vec![IndKey::PrevMax(period), IndKey::PrevMin(period)],
        }
    }

    /// The state over the bars `range` into `out`, from the closes and the values of
    /// [`Spec::keys`] over the same bars (`a`, `b`; empty when not read).
    pub fn state_into(&self, c: &[f64], range: std::ops::Range<usize>, a: &[f64], b: &[f64], out: &mut [i8]) {
        let zone = |lo: f64, hi: f64, x: f64, below: i8| -> i8 {
            if lo.is_nan() || hi.is_nan() {
                NONE
            } else if x < lo {
                below
            } else if x > hi {
                -below
            } else {
                0
            }
        };
        let t0 = range.start;
        match *self {
            Spec::SmaCross { .. } | Spec::EmaCross { .. } | Spec::Macd { .. } => {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = sign_or_none(a[j], b[j]);
                }
            }
            Spec::Rsi { lower, upper, .. } => {
                for (j, o) in out.iter_mut().enumerate() {
                    let x = a[j];
                    *o = if x.is_nan() {
                        NONE
                    } else if x < lower {
                        1
                    } else if x > upper {
                        -1
                    } else {
                        0
                    };
                }
            }
            Spec::Bollinger { k, style, .. } => {
                let below = if style == BandStyle::Reversion { 1 } else { -1 };
                for (j, o) in out.iter_mut().enumerate() {
                    let (m, sd) = (a[j], b[j]);
                    *o = zone(m - k * sd, m + k * sd, c[t0 + j], below);
                }
            }
            Spec::Momentum { period, threshold } => {
                for (o, i) in out.iter_mut().zip(range) {
                    *o = if i < period {
                        NONE
                    } else {
                        let r = c[i] / c[i - period] - 1.0;
                        if r > threshold {
                            1
                        } else if r < -threshold {
                            -1
                        } else {
                            0
                        }
                    };
                }
            }
            Spec::Donchian { .. } => {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = zone(b[j], a[j], c[t0 + j], -1);
                }
            }
        }
    }

    /// The signal's direction over the bars `range` (and, for a cross in event mode, the bars
    /// where it fires), from the values of [`Spec::keys`] over those bars. Bar `range.start`
    /// never fires: a caller producing tiles starts each one a bar early.
    pub fn directions(
        &self,
        mode: SignalMode,
        c: &[f64],
        range: std::ops::Range<usize>,
        a: &[f64],
        b: &[f64],
    ) -> (Vec<i8>, Option<Vec<u32>>) {
        if mode == SignalMode::Event && self.is_cross() {
            // Crosses straight from the two lines, in one pass (the hot path of a crossover sweep).
            let (dir, acts) = cross_events(a, b);
            return (dir, Some(acts));
        }
        let mut st = vec![NONE; range.len()];
        self.state_into(c, range, a, b, &mut st);
        match mode {
            SignalMode::State => (st, None),
            SignalMode::Event => (events(self, &st), None),
        }
    }
}

/// Events from a state series: a cross fires where the state flips from -1 to +1 or back (a
/// strict cross: a bar with equal lines breaks it); a zone signal fires where the state enters
/// +1 or -1 from anything else. Other bars carry [`NONE`].
pub fn events(spec: &Spec, st: &[i8]) -> Vec<i8> {
    let mut out = vec![NONE; st.len()];
    for i in 1..st.len() {
        let (p, c) = (st[i - 1], st[i]);
        if c == 1 || c == -1 {
            let fire = if spec.is_cross() { p == -c } else { p != c };
            if fire {
                out[i] = c;
            }
        }
    }
    out
}

/// One source's signal stream for one symbol. `strength` and `conf` hold one value per bar, or
/// a single value that holds for every bar (technical signals: no per-bar copy to write and
/// read in a sweep).
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Source name (for weights).
    pub source: String,
    /// Direction per bar, or [`NONE`].
    pub dir: Vec<i8>,
    /// Strength level 1..=4 per bar (or one for all).
    pub strength: Vec<u8>,
    /// Confidence per bar (or one for all).
    pub conf: Vec<f64>,
    /// The bars where the direction is set and differs from the bar before, when the maker of
    /// the stream already knows them (a cross signal's firing bars); see [`Combined::acts`].
    pub acts: Option<Vec<u32>>,
}

/// The combined signal of one symbol; `strength` and `conf` as in [`Stream`]. Build it with
/// [`Combined::new`], which also lists the bars where it can call for a trade.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Combined {
    /// Direction per bar, or [`NONE`] where no source spoke.
    pub dir: Vec<i8>,
    /// Strength level 1..=4 (per bar, or one for all).
    pub strength: Vec<u8>,
    /// Confidence in [0, 1] (per bar, or one for all).
    pub conf: Vec<f64>,
    /// Bars after the first where the signal is present and differs from the bar before (in
    /// direction, strength or confidence), in order: the only bars where it can move a target
    /// (a bar without a signal moves nothing), so the engine skips the bars between them.
    pub acts: Vec<u32>,
    /// The bar of `dir[0]`: 0 for a whole series, a tile's first bar in the batch path (read
    /// through [`dir_at`](Self::dir_at) and the other accessors, which take bar numbers).
    pub base: usize,
}

#[inline]
fn at<T: Copy>(v: &[T], t: usize) -> T {
    if v.len() == 1 {
        v[0]
    } else {
        v[t]
    }
}

impl Stream {
    /// Strength at bar t.
    #[inline]
    pub fn strength_at(&self, t: usize) -> u8 {
        at(&self.strength, t)
    }
    /// Confidence at bar t.
    #[inline]
    pub fn conf_at(&self, t: usize) -> f64 {
        at(&self.conf, t)
    }
}

impl Combined {
    /// A combined signal from its per-bar parts, with its [`acts`](Self::acts) listed.
    pub fn new(dir: Vec<i8>, strength: Vec<u8>, conf: Vec<f64>) -> Combined {
        let mut c = Combined { dir, strength, conf, acts: Vec::new(), base: 0 };
        c.acts = c.action_bars();
        c
    }

    /// A single stream as its own combination (its direction changes are its actions when the
    /// sizes are constant, so a list the stream carries is used as it is).
    pub fn of_stream(st: Stream) -> Combined {
        match st.acts {
            Some(acts) if st.strength.len() == 1 && st.conf.len() == 1 => {
                Combined { dir: st.dir, strength: st.strength, conf: st.conf, acts, base: 0 }
            }
            _ => Combined::new(st.dir, st.strength, st.conf),
        }
    }

    fn action_bars(&self) -> Vec<u32> {
        let d = &self.dir;
        let mut out = Vec::new();
        let mut t = 1;
        if self.constant_size() {
            let acts = |u: usize| d[u] != NONE && d[u] != d[u - 1];
            // Eight bars at a time (the window against itself a bar earlier, as one 64-bit
            // compare): most windows of a sweep's signal hold no change at all.
            while t + 8 <= d.len() {
                let (cur, prev): (&[i8; 8], &[i8; 8]) = (d[t..t + 8].try_into().expect("8"), d[t - 1..t + 7].try_into().expect("8"));
                if cur != prev {
                    out.extend((t..t + 8).filter(|&u| acts(u)).map(|u| (u + self.base) as u32));
                }
                t += 8;
            }
            out.extend((t..d.len()).filter(|&u| acts(u)).map(|u| (u + self.base) as u32));
            return out;
        }
        // By index into the vectors (not bar numbers), then shifted by the base.
        let (k, c) = (&self.strength, &self.conf);
        let acts = |u: usize| d[u] != NONE && (d[u] != d[u - 1] || at(k, u) != at(k, u - 1) || at(c, u) != at(c, u - 1));
        (1..d.len()).filter(|&u| acts(u)).map(|u| (u + self.base) as u32).collect()
    }

    /// The first bar in `from..limit` where the signal can move a target (`limit` if none).
    /// `cursor` is an index into [`acts`](Self::acts) kept between calls by a caller whose
    /// `from` never decreases (start it at 0): the search then resumes where the last one ended.
    #[inline]
    pub fn next_act(&self, cursor: &mut usize, from: usize, limit: usize) -> usize {
        if from == 0 {
            return 0;
        }
        while self.acts.get(*cursor).is_some_and(|&b| (b as usize) < from) {
            *cursor += 1;
        }
        self.acts.get(*cursor).map_or(limit, |&b| (b as usize).min(limit))
    }

    /// The same signal for the bars from `base` on: `dir[0]` is bar `base`.
    pub fn at_base(mut self, base: usize) -> Combined {
        self.acts.iter_mut().for_each(|a| *a += base as u32);
        self.base = base;
        self
    }

    /// The bar of `dir[0]` set to `(dir, strength, conf)` (a tile's first bar is the last bar of
    /// the one before), and the action bars listed again.
    pub fn with_first(mut self, first: (i8, u8, f64)) -> Combined {
        self.dir[0] = first.0;
        if self.strength.len() > 1 {
            self.strength[0] = first.1;
        }
        if self.conf.len() > 1 {
            self.conf[0] = first.2;
        }
        self.acts = self.action_bars();
        self
    }

    /// Direction at bar t.
    #[inline]
    pub fn dir_at(&self, t: usize) -> i8 {
        self.dir[t - self.base]
    }
    /// Strength at bar t.
    #[inline]
    pub fn strength_at(&self, t: usize) -> u8 {
        at(&self.strength, t - self.base)
    }
    /// Confidence at bar t.
    #[inline]
    pub fn conf_at(&self, t: usize) -> f64 {
        at(&self.conf, t - self.base)
    }
    /// Direction, strength and confidence at bar t.
    #[inline]
    pub fn get(&self, t: usize) -> (i8, u8, f64) {
        (self.dir_at(t), self.strength_at(t), self.conf_at(t))
    }
    /// Whether strength and confidence are the same at every bar.
    pub fn constant_size(&self) -> bool {
        self.strength.len() == 1 && self.conf.len() == 1
    }
}

/// Combine streams of one symbol (see the module doc for the formula).
pub fn combine(streams: &[&Stream], weights: &BTreeMap<String, f64>, mults: &[f64; 4], n: usize) -> Combined {
    let w: Vec<f64> = streams.iter().map(|s| weights.get(&s.source).copied().unwrap_or(1.0)).collect();
    let (mut dirs, mut strengths, mut confs) = (vec![NONE; n], vec![4; n], vec![0.0; n]);
    for t in 0..n {
        let (mut num, mut den) = (0.0, 0.0);
        for (s, &wi) in streams.iter().zip(&w) {
            let d = s.dir[t];
            if d != NONE {
                num += wi * d as f64 * mults[s.strength_at(t) as usize - 1] * s.conf_at(t);
                den += wi;
            }
        }
        if den == 0.0 {
            if streams.iter().any(|st| st.dir[t] != NONE) {
                // Only switched-off sources spoke: flat.
                dirs[t] = 0;
                confs[t] = 1.0;
            }
            continue;
        }
        let score = num / den;
        let dir: i8 = if score.abs() < 1e-12 {
            0
        } else if score > 0.0 {
            1
        } else {
            -1
        };
        let agree: f64 = streams.iter().zip(&w).filter(|(s, _)| s.dir[t] != NONE && s.dir[t] == dir).map(|(s, wi)| wi * s.conf_at(t)).sum();
        let conf = agree / den;
        dirs[t] = dir;
        confs[t] = conf;
        if dir != 0 && conf > 0.0 {
            let eff = score.abs() / conf;
            strengths[t] = (0..4).min_by(|&a, &b| (mults[a] - eff).abs().total_cmp(&(mults[b] - eff).abs())).map_or(4, |k| k as u8 + 1);
        } else if streams.len() == 1 {
            strengths[t] = streams[0].strength_at(t);
        }
    }
    Combined::new(dirs, strengths, confs)
}

/// A technical signal's source name when none is given: its kind as written in files
/// (`sma_cross`, `rsi`, ...).
pub fn default_source(kind: SignalKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| format!("{kind:?}").to_lowercase())
}

/// The stream of a technical signal on one symbol.
pub fn technical_stream(cfg: &TechnicalSignal, sym: usize, bars: &Bars, cache: &IndicatorCache) -> Stream {
    let spec = Spec::from_config(cfg);
    let lines: Vec<Series> = spec.keys().into_iter().map(|k| cache.get(sym, bars, k)).collect();
    let line = |i: usize| lines.get(i).map_or(&[][..], |l| l.as_slice());
    let (dir, acts) = spec.directions(cfg.mode, &bars.close, 0..bars.len(), line(0), line(1));
    technical_of(cfg, dir, acts)
}

/// A technical signal's stream from its directions.
pub fn technical_of(cfg: &TechnicalSignal, dir: Vec<i8>, acts: Option<Vec<u32>>) -> Stream {
    let source = cfg.source.clone().unwrap_or_else(|| default_source(cfg.kind));
    Stream { source, dir, strength: vec![cfg.strength as u8 + 1], conf: vec![cfg.confidence], acts }
}

#[cfg(test)]
mod tests {
    use super::indicators::{prev_extreme, sma};
    use super::*;

    #[test]
    fn sma_and_std_against_hand_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 6.0];
        let s = sma(&x, 3);
        assert!(s[1].is_nan());
        assert_eq!(&s[2..], &[2.0, 3.0, 13.0 / 3.0]);
        // One bar at 1e20 swamps every later prefix sum (1e20 + 5 == 1e20): once it has left
        // the window, the windows are summed directly and come out exact.
        let big = [100.0, 1e20, 100.0, 101.0, 102.0, 103.0];
        assert_eq!(&sma(&big, 2)[3..], &[100.5, 101.5, 102.5]);
        let inf = [100.0, 1e308, 1e308, 100.0, 102.0];
        assert_eq!(sma(&inf, 2)[4], 101.0);
        let sd = rolling_std(&x, 2);
        assert!((sd[4] - 1.0).abs() < 1e-12); // {4, 6}: mean 5, deviations 1
    }

    #[test]
    fn sma_is_the_prefix_sum_difference() {
        // (cs[i] - cs[i-n]) / n over the running prefix sum, as vectorbt computes it: not the
        // window summed afresh (the two differ in the last bits on most windows).
        let mut r = 7u64;
        let x: Vec<f64> = (0..500)
            .map(|_| {
                r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                100.0 + (r >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let mut cs = Vec::new();
        let mut acc = 0.0;
        for v in &x {
            acc += v;
            cs.push(acc);
        }
        let s = sma(&x, 7);
        for i in 7..x.len() {
            assert_eq!(s[i].to_bits(), ((cs[i] - cs[i - 7]) / 7.0).to_bits(), "bar {i}");
        }
    }

    #[test]
    fn indicators_in_tiles_equal_one_pass() {
        // Every kernel, produced in uneven tiles, gives the one-pass series bit for bit.
        let mut r = 11u64;
        let mut next = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            (r % 1000) as f64 / 100.0
        };
        let n = 700;
        let close: Vec<f64> = (0..n).map(|_| 50.0 + next()).collect();
        let high: Vec<f64> = close.iter().map(|c| c + next()).collect();
        let low: Vec<f64> = close.iter().map(|c| c - next()).collect();
        let mut bars = crate::data::Bars::default();
        for i in 0..n {
            bars.push(close[i], high[i], low[i], close[i], 1.0, true);
        }
        let keys = [
            IndKey::Sma(1),
            IndKey::Sma(13),
            IndKey::Ema(9),
            IndKey::Rsi(14),
            IndKey::MacdLine(5, 13),
            IndKey::MacdSignal(5, 13, 4),
            IndKey::Std(20),
            IndKey::PrevMax(8),
            IndKey::PrevMin(8),
            IndKey::Atr(10),
            IndKey::Sma(n + 5),
        ];
        let cache = IndicatorCache::default();
        for key in keys {
            let whole = cache.get(0, &bars, key);
            let mut st = indicators::IndState::new(key);
            let mut got = Vec::new();
            let (mut lo, mut step) = (0, 1);
            while lo < n {
                let hi = (lo + step).min(n);
                let mut buf = vec![0.0; hi - lo];
                st.fill(&bars, lo..hi, &mut buf);
                got.extend(buf);
                lo = hi;
                step = step * 3 % 97 + 1;
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&whole), "{key:?}");
        }
        // The one-pass kernels are the formulas of their docs.
        assert!(cache.get(0, &bars, IndKey::Ema(9)).iter().zip(ema(&close, 9)).all(|(a, b)| a.to_bits() == b.to_bits()));
        let line = cache.get(0, &bars, IndKey::MacdLine(5, 13));
        let (e5, e13) = (ema(&close, 5), ema(&close, 13));
        assert!((12..n).all(|i| line[i] == e5[i] - e13[i]));
        let sig = cache.get(0, &bars, IndKey::MacdSignal(5, 13, 4));
        assert_eq!(
            sig[12..].iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            ema(&line[12..], 4).iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn ema_and_rsi_against_hand_values() {
        let e = ema(&[1.0, 3.0, 5.0, 5.0], 2); // alpha 2/3, seed mean(1,3)=2
        assert_eq!(e[1], 2.0);
        assert!((e[2] - (2.0 + 2.0 / 3.0 * 3.0)).abs() < 1e-12);
        let r = rsi(&[1.0, 2.0, 1.0, 2.0], 2); // first 2 changes +1,-1: g=l=0.5 -> 50
        assert_eq!(r[2], 50.0);
        // next change +1: g=(0.5+1)/2=0.75, l=0.25 -> rs 3 -> 75
        assert!((r[3] - 75.0).abs() < 1e-12);
    }

    #[test]
    fn fused_cross_events_equal_events_of_the_state() {
        // Lines with warm-up NaNs, ties and crossings through equality.
        let a = [f64::NAN, 1.0, 2.0, 2.0, 3.0, 1.0, 1.0, 0.0, 5.0, f64::NAN, 1.0, 3.0, 0.0];
        let b = [f64::NAN, 2.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 1.0];
        let st: Vec<i8> = a.iter().zip(&b).map(|(x, y)| sign_or_none(*x, *y)).collect();
        let spec = Spec::SmaCross { fast: 1, slow: 2 };
        assert_eq!(cross_events(&a, &b).0, events(&spec, &st));
        assert_eq!(cross_events(&a, &b).0, vec![NONE, NONE, 1, NONE, NONE, -1, NONE, NONE, 1, NONE, NONE, 1, -1]);
    }

    #[test]
    fn cross_events_across_word_boundaries() {
        // 300 bars of small integer lines (many ties and crossings, some at bits 63/64 and
        // 127/128 of the masks), NaN warm-up: the masks must give what the state series gives.
        let mut x = 12345u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 4) as f64
        };
        let a: Vec<f64> = (0..300).map(|i| if i < 5 { f64::NAN } else { next() }).collect();
        let mut b: Vec<f64> = (0..300).map(|_| next()).collect();
        b[63] = a[63] - 1.0;
        b[64] = a[64] + 1.0;
        b[127] = a[127] + 1.0;
        b[128] = a[128] - 1.0;
        let st: Vec<i8> = a.iter().zip(&b).map(|(x, y)| sign_or_none(*x, *y)).collect();
        let (ev, fired) = cross_events(&a, &b);
        assert_eq!(ev, events(&Spec::SmaCross { fast: 1, slow: 2 }, &st));
        assert_eq!(fired, (0..300u32).filter(|&i| ev[i as usize] != NONE).collect::<Vec<_>>());
        assert_eq!((ev[64], ev[128]), (-1, 1));
        assert!(ev.iter().filter(|e| **e != NONE).count() > 30);
    }

    #[test]
    fn action_bars_are_the_bars_where_a_present_signal_changes() {
        // Event-style signal: changes into "no signal" are not actions; a repeat after a gap is.
        let mut dir = vec![NONE; 40];
        for (t, d) in [(3, 1), (4, -1), (12, 1), (20, 1), (21, 1), (39, -1)] {
            dir[t] = d;
        }
        let c = Combined::new(dir, vec![4], vec![1.0]);
        assert_eq!(c.acts, vec![3, 4, 12, 20, 39]);
        let mut k = 0;
        let found: Vec<usize> =
            [(0, 40), (1, 40), (4, 40), (5, 40), (13, 15), (13, 40), (40, 40)].iter().map(|&(f, l)| c.next_act(&mut k, f, l)).collect();
        assert_eq!(found, vec![0, 3, 4, 12, 15, 20, 40]);
        // Per-bar sizes: a change of confidence alone is an action; while absent it is not.
        let c = Combined::new(vec![1, 1, 1, NONE, NONE, 1], vec![4; 6], vec![0.5, 0.5, 0.7, 0.1, 0.2, 0.7]);
        assert_eq!(c.acts, vec![2, 5]);
    }

    #[test]
    fn strict_cross_events() {
        let spec = Spec::SmaCross { fast: 1, slow: 2 };
        // -1 -> 0 -> 1 is no cross (equality breaks it); -1 -> 1 is.
        let st = [NONE, -1, 0, 1, -1, 1];
        assert_eq!(events(&spec, &st), vec![NONE, NONE, NONE, NONE, -1, 1]);
        let zone = Spec::Rsi { period: 2, lower: 30.0, upper: 70.0 };
        assert_eq!(events(&zone, &st), vec![NONE, -1, NONE, 1, -1, 1]);
    }

    #[test]
    fn atr_and_correlation_by_hand() {
        // TRs: 2, max(3, |5-1|, |2-1|)=4 -> seed mean 3; next TR max(1, |4-4|... ) etc.
        let h = [3.0, 5.0, 4.5];
        let l = [1.0, 2.0, 3.5];
        let c = [1.0, 4.0, 4.0];
        let a = atr(&h, &l, &c, 2);
        assert_eq!(a[1], 3.0);
        assert_eq!(a[2], (3.0 + 1.0) / 2.0); // TR = max(1, 0.5, 0.5) = 1
        let x = [1.0, 2.0, 4.0, 8.0, 4.0];
        let y = [1.0, 2.0, 4.0, 8.0, 4.0];
        let z = [8.0, 4.0, 2.0, 1.0, 2.0];
        assert!((rolling_correlation(&x, &y, 3)[4] - 1.0).abs() < 1e-12);
        assert!((rolling_correlation(&x, &z, 3)[4] + 1.0).abs() < 1e-12);
    }

    #[test]
    fn donchian_uses_previous_bars_only() {
        let hi = prev_extreme(&[1.0, 5.0, 2.0, 3.0, 1.0], 2, true);
        assert!(hi[1].is_nan());
        assert_eq!(&hi[2..], &[5.0, 5.0, 3.0]);
    }

    #[test]
    fn combiner_vote() {
        let mk =
            |src: &str, d: i8, k: u8, c: f64| Stream { source: src.into(), dir: vec![d], strength: vec![k], conf: vec![c], acts: None };
        let m = [0.25, 0.5, 0.75, 1.0];
        let (a, b) = (mk("a", 1, 4, 0.8), mk("b", -1, 2, 0.6));
        let mut w = BTreeMap::new();
        w.insert("a".to_string(), 2.0);
        // S = (2*1*1*0.8 + 1*(-1)*0.5*0.6) / 3 = (1.6 - 0.3)/3 = 0.4333; long.
        let c = combine(&[&a, &b], &w, &m, 1);
        assert_eq!(c.dir[0], 1);
        assert!((c.conf[0] - 1.6 / 3.0).abs() < 1e-12);
        // |S|/conf = 1.3/1.6 = 0.8125 -> nearest multiplier 0.75 (strong).
        assert_eq!(c.strength[0], 3);
        // A tie is flat.
        let (x, y) = (mk("x", 1, 4, 0.5), mk("y", -1, 4, 0.5));
        assert_eq!(combine(&[&x, &y], &BTreeMap::new(), &m, 1).dir[0], 0);
        // A switched-off source does not vote; alone, it makes the bar flat.
        w.insert("b".to_string(), 0.0);
        let c = combine(&[&a, &b], &w, &m, 1);
        assert_eq!((c.dir[0], c.conf[0]), (1, 0.8));
        let c = combine(&[&b], &w, &m, 1);
        assert_eq!((c.dir[0], c.conf[0]), (0, 1.0));
    }
}
