//! Indicator kernels (O(n) each) and the cache that computes each series once per
//! (symbol, kind, parameters) and shares it read-only between signals and optimizer candidates.

#![allow(clippy::needless_range_loop)] // kernels read several arrays at shifted indices

use crate::data::Bars;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Indicator series that are shared between signals and optimizer candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IndKey {
    /// Simple moving average of close.
    Sma(usize),
    /// Exponential moving average of close.
    Ema(usize),
    /// Wilder's RSI of close.
    Rsi(usize),
    /// EMA(fast) - EMA(slow).
    MacdLine(usize, usize),
    /// EMA(signal) of the MACD line.
    MacdSignal(usize, usize, usize),
    /// Population standard deviation of close.
    Std(usize),
    /// Highest high of the previous n bars (excluding the current one).
    PrevMax(usize),
    /// Lowest low of the previous n bars.
    PrevMin(usize),
    /// Wilder's average true range.
    Atr(usize),
}

/// A shared indicator series.
pub type Series = Arc<Vec<f64>>;

/// Indicators computed once per (symbol, key) and shared read-only, for one [`crate::data::MarketData`]
/// (a cache must not be used with other bars). NaN marks warm-up bars.
#[derive(Debug, Default)]
pub struct IndicatorCache {
    map: Mutex<BTreeMap<(usize, IndKey), Series>>,
    prefix: Mutex<BTreeMap<usize, Arc<Vec<f64>>>>,
    labels: Mutex<BTreeMap<String, Arc<dyn std::any::Any + Send + Sync>>>,
}

impl IndicatorCache {
    /// Number of distinct series computed so far.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing has been computed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Any other value derived from these bars (regime labels, coarser bars), computed once per
    /// key and shared.
    pub fn shared<T: Send + Sync + 'static>(&self, key: String, compute: impl FnOnce() -> T) -> Arc<T> {
        if let Some(v) = self.labels.lock().ok().and_then(|m| m.get(&key).cloned()).and_then(|v| v.downcast::<T>().ok()) {
            return v;
        }
        let v = Arc::new(compute());
        if let Ok(mut m) = self.labels.lock() {
            m.entry(key).or_insert_with(|| v.clone());
        }
        v
    }

    fn prefix_sum(&self, sym: usize, close: &[f64]) -> Arc<Vec<f64>> {
        if let Some(v) = self.prefix.lock().ok().and_then(|m| m.get(&sym).cloned()) {
            return v;
        }
        let mut cs = Vec::with_capacity(close.len());
        let mut acc = 0.0;
        for &c in close {
            acc += c;
            cs.push(acc);
        }
        let v = Arc::new(cs);
        if let Ok(mut m) = self.prefix.lock() {
            m.entry(sym).or_insert_with(|| v.clone());
        }
        v
    }

    /// The series for `key` on symbol `sym`, computed on first use.
    pub fn get(&self, sym: usize, bars: &Bars, key: IndKey) -> Arc<Vec<f64>> {
        if let Some(v) = self.map.lock().ok().and_then(|m| m.get(&(sym, key)).cloned()) {
            return v;
        }
        let c = &bars.close;
        let v = match key {
            IndKey::Sma(n) => sma_from_prefix(&self.prefix_sum(sym, c), c, n),
            IndKey::Ema(n) => ema(c, n),
            IndKey::Rsi(n) => rsi(c, n),
            IndKey::MacdLine(f, s) => {
                let (a, b) = (self.get(sym, bars, IndKey::Ema(f)), self.get(sym, bars, IndKey::Ema(s)));
                a.iter().zip(b.iter()).map(|(x, y)| x - y).collect()
            }
            IndKey::MacdSignal(f, s, g) => {
                let line = self.get(sym, bars, IndKey::MacdLine(f, s));
                let start = line.iter().position(|x| !x.is_nan()).unwrap_or(line.len());
                let mut out = vec![f64::NAN; start];
                out.extend(ema(&line[start..], g));
                out
            }
            IndKey::Std(n) => rolling_std(c, n),
            IndKey::PrevMax(n) => prev_extreme(&bars.high, n, true),
            IndKey::PrevMin(n) => prev_extreme(&bars.low, n, false),
            IndKey::Atr(n) => atr(&bars.high, &bars.low, c, n),
        };
        let v = Arc::new(v);
        if let Ok(mut m) = self.map.lock() {
            return m.entry((sym, key)).or_insert(v).clone();
        }
        v
    }
}

/// SMA as `(cs[i] - cs[i-n]) / n` over one running prefix sum `cs` of `x` (vectorbt's formula,
/// so results agree to the last bit); NaN for the first n-1 bars. Guard: a difference of two
/// prefix sums keeps only the digits the window's sum has beside theirs, so where the prefix
/// sums are more than 1e8 times the window's sum (a huge value earlier in the series, about 8
/// of 16 digits gone) or not finite, the window is summed directly from `x` instead.
pub(crate) fn sma_from_prefix(cs: &[f64], x: &[f64], n: usize) -> Vec<f64> {
    const LOST: f64 = 1e8;
    let mut out = vec![f64::NAN; cs.len()];
    if n == 0 || n > cs.len() {
        return out;
    }
    out[n - 1] = cs[n - 1] / n as f64;
    for i in n..cs.len() {
        let w = cs[i] - cs[i - n];
        out[i] = if w.is_finite() && cs[i].abs().max(cs[i - n].abs()) <= LOST * w.abs() {
            w / n as f64
        } else {
            x[i + 1 - n..=i].iter().sum::<f64>() / n as f64
        };
    }
    out
}

/// EMA with alpha = 2/(n+1), seeded with the SMA of the first n values (TA-Lib's convention);
/// NaN before that.
pub fn ema(x: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    if n == 0 || n > x.len() {
        return out;
    }
    let alpha = 2.0 / (n as f64 + 1.0);
    let mut e = x[..n].iter().sum::<f64>() / n as f64;
    out[n - 1] = e;
    for i in n..x.len() {
        e += alpha * (x[i] - e);
        out[i] = e;
    }
    out
}

/// Wilder's RSI: average gain and loss seeded with the simple mean of the first n changes, then
/// smoothed as `(prev*(n-1) + x)/n`; 100 when there were no losses. NaN for the first n bars.
pub fn rsi(x: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    if n == 0 || x.len() <= n {
        return out;
    }
    let (mut g, mut l) = (0.0, 0.0);
    for i in 1..=n {
        let d = x[i] - x[i - 1];
        g += d.max(0.0);
        l += (-d).max(0.0);
    }
    g /= n as f64;
    l /= n as f64;
    let value = |g: f64, l: f64| if l == 0.0 { 100.0 } else { 100.0 - 100.0 / (1.0 + g / l) };
    out[n] = value(g, l);
    for i in n + 1..x.len() {
        let d = x[i] - x[i - 1];
        g = (g * (n as f64 - 1.0) + d.max(0.0)) / n as f64;
        l = (l * (n as f64 - 1.0) + (-d).max(0.0)) / n as f64;
        out[i] = value(g, l);
    }
    out
}

/// Wilder's average true range: true range `max(h-l, |h-c_prev|, |l-c_prev|)` (h-l on the
/// first bar), seeded with the mean of the first n, then `(prev*(n-1) + tr)/n`; NaN before.
pub fn atr(h: &[f64], l: &[f64], c: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; c.len()];
    if n == 0 || n > c.len() {
        return out;
    }
    let tr = |i: usize| if i == 0 { h[0] - l[0] } else { (h[i] - l[i]).max((h[i] - c[i - 1]).abs()).max((l[i] - c[i - 1]).abs()) };
    let mut a = (0..n).map(tr).sum::<f64>() / n as f64;
    out[n - 1] = a;
    for i in n..c.len() {
        a = (a * (n as f64 - 1.0) + tr(i)) / n as f64;
        out[i] = a;
    }
    out
}

/// Rolling Pearson correlation of two series' log returns over `n` returns; NaN before.
pub fn rolling_correlation(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let len = a.len().min(b.len());
    let mut out = vec![f64::NAN; len];
    let r = |x: &[f64], i: usize| (x[i] / x[i - 1]).ln();
    let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 1..len {
        let (x, y) = (r(a, i), r(b, i));
        sa += x;
        sb += y;
        saa += x * x;
        sbb += y * y;
        sab += x * y;
        if i > n {
            let (x, y) = (r(a, i - n), r(b, i - n));
            sa -= x;
            sb -= y;
            saa -= x * x;
            sbb -= y * y;
            sab -= x * y;
        }
        if i >= n {
            let k = n as f64;
            let cov = sab - sa * sb / k;
            let va = saa - sa * sa / k;
            let vb = sbb - sb * sb / k;
            out[i] = if va > 0.0 && vb > 0.0 { cov / (va * vb).sqrt() } else { f64::NAN };
        }
    }
    out
}

/// Rolling population standard deviation (ddof = 0, as Bollinger's original definition).
pub fn rolling_std(x: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    if n == 0 || n > x.len() {
        return out;
    }
    // Two-pass per window would be O(n*w); a shifted running sum keeps O(n) and stays accurate.
    let shift = x[0];
    let (mut s, mut s2) = (0.0, 0.0);
    for i in 0..x.len() {
        let d = x[i] - shift;
        s += d;
        s2 += d * d;
        if i >= n {
            let o = x[i - n] - shift;
            s -= o;
            s2 -= o * o;
        }
        if i + 1 >= n {
            let m = s / n as f64;
            out[i] = (s2 / n as f64 - m * m).max(0.0).sqrt();
        }
    }
    out
}

/// Max (or min) of the n values before each index, by a monotonic deque; NaN for the first n.
pub(crate) fn prev_extreme(x: &[f64], n: usize, max: bool) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    for i in 0..x.len() {
        if i >= n {
            while let Some(&f) = dq.front() {
                if f + n < i {
                    dq.pop_front();
                } else {
                    break;
                }
            }
            if let Some(&f) = dq.front() {
                out[i] = x[f];
            }
        }
        let better = |a: f64, b: f64| if max { a >= b } else { a <= b };
        while let Some(&b) = dq.back() {
            if better(x[i], x[b]) {
                dq.pop_back();
            } else {
                break;
            }
        }
        dq.push_back(i);
    }
    out
}
