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

    /// The series for `key` on symbol `sym`, computed on first use.
    pub fn get(&self, sym: usize, bars: &Bars, key: IndKey) -> Arc<Vec<f64>> {
        if let Some(v) = self.map.lock().ok().and_then(|m| m.get(&(sym, key)).cloned()) {
            return v;
        }
        let mut v = vec![f64::NAN; bars.len()];
        IndState::new(key).fill(bars, 0..bars.len(), &mut v);
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
#[cfg(test)]
pub(crate) fn sma(x: &[f64], n: usize) -> Vec<f64> {
    run(Kernel::Sma(SmaK::new(n)), x)
}

/// EMA with alpha = 2/(n+1), seeded with the SMA of the first n values (TA-Lib's convention);
/// NaN before that.
pub fn ema(x: &[f64], n: usize) -> Vec<f64> {
    run(Kernel::Ema(EmaK::new(n)), x)
}

/// Wilder's RSI: average gain and loss seeded with the simple mean of the first n changes, then
/// smoothed as `(prev*(n-1) + x)/n`; 100 when there were no losses. NaN for the first n bars.
pub fn rsi(x: &[f64], n: usize) -> Vec<f64> {
    run(Kernel::Rsi(RsiK::new(n)), x)
}

/// Wilder's average true range: true range `max(h-l, |h-c_prev|, |l-c_prev|)` (h-l on the
/// first bar), seeded with the mean of the first n, then `(prev*(n-1) + tr)/n`; NaN before.
pub fn atr(h: &[f64], l: &[f64], c: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; c.len()];
    AtrK::new(n).fill(h, l, c, 0..c.len(), &mut out);
    out
}

fn run(mut k: Kernel, x: &[f64]) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    k.fill_one(x, 0..x.len(), &mut out);
    out
}

/// An indicator series produced bar by bar: the state that carries from one bar to the next, so
/// the series comes out bit for bit the same in one pass (the cache) or in tiles of bars (the
/// batch path of a sweep, which never holds a whole line). Bars are asked for in order, each
/// once, from bar 0; the inputs are the whole columns (windows read back into them).
#[derive(Debug, Clone)]
pub(crate) struct IndState {
    kernel: Kernel,
    next: usize,
}

#[derive(Debug, Clone)]
enum Kernel {
    Sma(SmaK),
    Ema(EmaK),
    Rsi(RsiK),
    Macd(EmaK, EmaK),
    /// The MACD line's EMAs, and the signal EMA over the line from its first value.
    MacdSignal(EmaK, EmaK, EmaK, bool),
    Std(StdK),
    Prev(PrevK),
    Atr(AtrK),
}

impl IndState {
    /// The state before bar 0 of the series `key`.
    pub(crate) fn new(key: IndKey) -> IndState {
        let kernel = match key {
            IndKey::Sma(n) => Kernel::Sma(SmaK::new(n)),
            IndKey::Ema(n) => Kernel::Ema(EmaK::new(n)),
            IndKey::Rsi(n) => Kernel::Rsi(RsiK::new(n)),
            IndKey::MacdLine(f, s) => Kernel::Macd(EmaK::new(f), EmaK::new(s)),
            IndKey::MacdSignal(f, s, g) => Kernel::MacdSignal(EmaK::new(f), EmaK::new(s), EmaK::new(g), false),
            IndKey::Std(n) => Kernel::Std(StdK::new(n)),
            IndKey::PrevMax(n) => Kernel::Prev(PrevK::new(n, true)),
            IndKey::PrevMin(n) => Kernel::Prev(PrevK::new(n, false)),
            IndKey::Atr(n) => Kernel::Atr(AtrK::new(n)),
        };
        IndState { kernel, next: 0 }
    }

    /// Values for the bars `range` (which must start where the last call ended) into `out`.
    pub(crate) fn fill(&mut self, bars: &Bars, range: std::ops::Range<usize>, out: &mut [f64]) {
        debug_assert_eq!(range.start, self.next);
        debug_assert_eq!(range.len(), out.len());
        self.next = range.end;
        match &mut self.kernel {
            Kernel::Atr(k) => k.fill(&bars.high, &bars.low, &bars.close, range, out),
            Kernel::Prev(k) => k.fill(if k.max { &bars.high } else { &bars.low }, range, out),
            k => k.fill_one(&bars.close, range, out),
        }
    }
}

impl Kernel {
    /// The kernels over one input column.
    fn fill_one(&mut self, x: &[f64], range: std::ops::Range<usize>, out: &mut [f64]) {
        match self {
            Kernel::Sma(k) => k.fill(x, range, out),
            Kernel::Ema(k) => {
                for (o, i) in out.iter_mut().zip(range) {
                    *o = k.step(x[i]);
                }
            }
            Kernel::Rsi(k) => {
                for (o, i) in out.iter_mut().zip(range) {
                    *o = k.step(x[i]);
                }
            }
            Kernel::Macd(f, s) => {
                for (o, i) in out.iter_mut().zip(range) {
                    *o = f.step(x[i]) - s.step(x[i]);
                }
            }
            Kernel::MacdSignal(f, s, g, started) => {
                for (o, i) in out.iter_mut().zip(range) {
                    let line = f.step(x[i]) - s.step(x[i]);
                    // The signal line starts at the MACD line's first value.
                    *started |= !line.is_nan();
                    *o = if *started { g.step(line) } else { f64::NAN };
                }
            }
            Kernel::Std(k) => k.fill(x, range, out),
            Kernel::Prev(k) => k.fill(x, range, out),
            Kernel::Atr(_) => unreachable!("ATR reads three columns"),
        }
    }
}

/// The running prefix sum of a symbol's closes over the current tile of bars and the `keep`
/// bars before it. Every SMA window reads the sum n bars back from it, so the batch path sums
/// the closes once per tile for all its windows, in the order each window's own running sum
/// ([`SmaK`]) takes them: the windows' values are the same to the last bit.
#[derive(Debug, Clone)]
pub(crate) struct Prefix {
    acc: f64,
    keep: usize,
    /// The bar of `cs[0]`.
    first: usize,
    cs: Vec<f64>,
}

impl Prefix {
    /// Before bar 0, for windows of up to `keep` bars.
    pub(crate) fn new(keep: usize) -> Prefix {
        Prefix { acc: 0.0, keep, first: 0, cs: Vec::new() }
    }

    /// Sum on through the bars `range` of `x` (which must start where the last call ended).
    pub(crate) fn advance(&mut self, x: &[f64], range: std::ops::Range<usize>) {
        let drop = self.cs.len().saturating_sub(self.keep);
        self.cs.drain(..drop);
        self.first += drop;
        for &v in &x[range] {
            self.acc += v;
            self.cs.push(self.acc);
        }
    }

    /// The SMA of `n` bars of `x` (the column summed) over the bars `range` of the last
    /// [`advance`](Self::advance), into `out`: [`SmaK`]'s formula and guard, in a loop over
    /// whole slices (which the compiler vectorizes), then the windows the guard sends back to
    /// the closes summed directly.
    pub(crate) fn sma(&self, x: &[f64], n: usize, range: std::ops::Range<usize>, out: &mut [f64]) {
        if n == 0 || n > x.len() {
            out.fill(f64::NAN);
            return;
        }
        let nf = n as f64;
        let (t0, t1) = (range.start, range.end);
        // Before bar n: the warm-up, then the first window (its sum is the prefix sum itself).
        let body = n.max(t0).min(t1);
        for i in t0..body {
            out[i - t0] = if i + 1 < n { f64::NAN } else { self.cs[i - self.first] / nf };
        }
        if body == t1 {
            return;
        }
        let now = &self.cs[body - self.first..t1 - self.first];
        let old = &self.cs[body - n - self.first..t1 - n - self.first];
        let kept = |c: f64, p: f64| {
            let w = c - p;
            w.is_finite() && c.abs().max(p.abs()) <= SmaK::LOST * w.abs()
        };
        let mut guarded = false;
        for ((o, &c), &p) in out[body - t0..].iter_mut().zip(now).zip(old) {
            *o = (c - p) / nf;
            guarded |= !kept(c, p);
        }
        if guarded {
            for (k, (&c, &p)) in now.iter().zip(old).enumerate() {
                if !kept(c, p) {
                    let i = body + k;
                    out[i - t0] = x[i + 1 - n..=i].iter().sum::<f64>() / nf;
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct SmaK {
    n: usize,
    /// The running prefix sum, and the last n of its values (`ring[at]` is n bars old).
    acc: f64,
    ring: Vec<f64>,
    at: usize,
}

impl SmaK {
    fn new(n: usize) -> SmaK {
        SmaK { n, acc: 0.0, ring: vec![0.0; n], at: 0 }
    }

    /// Where the prefix sums are more than this many times the window's sum, the window is
    /// summed directly (see [`sma`]).
    const LOST: f64 = 1e8;

    fn fill(&mut self, x: &[f64], range: std::ops::Range<usize>, out: &mut [f64]) {
        let n = self.n;
        if n == 0 || n > x.len() {
            out.fill(f64::NAN);
            return;
        }
        let nf = n as f64;
        for (o, i) in out.iter_mut().zip(range) {
            self.acc += x[i];
            let (cs, old) = (self.acc, self.ring[self.at]);
            self.ring[self.at] = cs;
            self.at = if self.at + 1 == n { 0 } else { self.at + 1 };
            *o = if i + 1 < n {
                f64::NAN
            } else if i + 1 == n {
                cs / nf
            } else {
                let w = cs - old;
                if w.is_finite() && cs.abs().max(old.abs()) <= Self::LOST * w.abs() {
                    w / nf
                } else {
                    x[i + 1 - n..=i].iter().sum::<f64>() / nf
                }
            };
        }
    }
}

#[derive(Debug, Clone)]
struct EmaK {
    n: usize,
    alpha: f64,
    seen: usize,
    /// The seed's sum (summed as `Iterator::sum` sums), then the EMA.
    e: f64,
}

impl EmaK {
    fn new(n: usize) -> EmaK {
        EmaK { n, alpha: 2.0 / (n as f64 + 1.0), seen: 0, e: -0.0 }
    }

    #[inline]
    fn step(&mut self, x: f64) -> f64 {
        if self.seen >= self.n {
            if self.n == 0 {
                return f64::NAN;
            }
            self.e += self.alpha * (x - self.e);
            return self.e;
        }
        self.e += x;
        self.seen += 1;
        if self.seen == self.n {
            self.e /= self.n as f64;
            self.e
        } else {
            f64::NAN
        }
    }
}

#[derive(Debug, Clone)]
struct RsiK {
    n: usize,
    i: usize,
    prev: f64,
    g: f64,
    l: f64,
}

impl RsiK {
    fn new(n: usize) -> RsiK {
        RsiK { n, i: 0, prev: f64::NAN, g: 0.0, l: 0.0 }
    }

    #[inline]
    fn step(&mut self, x: f64) -> f64 {
        let (i, n) = (self.i, self.n);
        let d = x - self.prev;
        self.prev = x;
        self.i += 1;
        if i == 0 || n == 0 {
            return f64::NAN;
        }
        let value = |g: f64, l: f64| if l == 0.0 { 100.0 } else { 100.0 - 100.0 / (1.0 + g / l) };
        if i <= n {
            self.g += d.max(0.0);
            self.l += (-d).max(0.0);
            if i < n {
                return f64::NAN;
            }
            self.g /= n as f64;
            self.l /= n as f64;
        } else {
            self.g = (self.g * (n as f64 - 1.0) + d.max(0.0)) / n as f64;
            self.l = (self.l * (n as f64 - 1.0) + (-d).max(0.0)) / n as f64;
        }
        value(self.g, self.l)
    }
}

#[derive(Debug, Clone)]
struct AtrK {
    n: usize,
    a: f64,
}

impl AtrK {
    fn new(n: usize) -> AtrK {
        AtrK { n, a: -0.0 }
    }

    fn fill(&mut self, h: &[f64], l: &[f64], c: &[f64], range: std::ops::Range<usize>, out: &mut [f64]) {
        let n = self.n;
        if n == 0 || n > c.len() {
            out.fill(f64::NAN);
            return;
        }
        let tr = |i: usize| if i == 0 { h[0] - l[0] } else { (h[i] - l[i]).max((h[i] - c[i - 1]).abs()).max((l[i] - c[i - 1]).abs()) };
        for (o, i) in out.iter_mut().zip(range) {
            *o = if i + 1 < n {
                // The seed's sum, as `Iterator::sum` sums.
                self.a += tr(i);
                f64::NAN
            } else if i + 1 == n {
                self.a = (self.a + tr(i)) / n as f64;
                self.a
            } else {
                self.a = (self.a * (n as f64 - 1.0) + tr(i)) / n as f64;
                self.a
            };
        }
    }
}

#[derive(Debug, Clone)]
struct StdK {
    n: usize,
    s: f64,
    s2: f64,
}

impl StdK {
    fn new(n: usize) -> StdK {
        StdK { n, s: 0.0, s2: 0.0 }
    }

    fn fill(&mut self, x: &[f64], range: std::ops::Range<usize>, out: &mut [f64]) {
        let n = self.n;
        if n == 0 || n > x.len() {
            out.fill(f64::NAN);
            return;
        }
        // Two-pass per window would be O(n*w); a shifted running sum keeps O(n) and stays accurate.
        let shift = x[0];
        for (o, i) in out.iter_mut().zip(range) {
            let d = x[i] - shift;
            self.s += d;
            self.s2 += d * d;
            if i >= n {
                let old = x[i - n] - shift;
                self.s -= old;
                self.s2 -= old * old;
            }
            *o = if i + 1 >= n {
                let m = self.s / n as f64;
                (self.s2 / n as f64 - m * m).max(0.0).sqrt()
            } else {
                f64::NAN
            };
        }
    }
}

#[derive(Debug, Clone)]
struct PrevK {
    n: usize,
    max: bool,
    dq: std::collections::VecDeque<usize>,
}

impl PrevK {
    fn new(n: usize, max: bool) -> PrevK {
        PrevK { n, max, dq: Default::default() }
    }

    /// Max (or min) of the n values before each index, by a monotonic deque; NaN for the first n.
    fn fill(&mut self, x: &[f64], range: std::ops::Range<usize>, out: &mut [f64]) {
        let (n, max, dq) = (self.n, self.max, &mut self.dq);
        for (o, i) in out.iter_mut().zip(range) {
            *o = f64::NAN;
            if i >= n {
                while let Some(&f) = dq.front() {
                    if f + n < i {
                        dq.pop_front();
                    } else {
                        break;
                    }
                }
                if let Some(&f) = dq.front() {
                    *o = x[f];
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
    }
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
    run(Kernel::Std(StdK::new(n)), x)
}

/// Max (or min) of the n values before each index; NaN for the first n.
#[cfg(test)]
pub(crate) fn prev_extreme(x: &[f64], n: usize, max: bool) -> Vec<f64> {
    run(Kernel::Prev(PrevK::new(n, max)), x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The shared prefix sums give every window's SMA to the last bit of the window's own
    /// running sum, tile by tile, across the guard (huge values) and NaN closes.
    #[test]
    fn prefix_sma_equals_the_windows_own_sums() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for case in 0..40 {
            let len = rng.gen_range(1..3000);
            let x: Vec<f64> = (0..len)
                .map(|_| match rng.gen_range(0..100) {
                    0 if case % 3 == 0 => 1e12,
                    1 if case % 5 == 0 => f64::NAN,
                    _ => rng.gen_range(1.0..200.0),
                })
                .collect();
            let windows: Vec<usize> = (0..6).map(|_| rng.gen_range(0..120)).collect();
            let keep = *windows.iter().max().unwrap();
            let mut p = Prefix::new(keep);
            let mut got: Vec<Vec<f64>> = vec![Vec::new(); windows.len()];
            let mut t0 = 0;
            while t0 < len {
                let t1 = (t0 + rng.gen_range(1..700)).min(len);
                p.advance(&x, t0..t1);
                for (g, &n) in got.iter_mut().zip(&windows) {
                    let mut out = vec![0.0; t1 - t0];
                    p.sma(&x, n, t0..t1, &mut out);
                    g.extend(out);
                }
                t0 = t1;
            }
            for (g, &n) in got.iter().zip(&windows) {
                let want = sma(&x, n);
                let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(g), bits(&want), "case {case}, window {n}");
            }
        }
    }
}
