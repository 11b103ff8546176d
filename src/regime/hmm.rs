//! A 4-state Gaussian hidden Markov model detector, causal by construction.
//!
//! Observations per bar: the log of the Parkinson variance (floored at 1% of its mean so far,
//! so zero-range bars are not outliers) and the log return, each Gaussian per state with a
//! diagonal covariance. Until `warmup` bars exist, labels are the rules detector's. Then, every
//! `refit_every` bars, the model is refitted by Baum-Welch (EM) on the most recent bars (at most
//! [`FIT_WINDOW`]) *before* the refit bar, warm-started from the previous fit (the first fit
//! starts from volatility quantiles with sticky transitions, 0.99 on the diagonal: a
//! default start finds states lasting a few bars), and the forward filter carries the state
//! probabilities bar by bar; a bar's label is its most probable state.
//!
//! States are named after every fit: the lowest mean volatility is `sideways`, the highest
//! `high_vol`, and of the other two the higher mean return is `bull`.

#![allow(clippy::needless_range_loop)] // states index several parallel arrays

use super::{Features, BEAR, BULL, HIGH_VOL, SIDEWAYS};
use crate::experiment::RegimeConfig;

/// Most bars a fit looks at.
pub const FIT_WINDOW: usize = 20_000;
const K: usize = 4;
const EM_ITERS: usize = 25;

/// Model parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Transition probabilities `a[from][to]`.
    pub a: [[f64; K]; K],
    /// Emission means per state (log variance, return).
    pub mean: [[f64; 2]; K],
    /// Emission variances per state.
    pub var: [[f64; 2]; K],
}

fn obs(f: &Features) -> Vec<[f64; 2]> {
    let mut sum = 0.0;
    f.var
        .iter()
        .zip(&f.ret)
        .enumerate()
        .map(|(t, (v, r))| {
            sum += v;
            let floor = 0.01 * sum / (t + 1) as f64;
            [(v.max(floor)).ln(), *r]
        })
        .collect()
}

fn density(p: &Params, x: &[f64; 2], out: &mut [f64; K]) {
    for k in 0..K {
        // Only the log variance is emitted: fat-tailed returns under a Gaussian would give a state
        // to the outliers. The return mean per state is still estimated, to name the states.
        let z = x[0] - p.mean[k][0];
        out[k] = -0.5 * (z * z / p.var[k][0] + p.var[k][0].ln());
    }
    // Scaled by the largest, so the forward pass never underflows.
    let m = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for v in out.iter_mut() {
        *v = (*v - m).exp();
    }
}

fn initial(x: &[[f64; 2]]) -> Params {
    let mut lv: Vec<f64> = x.iter().map(|o| o[0]).collect();
    lv.sort_by(f64::total_cmp);
    let q = |p: f64| lv[((lv.len() - 1) as f64 * p) as usize];
    let n = x.len() as f64;
    let (mr, vr) = {
        let m = x.iter().map(|o| o[1]).sum::<f64>() / n;
        (m, x.iter().map(|o| (o[1] - m).powi(2)).sum::<f64>() / n)
    };
    let mv = lv.iter().sum::<f64>() / n;
    let vv = lv.iter().map(|v| (v - mv).powi(2)).sum::<f64>() / n;
    let sd = vr.sqrt();
    let mut a = [[0.01 / 3.0; K]; K];
    for (k, row) in a.iter_mut().enumerate() {
        row[k] = 0.99;
    }
    // In label order: bull, bear, sideways, high_vol.
    let mean = [[q(0.45), mr + 0.02 * sd], [q(0.6), mr - 0.02 * sd], [q(0.15), mr], [q(0.9), mr]];
    Params { a, mean, var: [[vv / 4.0, vr]; K] }
}

/// Baum-Welch on `x` from `p`.
pub fn fit(x: &[[f64; 2]], mut p: Params) -> Params {
    let n = x.len();
    if n < 50 {
        return p;
    }
    let overall: [f64; 2] = {
        let m: Vec<f64> = (0..2).map(|d| x.iter().map(|o| o[d]).sum::<f64>() / n as f64).collect();
        [0, 1].map(|d| x.iter().map(|o| (o[d] - m[d]).powi(2)).sum::<f64>() / n as f64)
    };
    let mut alpha = vec![[0.0; K]; n];
    let mut b = vec![[0.0; K]; n];
    let mut c = vec![0.0; n];
    let mut beta = [1.0; K];
    for _ in 0..EM_ITERS {
        for t in 0..n {
            density(&p, &x[t], &mut b[t]);
        }
        // Forward, normalized per bar.
        for t in 0..n {
            for j in 0..K {
                let prior = if t == 0 { 1.0 / K as f64 } else { (0..K).map(|i| alpha[t - 1][i] * p.a[i][j]).sum() };
                alpha[t][j] = prior * b[t][j];
            }
            c[t] = alpha[t].iter().sum::<f64>().max(1e-300);
            for v in alpha[t].iter_mut() {
                *v /= c[t];
            }
        }
        // Backward with the same scaling, accumulating the statistics on the way.
        let mut trans = [[0.0; K]; K];
        let mut g_sum = [0.0; K];
        let mut m_sum = [[0.0; 2]; K];
        let mut s_sum = [[0.0; 2]; K];
        beta.fill(1.0);
        for t in (0..n).rev() {
            let mut gamma = [0.0; K];
            let norm: f64 = (0..K).map(|k| alpha[t][k] * beta[k]).sum::<f64>().max(1e-300);
            for k in 0..K {
                gamma[k] = alpha[t][k] * beta[k] / norm;
                g_sum[k] += gamma[k];
                for d in 0..2 {
                    m_sum[k][d] += gamma[k] * x[t][d];
                    s_sum[k][d] += gamma[k] * x[t][d] * x[t][d];
                }
            }
            if t > 0 {
                let mut z = 0.0;
                let mut xi = [[0.0; K]; K];
                for i in 0..K {
                    for j in 0..K {
                        xi[i][j] = alpha[t - 1][i] * p.a[i][j] * b[t][j] * beta[j];
                        z += xi[i][j];
                    }
                }
                for i in 0..K {
                    for j in 0..K {
                        trans[i][j] += xi[i][j] / z.max(1e-300);
                    }
                }
                let mut nb = [0.0; K];
                for i in 0..K {
                    nb[i] = (0..K).map(|j| p.a[i][j] * b[t][j] * beta[j]).sum::<f64>() / c[t];
                }
                beta = nb;
            }
        }
        for k in 0..K {
            let g = g_sum[k].max(1e-9);
            let row: f64 = trans[k].iter().sum::<f64>().max(1e-300);
            for j in 0..K {
                p.a[k][j] = (trans[k][j] / row).max(1e-6);
            }
            for d in 0..2 {
                let m = m_sum[k][d] / g;
                p.mean[k][d] = m;
                p.var[k][d] = (s_sum[k][d] / g - m * m).max(1e-4 * overall[d]);
            }
        }
    }
    p
}

/// Label of each state: sideways = lowest volatility, high_vol = highest, bull = the higher
/// mean return of the other two.
pub fn names(p: &Params) -> [u8; K] {
    let mut order: Vec<usize> = (0..K).collect();
    order.sort_by(|a, b| p.mean[*a][0].total_cmp(&p.mean[*b][0]));
    let mut out = [SIDEWAYS; K];
    out[order[0]] = SIDEWAYS;
    out[order[3]] = HIGH_VOL;
    let (m1, m2) = (order[1], order[2]);
    let (bull, bear) = if p.mean[m1][1] >= p.mean[m2][1] { (m1, m2) } else { (m2, m1) };
    out[bull] = BULL;
    out[bear] = BEAR;
    out
}

/// Labels from the HMM, with `before` (the rules' labels) until the first fit.
pub fn detect(cfg: &RegimeConfig, f: &Features, before: &[u8]) -> Vec<u8> {
    let x = obs(f);
    let n = x.len();
    let mut out = before.to_vec();
    let start = cfg.warmup.max(100);
    if n <= start {
        return out;
    }
    let every = cfg.refit_every.max(1);
    let mut p: Option<Params> = None;
    let mut alpha = [1.0 / K as f64; K];
    let mut b = [0.0; K];
    let mut lab = [SIDEWAYS; K];
    // Filter the warm-up bars too once the first model exists, so the state is warm.
    let mut t = 0;
    while t < n {
        if t >= start && (t - start).is_multiple_of(every) {
            let lo = t.saturating_sub(FIT_WINDOW);
            let init = p.clone().unwrap_or_else(|| initial(&x[lo..t]));
            let fitted = fit(&x[lo..t], init);
            if p.is_none() {
                // First model: run the filter over the past so its state is current.
                alpha = [1.0 / K as f64; K];
                for xo in &x[lo..t] {
                    step(&fitted, xo, &mut alpha, &mut b);
                }
            }
            lab = names(&fitted);
            p = Some(fitted);
        }
        if let Some(pp) = &p {
            step(pp, &x[t], &mut alpha, &mut b);
            let best = (0..K).max_by(|i, j| alpha[*i].total_cmp(&alpha[*j])).unwrap_or(0);
            out[t] = lab[best];
        }
        t += 1;
    }
    out
}

fn step(p: &Params, x: &[f64; 2], alpha: &mut [f64; K], b: &mut [f64; K]) {
    density(p, x, b);
    let mut next = [0.0; K];
    for j in 0..K {
        next[j] = (0..K).map(|i| alpha[i] * p.a[i][j]).sum::<f64>() * b[j];
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
    fn em_recovers_two_well_separated_volatility_states() {
        // Deterministic alternating blocks of 200 bars: log variance -10 or -8, return 0.
        let mut x = Vec::new();
        let mut s = 1u64;
        for blk in 0..20 {
            for _ in 0..200 {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                x.push([if blk % 2 == 0 { -10.0 } else { -8.0 } + 0.5 * u, 0.001 * u]);
            }
        }
        let p = fit(&x, initial(&x));
        let mut means: Vec<f64> = p.mean.iter().map(|m| m[0]).collect();
        means.sort_by(f64::total_cmp);
        // The extreme states sit on the two true levels.
        assert!((means[0] + 10.0).abs() < 0.1, "{means:?}");
        assert!((means[3] + 8.0).abs() < 0.1, "{means:?}");
    }
}
