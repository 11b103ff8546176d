//! A 4-state hidden Markov model detector of the volatility axis with a GARCH-style variance
//! covariate, causal by construction.
//!
//! Why the covariate: a shared GARCH variance moves every bar's volatility up and down for tens
//! of bars at a time. Under GARCH(1,1), the variance expected in state k is a state constant plus
//! a decaying sum of past squared returns, `V[k,t] = c[k] + a * S[t]` with
//! `S[t] = sum_j (1-b) b^j r[t-1-j]^2`; the past shocks are known, so only `c[k]` is left to tell
//! the states apart, and a spike that the recent returns explain is not taken for a state change.
//!
//! Observation per bar: the log of the Parkinson variance (floored at 1% of its mean so far, so
//! zero-range bars are not outliers), around `ln(c[k] + a * S[t])` with one scale for all states
//! and a Student-t spread ([`NU`] degrees of freedom; a Gaussian one lets a fit spend a state on
//! market-wide jump bars); `b` = [`DECAY`]. Transitions are not fitted: every state stays with
//! probability `1 - 1/mean_bars` (learned transitions let one state collapse onto short runs of
//! quiet bars).
//!
//! Fitting: until `warmup` bars exist, the rules' states stand in. Then, every `refit_every` bars
//! (or a fortieth of the bars so far, when that is longer), `c`, `a` and the deviation are
//! refitted by EM on the most recent bars (at most [`FIT_WINDOW`]) *before* the refit bar, from
//! the previous fit and (the first eight fits, then every other one) from fresh starts
//! (volatility quantiles, `a` on a grid from 0, which matters where the market has little shared
//! GARCH variance); the best likelihood wins. The forward filter carries the state probabilities
//! bar by bar; a bar's state is its most probable one, with hysteresis ([`super::hold_states`]):
//! a new state replaces the held one only when its probability exceeds the held one's by more
//! than `switch_margin` (0.5).
//!
//! States are ranked by `c[k]`, low to high; the lowest is low volatility, the highest high
//! ([`super::Labels`] names bars from this axis and the trend). Measurements: `docs/regimes.md`.

#![allow(clippy::needless_range_loop)] // states index several parallel arrays

use super::{Features, BEAR, BULL, HIGH_VOL, SIDEWAYS};
use crate::experiment::RegimeConfig;

/// Most bars a fit looks at.
pub const FIT_WINDOW: usize = 20_000;
/// Decay `b` of the past squared returns in the covariate.
pub const DECAY: f64 = 0.85;
const K: usize = 4;
/// Degrees of freedom of the Student-t spread of the log variance around its expectation.
pub const NU: f64 = 5.0;
const EM_ITERS: usize = 20;

/// Model parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Transition probabilities `p[from][to]`.
    pub p: [[f64; K]; K],
    /// Regime variance constant per state.
    pub c: [f64; K],
    /// Weight of the past-shock covariate.
    pub a: f64,
    /// Scale of the Student-t spread of the log variance around its expectation.
    pub sd: f64,
}

/// Per bar: observed log variance and the covariate `S[t]` (from returns before t).
fn obs(f: &Features) -> Vec<(f64, f64)> {
    let (mut sum, mut s) = (0.0, f.var.first().copied().unwrap_or(0.0));
    let mut out = Vec::with_capacity(f.var.len());
    for t in 0..f.var.len() {
        sum += f.var[t];
        let floor = 0.01 * sum / (t + 1) as f64;
        out.push((f.var[t].max(floor).max(f64::MIN_POSITIVE).ln(), s));
        s = DECAY * s + (1.0 - DECAY) * f.ret[t] * f.ret[t];
    }
    out
}

/// Log densities per state (up to a constant) into `out`, and each `NU + z^2` (z the
/// standardized residual) into `den` for the M step's Student-t weights.
fn loglik(p: &Params, x: &(f64, f64), out: &mut [f64; K], den: &mut [f64; K]) {
    for k in 0..K {
        let z = (x.0 - (p.c[k] + p.a * x.1).ln()) / p.sd;
        out[k] = -0.5 * (NU + 1.0) * (z * z / NU).ln_1p();
        den[k] = NU + z * z;
    }
}

/// Likelihoods scaled by the largest (so the forward pass never underflows).
fn density(p: &Params, x: &(f64, f64), out: &mut [f64; K]) {
    loglik(p, x, out, &mut [0.0; K]);
    let m = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for v in out.iter_mut() {
        *v = (*v - m).exp();
    }
}

fn initial(x: &[(f64, f64)], a: f64, stay: f64) -> Params {
    let mut lv: Vec<f64> = x.iter().map(|o| o.0.exp()).collect();
    lv.sort_by(f64::total_cmp);
    let q = |p: f64| lv[((lv.len() - 1) as f64 * p) as usize];
    let mean_s = x.iter().map(|o| o.1).sum::<f64>() / x.len() as f64;
    let mut p = [[(1.0 - stay) / 3.0; K]; K];
    for (k, row) in p.iter_mut().enumerate() {
        row[k] = stay;
    }
    // What is left of each volatility quantile after the covariate's typical share.
    let c = [0.15, 0.45, 0.6, 0.9].map(|qq| (q(qq) - a * mean_s).max(0.05 * q(qq)));
    Params { p, c, a, sd: 0.7 }
}

/// EM from `p` on `x`; returns the fit and its log likelihood.
pub fn fit(x: &[(f64, f64)], mut p: Params) -> (Params, f64) {
    let n = x.len();
    if n < 50 {
        return (p, f64::NEG_INFINITY);
    }
    let mut alpha = vec![[0.0; K]; n];
    let mut b = vec![[0.0; K]; n];
    let mut gamma = vec![[0.0; K]; n];
    let mut uw = vec![[0.0; K]; n];
    let mut scale = vec![0.0; n];
    let mut ll = f64::NEG_INFINITY;
    for _ in 0..EM_ITERS {
        let mut logsum = 0.0;
        for t in 0..n {
            let mut l = [0.0; K];
            loglik(&p, &x[t], &mut l, &mut uw[t]);
            let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for k in 0..K {
                b[t][k] = (l[k] - m).exp();
            }
            logsum += m - p.sd.ln();
        }
        for t in 0..n {
            for j in 0..K {
                let prior = if t == 0 { 1.0 / K as f64 } else { (0..K).map(|i| alpha[t - 1][i] * p.p[i][j]).sum() };
                alpha[t][j] = prior * b[t][j];
            }
            scale[t] = alpha[t].iter().sum::<f64>().max(1e-300);
            for v in alpha[t].iter_mut() {
                *v /= scale[t];
            }
            logsum += scale[t].ln();
        }
        ll = logsum;
        let mut beta = [1.0; K];
        for t in (0..n).rev() {
            let norm: f64 = (0..K).map(|k| alpha[t][k] * beta[k]).sum::<f64>().max(1e-300);
            for k in 0..K {
                gamma[t][k] = alpha[t][k] * beta[k] / norm;
            }
            if t > 0 {
                let mut nb = [0.0; K];
                for i in 0..K {
                    nb[i] = (0..K).map(|j| p.p[i][j] * b[t][j] * beta[j]).sum::<f64>() / scale[t];
                }
                beta = nb;
            }
        }
        // Each bar's weight in the M step: its state probability times its Student-t weight
        // (nu + 1) / (nu + z^2), so an outlier counts less (EM for a t spread with nu fixed).
        // `uw` holds nu + z^2 from the E step until here.
        for t in 0..n {
            for k in 0..K {
                uw[t][k] = gamma[t][k] * (NU + 1.0) / uw[t][k];
            }
        }
        for k in 0..K {
            // c[k]: weighted least squares in log space, by Newton steps on ln c.
            let mut lc = p.c[k].max(1e-300).ln();
            for _ in 0..6 {
                let (mut g, mut h) = (0.0, 0.0);
                for t in 0..n {
                    let w = uw[t][k];
                    if w < 1e-6 {
                        continue;
                    }
                    let c = lc.exp();
                    let v = c + p.a * x[t].1;
                    let r = x[t].0 - v.ln();
                    let d = c / v; // d ln(v) / d ln(c)
                    g += w * r * d;
                    h += w * d * d;
                }
                if h <= 0.0 {
                    break;
                }
                lc += (g / h).clamp(-1.0, 1.0);
            }
            p.c[k] = lc.exp();
        }
        // a: one Newton step per EM round on the same weighted least squares, kept >= 0 (the
        // rounds iterate it; four steps a round cost a fifth more time for no better accuracy).
        let (mut g, mut h) = (0.0, 0.0);
        for t in 0..n {
            for k in 0..K {
                let w = uw[t][k];
                if w < 1e-6 {
                    continue;
                }
                let v = p.c[k] + p.a * x[t].1;
                let r = x[t].0 - v.ln();
                let d = x[t].1 / v;
                g += w * r * d;
                h += w * d * d;
            }
        }
        if h > 0.0 {
            p.a = (p.a + g / h).clamp(0.0, p.a + 0.5);
        }
        let mut sse = 0.0;
        for t in 0..n {
            for k in 0..K {
                let r = x[t].0 - (p.c[k] + p.a * x[t].1).ln();
                sse += uw[t][k] * r * r;
            }
        }
        p.sd = (sse / n as f64).sqrt().max(1e-3);
    }
    (p, ll)
}

/// Label of each state, by its variance constant: sideways, bull, bear, high_vol.
pub fn names(p: &Params) -> [u8; K] {
    let mut order: Vec<usize> = (0..K).collect();
    order.sort_by(|a, b| p.c[*a].total_cmp(&p.c[*b]));
    let mut out = [SIDEWAYS; K];
    for (rank, lab) in [SIDEWAYS, BULL, BEAR, HIGH_VOL].into_iter().enumerate() {
        out[order[rank]] = lab;
    }
    out
}

/// Labels from the HMM, with `before` (the rules' labels) until the first fit.
pub fn detect(cfg: &RegimeConfig, f: &Features, before: &[u8]) -> Vec<u8> {
    let x = obs(f);
    let n = x.len();
    let mut out = before.to_vec();
    let start = cfg.warmup_bars().max(100);
    if n <= start {
        return out;
    }
    let every = cfg.refit_every.max(1);
    let stay = 1.0 - 1.0 / cfg.mean_bars.max(2.0);
    let mut p: Option<Params> = None;
    let mut alpha = [1.0 / K as f64; K];
    let mut b = [0.0; K];
    let mut lab = [SIDEWAYS; K];
    let (mut next_fit, mut fits) = (start, 0usize);
    let mut held = None;
    for t in 0..n {
        if t == next_fit {
            let lo = t.saturating_sub(FIT_WINDOW);
            // Fresh starts over a grid of covariate weights, and the previous fit warm-started:
            // the best likelihood wins (a warm start alone keeps a bad early partition forever).
            // After the first eight fits, every other one tries the fresh starts again.
            let data = &x[lo..t];
            let mut starts: Vec<Params> = if fits < 8 || fits.is_multiple_of(2) || p.is_none() {
                [0.0, 0.1, 0.2, 0.3, 0.4].iter().map(|a| initial(data, *a, stay)).collect()
            } else {
                Vec::new()
            };
            starts.extend(p.clone());
            let fitted = starts.into_iter().map(|s0| fit(data, s0)).max_by(|a, b| a.1.total_cmp(&b.1)).expect("non-empty").0;
            fits += 1;
            // Refits grow apart with the data (a fortieth of the bars so far), so a long
            // series costs about forty fits per tenfold length, not one per `refit_every` bars
            // (1,000,000 one-minute bars: 40 s instead of 200 s when measured; 63 s now that fits
            // use a Student-t spread).
            next_fit = t + every.max(t / 40);
            if p.is_none() {
                // Run the filter over the past so its state is current.
                for xo in data {
                    step(&fitted, xo, &mut alpha, &mut b);
                }
            }
            lab = names(&fitted);
            p = Some(fitted);
        }
        if let Some(pp) = &p {
            step(pp, &x[t], &mut alpha, &mut b);
            out[t] = super::hold_states(&mut held, &alpha, &lab, cfg.switch_margin);
        }
    }
    out
}

fn step(p: &Params, x: &(f64, f64), alpha: &mut [f64; K], b: &mut [f64; K]) {
    density(p, x, b);
    let mut next = [0.0; K];
    for j in 0..K {
        next[j] = (0..K).map(|i| alpha[i] * p.p[i][j]).sum::<f64>() * b[j];
    }
    let s: f64 = next.iter().sum::<f64>().max(1e-300);
    for j in 0..K {
        alpha[j] = next[j] / s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn em_recovers_two_well_separated_variance_levels() {
        // Alternating blocks of 200 bars with variance 1e-5 or 8e-5 and no covariate (a = 0).
        let mut x = Vec::new();
        let mut s = 1u64;
        for blk in 0..20 {
            for _ in 0..200 {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                let v: f64 = if blk % 2 == 0 { 1e-5 } else { 8e-5 };
                x.push((v.ln() + 0.5 * u, 0.0));
            }
        }
        let (p, _) = fit(&x, initial(&x, 0.0, 0.995));
        let mut c = p.c.to_vec();
        c.sort_by(f64::total_cmp);
        // The extreme states sit on the two true levels (within 10%).
        assert!((c[0] / 1e-5 - 1.0).abs() < 0.1, "{c:?}");
        assert!((c[3] / 8e-5 - 1.0).abs() < 0.1, "{c:?}");
    }
}
