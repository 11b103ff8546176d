//! A Markov-switching GARCH detector of the volatility axis (`detector = "ms_garch"`), causal by
//! construction.
//!
//! Model, per bar t, state k and symbol i: the bar's standard deviation is
//! `v[k] * m[i] * sqrt(h[t])`, and the log of its high-low range (log of `ln(high/low)`) is the
//! log of that plus an offset `mu`, Gaussian with spread `sd`. The shared variance `h` (mean 1)
//! follows GARCH(1,1) in the market's factor shock, `h' = (1-a-b) + a*h*f^2 + b*h`, where f is
//! read from the bar's mean of multiplier-scaled returns (`mean(r[i] / m[i]) / (v[k]*sqrt(h))`
//! is `sqrt(rho)*f` plus the symbols' own shocks, whose share `(1-rho)/n` is taken out of its
//! square). Every state stays with probability `1 - 1/mean_bars`.
//!
//! Why: a shared variance multiplies every state's volatility, so a bar's volatility level alone
//! does not name its state; what does is how `h` would have moved under each. The filter keeps
//! one `h` per state (what it would be had that state held), mixed through the transition
//! probabilities every bar (Gray's collapse), and a bar's state is the most probable one given
//! bars up to it.
//!
//! Fitting: until `warmup` bars exist, the rules' states stand in. Then, every `refit_every`
//! bars (or a fortieth of the bars so far, when that is longer), on at most [`FIT_WINDOW`] bars
//! before the refit bar: multipliers from each symbol's mean log
//! range, `rho` from the returns' mean pairwise correlation, and `v`, `mu`, `a`, `b`, `sd` by
//! maximum likelihood (Nelder-Mead; three starts the first time, then from the last fit). The
//! filter runs on over the refit with the new parameters.
//!
//! States are ranked by `v`, low to high; the lowest is low volatility, the highest high. A new
//! state is adopted once it has held [`CONFIRM`] bars in a row (the filter alone flips often on
//! short-lived range bursts). Measurements: `docs/regimes.md`.

use super::{BEAR, BULL, HIGH_VOL, SIDEWAYS};
use crate::data::MarketData;
use crate::experiment::RegimeConfig;

/// Most bars a fit looks at.
pub const FIT_WINDOW: usize = 4000;
/// Bars a new label must hold in a row before it is adopted.
pub const CONFIRM: usize = 3;

/// Per bar and symbol (row-major, `n * ns`): log of the high-low range (floored at 1% of the
/// symbol's mean range so far) and log return, both net of the bar's seasonal factor
/// ([`super::seasonal`]).
struct Obs {
    ns: usize,
    lr: Vec<f64>,
    ret: Vec<f64>,
}

impl Obs {
    fn new(md: &MarketData, ids: &[usize], season: &[f64]) -> Obs {
        let (n, ns) = (md.len(), ids.len());
        let (mut lr, mut ret) = (vec![0.0; n * ns], vec![0.0; n * ns]);
        for (j, &s) in ids.iter().enumerate() {
            let b = &md.bars[s];
            let mut sum = 0.0;
            for t in 0..n {
                let range = (b.high[t] / b.low[t]).ln().max(0.0);
                sum += range;
                lr[t * ns + j] = range.max(0.01 * sum / (t + 1) as f64).max(f64::MIN_POSITIVE).ln() - season[t];
                if t > 0 {
                    ret[t * ns + j] = (b.close[t] / b.close[t - 1]).ln() * (-season[t]).exp();
                }
            }
        }
        Obs { ns, lr, ret }
    }
}

/// A fit: the likelihood's parameters `th = [ln v0..3, mu, a, b, ln sd]`, and the window's
/// multipliers' logs and correlation; with the exponentials the filter needs every bar, taken
/// once here rather than per bar.
#[derive(Debug, Clone)]
struct Fit {
    th: Vec<f64>,
    log_m: Vec<f64>,
    rho: f64,
    v: [f64; 4],
    sd: f64,
    ln_sd: f64,
    m: Vec<f64>,
}

impl Fit {
    fn new(th: Vec<f64>, log_m: Vec<f64>, rho: f64) -> Fit {
        let v = std::array::from_fn(|k| th.get(k).map_or(1.0, |x| x.exp()));
        let sd = th.get(7).map_or(1.0, |x| x.exp());
        let m = log_m.iter().map(|x| x.exp()).collect();
        Fit { th, log_m, rho, v, sd, ln_sd: sd.ln(), m }
    }
}

/// The filter's state: regime probabilities and each regime's `h`.
#[derive(Debug, Clone, Copy)]
struct State {
    alpha: [f64; 4],
    h: [f64; 4],
}

impl State {
    fn new() -> State {
        State { alpha: [0.25; 4], h: [1.0; 4] }
    }

    /// One bar: update the state, return the bar's log likelihood (up to a constant).
    fn step(&mut self, f: &Fit, o: &Obs, t: usize, stay: f64) -> f64 {
        let (v, sd, ln_sd) = (f.v, f.sd, f.ln_sd);
        let (mu, a, b) = (f.th[4], f.th[5], f.th[6]);
        let ns = o.ns;
        let switch = (1.0 - stay) / 3.0;
        let mut h_in = [1.0; 4];
        let mut prior = [0.0; 4];
        for j in 0..4 {
            let w = |i: usize| self.alpha[i] * if i == j { stay } else { switch };
            prior[j] = (0..4).map(w).sum::<f64>();
            h_in[j] = (0..4).map(|i| w(i) * self.h[i]).sum::<f64>() / prior[j].max(1e-300);
        }
        let xs = &o.lr[t * ns..(t + 1) * ns];
        let mut ll = [0.0; 4];
        for k in 0..4 {
            let mean = (v[k] * h_in[k].sqrt()).ln() + mu;
            ll[k] = xs.iter().zip(&f.log_m).map(|(x, lm)| -0.5 * ((x - lm - mean) / sd).powi(2) - ln_sd).sum();
        }
        let top = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let next: [f64; 4] = std::array::from_fn(|j| prior[j] * (ll[j] - top).exp());
        let s: f64 = next.iter().sum::<f64>().max(1e-300);
        self.alpha = next.map(|x| x / s);
        let c = o.ret[t * ns..(t + 1) * ns].iter().zip(&f.m).map(|(r, m)| r / m).sum::<f64>() / ns as f64;
        // One symbol: its whole shock stands for the factor's.
        let (rho, idio) = if ns > 1 { (f.rho, (1.0 - f.rho) / ns as f64) } else { (1.0, 0.0) };
        for k in 0..4 {
            let f2 = ((c * c / (v[k] * v[k] * h_in[k]) - idio) / rho).max(0.0);
            self.h[k] = (1.0 - a - b) + a * h_in[k] * f2 + b * h_in[k];
        }
        top + s.ln()
    }
}

/// Log likelihood of `th` on bars `lo..hi` (from a fresh state); -inf outside the bounds.
fn loglik(th: &[f64], base: &Fit, o: &Obs, lo: usize, hi: usize, stay: f64) -> f64 {
    let (a, b) = (th[5], th[6]);
    if !(a > 0.0 && b >= 0.0 && a + b < 0.999 && th.iter().all(|x| x.is_finite())) {
        return f64::NEG_INFINITY;
    }
    let f = Fit::new(th.to_vec(), base.log_m.clone(), base.rho);
    let mut st = State::new();
    (lo..hi).map(|t| st.step(&f, o, t, stay)).sum()
}

/// Mean pairwise correlation (about zero) of the `ns` symbols' returns `ret(t, j)` over bars
/// `lo..hi`, kept in [0.05, 1]; 1 for one symbol.
pub(super) fn mean_correlation(ns: usize, lo: usize, hi: usize, ret: impl Fn(usize, usize) -> f64) -> f64 {
    let mut corr = Vec::new();
    for i in 0..ns {
        for j in i + 1..ns {
            let (sxy, sxx, syy) =
                (lo..hi).fold((0.0, 0.0, 0.0), |(a, b, c), t| (a + ret(t, i) * ret(t, j), b + ret(t, i).powi(2), c + ret(t, j).powi(2)));
            corr.push(sxy / (sxx * syy).sqrt().max(1e-300));
        }
    }
    if corr.is_empty() {
        1.0
    } else {
        (corr.iter().sum::<f64>() / corr.len() as f64).clamp(0.05, 1.0)
    }
}

/// Fit on bars `lo..hi`, from `prev` when there is one, else from three starts.
fn fit(o: &Obs, lo: usize, hi: usize, stay: f64, prev: Option<&Fit>) -> Fit {
    let (ns, w) = (o.ns, hi - lo);
    let mean_lr: Vec<f64> = (0..ns).map(|j| (lo..hi).map(|t| o.lr[t * ns + j]).sum::<f64>() / w as f64).collect();
    let log_m: Vec<f64> = mean_lr.iter().map(|x| x - mean_lr[0]).collect();
    let rho = mean_correlation(ns, lo, hi, |t, j| o.ret[t * ns + j]);
    let base = Fit::new(Vec::new(), log_m, rho);
    let cost = |th: &[f64]| -loglik(th, &base, o, lo, hi, stay);
    let starts: Vec<Vec<f64>> = match prev {
        Some(p) => vec![p.th.clone()],
        None => {
            // Volatility levels from quantiles of the bars' mean log range (mu starts at 0).
            let mut m: Vec<f64> = (lo..hi).map(|t| (0..ns).map(|j| o.lr[t * ns + j] - base.log_m[j]).sum::<f64>() / ns as f64).collect();
            m.sort_by(f64::total_cmp);
            let q = |p: f64| m[((m.len() - 1) as f64 * p) as usize];
            [([0.1, 0.4, 0.6, 0.9], (0.05, 0.9)), ([0.15, 0.45, 0.65, 0.95], (0.1, 0.8)), ([0.05, 0.3, 0.5, 0.85], (0.03, 0.95))]
                .iter()
                .map(|(qs, ab)| vec![q(qs[0]), q(qs[1]), q(qs[2]), q(qs[3]), 0.0, ab.0, ab.1, 0.3f64.ln()])
                .collect()
        }
    };
    let rounds = if prev.is_some() { 1 } else { 2 };
    let best = best_minimum(&cost, starts.into_iter().map(|x| (x, rounds)).collect());
    Fit::new(best, base.log_m, base.rho)
}

/// The lowest of `cost`'s minima found by Nelder-Mead from each start, restarted `rounds` times.
pub(super) fn best_minimum(cost: &dyn Fn(&[f64]) -> f64, starts: Vec<(Vec<f64>, usize)>) -> Vec<f64> {
    starts
        .into_iter()
        .map(|(x0, rounds)| {
            let mut x = x0;
            for _ in 0..rounds {
                x = crate::numerics::nelder_mead(cost, x, 0.1, 300);
            }
            let c = cost(&x);
            (x, c)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("at least one start")
        .0
}

/// Regime names of the fit's states (by volatility level, low to high).
fn names(f: &Fit) -> [u8; 4] {
    names_by_level(&f.th[..4])
}

/// Regime names of four states by their volatility levels `lv`, low to high: `sideways`, `bull`,
/// `bear`, `high_vol`.
pub(super) fn names_by_level(lv: &[f64]) -> [u8; 4] {
    let mut order = [0usize, 1, 2, 3];
    order.sort_by(|x, y| lv[*x].total_cmp(&lv[*y]));
    let mut out = [SIDEWAYS; 4];
    for (rank, &k) in order.iter().enumerate() {
        out[k] = [SIDEWAYS, BULL, BEAR, HIGH_VOL][rank];
    }
    out
}

/// Labels for every bar of `md` (symbols `ids`); `before` gives the labels until the first fit.
pub fn detect(cfg: &RegimeConfig, md: &MarketData, ids: &[usize], season: &[f64], before: &[u8]) -> Vec<u8> {
    let o = Obs::new(md, ids, season);
    let n = md.len();
    let mut out = before.to_vec();
    let start = cfg.warmup_bars().max(100);
    if n <= start || ids.is_empty() {
        return out;
    }
    let every = cfg.refit_every.max(1);
    let stay = 1.0 - 1.0 / cfg.mean_bars.max(2.0);
    let mut cur: Option<Fit> = None;
    let mut st = State::new();
    let mut lab = [SIDEWAYS; 4];
    let mut next_fit = start;
    for (t, label) in out.iter_mut().enumerate() {
        if t == next_fit {
            let lo = t.saturating_sub(FIT_WINDOW);
            let f = fit(&o, lo, t, stay, cur.as_ref());
            if cur.is_none() {
                // Run the filter over the window so its state is current.
                for u in lo..t {
                    st.step(&f, &o, u, stay);
                }
            }
            lab = names(&f);
            cur = Some(f);
            next_fit = t + every.max(t / 40);
        }
        if let Some(f) = &cur {
            st.step(f, &o, t, stay);
            let best = (0..4).max_by(|i, j| st.alpha[*i].total_cmp(&st.alpha[*j])).unwrap_or(0);
            *label = lab[best];
        }
    }
    out
}
