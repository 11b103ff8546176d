//! Bayesian optimization: a Gaussian-process surrogate with a Matern 5/2 kernel (one length
//! scale per dimension), hyperparameters fitted by maximizing the log marginal likelihood, and
//! expected improvement maximized with argmin's Nelder-Mead from several starts. Inputs live in
//! the unit cube; outputs are standardized before fitting (without it the search stalls).
//! Proposals come `batch` at a time by the constant liar (each chosen point is added to the
//! surrogate with the worst observed value before the next is chosen) so the cores stay busy.

use super::{Sink, Study, Trial};
use crate::error::{Error, Result};
use crate::numerics::nelder_mead;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{Continuous, ContinuousCDF, Normal};

const SQRT5: f64 = 2.236_067_977_499_79;

/// A fitted Gaussian process.
#[derive(Debug, Clone)]
pub struct Gp {
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
    /// log length scales (d), log signal variance, log noise variance.
    theta: Vec<f64>,
    chol: Vec<f64>,
    alpha: Vec<f64>,
    kern: Kern,
}

/// The kernel's constants for one `theta`: inverse length scales and the signal variance
/// (computed once per fit, not once per pair of points: the same values, far fewer `exp`s).
#[derive(Debug, Clone)]
struct Kern {
    inv_ls: Vec<f64>,
    var: f64,
}

impl Kern {
    fn new(theta: &[f64], d: usize) -> Kern {
        Kern { inv_ls: theta[..d].iter().map(|t| (-t).exp()).collect(), var: theta[d].exp() }
    }

    fn eval(&self, a: &[f64], b: &[f64]) -> f64 {
        let mut r2 = 0.0;
        for i in 0..self.inv_ls.len() {
            let z = (a[i] - b[i]) * self.inv_ls[i];
            r2 += z * z;
        }
        let r = r2.sqrt();
        self.var * (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * (-SQRT5 * r).exp()
    }
}

/// Lower Cholesky factor of a row-major n x n matrix, or None if not positive definite.
fn cholesky(mut a: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= a[j * n + k] * a[j * n + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        let l = s.sqrt();
        a[j * n + j] = l;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / l;
        }
        for k in j + 1..n {
            a[j * n + k] = 0.0;
        }
    }
    Some(a)
}

fn solve_lower(l: &[f64], b: &mut [f64], n: usize) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

fn solve_upper_t(l: &[f64], b: &mut [f64], n: usize) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

impl Gp {
    /// Factor the kernel matrix for `theta`; None if it cannot be factored.
    fn with_theta(x: &[Vec<f64>], y: &[f64], theta: &[f64]) -> Option<Gp> {
        let n = x.len();
        let d = x[0].len();
        let noise = theta[d + 1].exp();
        let kern = Kern::new(theta, d);
        // Jitter grows until the factorization succeeds.
        for jitter in [1e-8, 1e-7, 1e-6] {
            let mut k = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let v = kern.eval(&x[i], &x[j]);
                    k[i * n + j] = v;
                    k[j * n + i] = v;
                }
                k[i * n + i] += noise + jitter;
            }
            if let Some(l) = cholesky(k, n) {
                let mut alpha = y.to_vec();
                solve_lower(&l, &mut alpha, n);
                solve_upper_t(&l, &mut alpha, n);
                return Some(Gp { x: x.to_vec(), y: y.to_vec(), theta: theta.to_vec(), chol: l, alpha, kern });
            }
        }
        None
    }

    /// Log marginal likelihood.
    fn lml(&self) -> f64 {
        let n = self.y.len();
        let fit: f64 = self.y.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let logdet: f64 = (0..n).map(|i| self.chol[i * n + i].ln()).sum();
        -0.5 * fit - logdet - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln()
    }

    /// Fit hyperparameters by maximizing the log marginal likelihood within box bounds:
    /// Nelder-Mead polishing `start` (the previous fit) briefly, and, when `full`, also a long
    /// run from a default start; the likelier fit wins.
    pub fn fit(x: &[Vec<f64>], y: &[f64], start: Option<&[f64]>, full: bool) -> Option<Gp> {
        let d = x[0].len();
        let default: Vec<f64> = (0..d).map(|_| (0.3f64).ln()).chain([0.0, (1e-4f64).ln()]).collect();
        let mut best: Option<Gp> = None;
        // The data change by a few points a round: polishing the last fit is enough most rounds;
        // a full fit from the default now and then keeps it from settling in a poor optimum.
        let mut starts: Vec<(Vec<f64>, f64, u64)> = Vec::new();
        if let Some(s) = start {
            starts.push((s.to_vec(), 0.2, 40));
        }
        if full || start.is_none() {
            starts.push((default, 0.5, 150));
        }
        for (s, step, iters) in starts {
            let theta = nelder_mead(&|t: &[f64]| neg_lml(x, y, t), s, step, iters);
            if let Some(gp) = Gp::with_theta(x, y, &theta) {
                if best.as_ref().is_none_or(|b| gp.lml() > b.lml()) {
                    best = Some(gp);
                }
            }
        }
        best
    }

    /// Posterior mean and standard deviation at `p`.
    pub fn predict(&self, p: &[f64]) -> (f64, f64) {
        let n = self.x.len();
        let kern = &self.kern;
        let mut k: Vec<f64> = self.x.iter().map(|xi| kern.eval(xi, p)).collect();
        let mu: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        solve_lower(&self.chol, &mut k, n);
        let d = p.len();
        let var = (self.theta[d].exp() - k.iter().map(|v| v * v).sum::<f64>()).max(1e-12);
        (mu, var.sqrt())
    }

    /// The same hyperparameters with one more (point, value).
    fn with_point(&self, p: Vec<f64>, v: f64) -> Option<Gp> {
        let mut x = self.x.clone();
        let mut y = self.y.clone();
        x.push(p);
        y.push(v);
        Gp::with_theta(&x, &y, &self.theta)
    }
}

fn neg_lml(x: &[Vec<f64>], y: &[f64], t: &[f64]) -> f64 {
    let d = x[0].len();
    // Box bounds as a steep penalty: length scales in [0.01, 20], signal variance in
    // [0.05, 20], noise in [1e-8, 0.5] (outputs are standardized).
    let mut pen = 0.0;
    let mut clamp = |v: f64, lo: f64, hi: f64| {
        let c = v.clamp(lo.ln(), hi.ln());
        pen += (v - c).powi(2) * 100.0;
        c
    };
    let tc: Vec<f64> = t
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if i < d {
                clamp(v, 0.01, 20.0)
            } else if i == d {
                clamp(v, 0.05, 20.0)
            } else {
                clamp(v, 1e-8, 0.5)
            }
        })
        .collect();
    match Gp::with_theta(x, y, &tc) {
        Some(gp) => -gp.lml() + pen,
        None => 1e10 + pen,
    }
}

fn expected_improvement(mu: f64, sd: f64, best: f64, norm: &Normal) -> f64 {
    if sd <= 1e-12 {
        return (mu - best).max(0.0);
    }
    let z = (mu - best) / sd;
    (mu - best) * norm.cdf(z) + sd * norm.pdf(z)
}

/// Propose `q` points maximizing expected improvement (over the best standardized value) by the
/// constant liar. `x` in the unit cube, `y` standardized, to be maximized.
fn propose(gp: &Gp, q: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let Ok(norm) = Normal::new(0.0, 1.0) else { return Vec::new() };
    let d = gp.x[0].len();
    let lie = gp.y.iter().copied().fold(f64::INFINITY, f64::min);
    let mut gp = gp.clone();
    let mut out = Vec::with_capacity(q);
    for _ in 0..q {
        let best = gp.y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let neg_ei = |p: &[f64]| -> f64 {
            let mut pen = 0.0;
            let c: Vec<f64> = p
                .iter()
                .map(|&v| {
                    let c = v.clamp(0.0, 1.0);
                    pen += (v - c).powi(2);
                    c
                })
                .collect();
            let (mu, sd) = gp.predict(&c);
            -expected_improvement(mu, sd, best, &norm) + pen * 10.0
        };
        // Screen random points and the best observations, then polish the best few.
        let mut starts: Vec<(f64, Vec<f64>)> =
            (0..256).map(|_| (0..d).map(|_| rng.gen::<f64>()).collect::<Vec<f64>>()).map(|p| (neg_ei(&p), p)).collect();
        let mut order: Vec<usize> = (0..gp.y.len()).collect();
        order.sort_by(|&a, &b| gp.y[b].total_cmp(&gp.y[a]));
        for &i in order.iter().take(3) {
            let p: Vec<f64> = gp.x[i].iter().map(|v| (v + 0.01 * (rng.gen::<f64>() - 0.5)).clamp(0.0, 1.0)).collect();
            starts.push((neg_ei(&p), p));
        }
        starts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut best_p = starts[0].1.clone();
        let mut best_v = starts[0].0;
        for (_, s) in starts.into_iter().take(5) {
            let p = nelder_mead(&neg_ei, s, 0.05, 100);
            let v = neg_ei(&p);
            if v < best_v {
                best_v = v;
                best_p = p;
            }
        }
        let p: Vec<f64> = best_p.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        out.push(p.clone());
        if let Some(g) = gp.with_point(p, lie) {
            gp = g;
        }
    }
    out
}

/// Bayesian search over `[0, 1]^d`: `initial` Latin-hypercube points, then rounds of `batch`
/// proposals until `budget` evaluations. `eval` scores a batch (to maximize).
pub fn bo_search(
    d: usize,
    budget: usize,
    initial: usize,
    batch: usize,
    seed: u64,
    eval: &mut dyn FnMut(Vec<Vec<f64>>) -> Result<Vec<f64>>,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB0B0_5EED);
    let init = initial.min(budget);
    let mut x = super::latin_hypercube(init, d, &mut rng);
    let mut y = eval(x.clone())?;
    let mut theta: Option<Vec<f64>> = None;
    let mut round = 0usize;
    while x.len() < budget {
        round += 1;
        // Penalized scores (infeasible candidates) sit just below the worst real one, so they
        // repel without flattening the surrogate.
        let real: Vec<f64> = y.iter().copied().filter(|v| *v > super::PENALTY / 10.0 && v.is_finite()).collect();
        let (lo, hi) = real.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let floor = if real.is_empty() { -1.0 } else { lo - 0.1 * (hi - lo).max(1e-9) };
        let yt: Vec<f64> = y.iter().map(|&v| if v > super::PENALTY / 10.0 && v.is_finite() { v } else { floor }).collect();
        let m = yt.iter().sum::<f64>() / yt.len() as f64;
        let sd = (yt.iter().map(|v| (v - m).powi(2)).sum::<f64>() / yt.len() as f64).sqrt().max(1e-12);
        let ys: Vec<f64> = yt.iter().map(|v| (v - m) / sd).collect();
        let q = batch.min(budget - x.len());
        let pts = match Gp::fit(&x, &ys, theta.as_deref(), round % 4 == 1) {
            Some(gp) => {
                theta = Some(gp.theta.clone());
                propose(&gp, q, &mut rng)
            }
            None => (0..q).map(|_| (0..d).map(|_| rng.gen::<f64>()).collect()).collect(),
        };
        let got = eval(pts.clone())?;
        x.extend(pts);
        y.extend(got);
    }
    Ok(())
}

pub(crate) fn run(study: &mut Study, sink: &mut Sink) -> Result<()> {
    let study: &Study = study;
    let c = &study.cfg;
    sink.progress.set_length(c.budget as u64);
    let mut eval = |pts: Vec<Vec<f64>>| -> Result<Vec<f64>> {
        let params = pts.iter().map(|p| study.space.decode(p)).collect();
        let got: Vec<Trial> = study.evaluate_batch(sink.len(), params);
        let scores = got.iter().map(|t| t.score).collect();
        sink.push(got)?;
        Ok(scores)
    };
    if c.budget < 2 {
        return Err(Error::Input("optimize.budget: Bayesian search needs at least 2 evaluations".into()));
    }
    bo_search(study.space.dims.len(), c.budget, c.initial, c.batch, study.le.exp.experiment.seed, &mut eval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        // [[4, 2], [2, 3]] = L L^T with L = [[2, 0], [1, sqrt 2]].
        let l = cholesky(vec![4.0, 2.0, 2.0, 3.0], 2).unwrap();
        assert!((l[0] - 2.0).abs() < 1e-15 && (l[2] - 1.0).abs() < 1e-15 && (l[3] - 2f64.sqrt()).abs() < 1e-15);
        let mut b = vec![2.0, 5.0]; // solve A x = b: x = [-0.5, 2]
        solve_lower(&l, &mut b, 2);
        solve_upper_t(&l, &mut b, 2);
        assert!((b[0] + 0.5).abs() < 1e-12 && (b[1] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn gp_interpolates_and_is_uncertain_away_from_data() {
        let x: Vec<Vec<f64>> = [0.0, 0.25, 0.5, 0.75, 1.0].iter().map(|v| vec![*v]).collect();
        let y: Vec<f64> = x.iter().map(|v| (6.0 * v[0]).sin()).collect();
        let gp = Gp::fit(&x, &y, None, true).unwrap();
        let (mu, sd) = gp.predict(&[0.5]);
        assert!((mu - 3f64.sin()).abs() < 0.05 && sd < 0.1);
        let (_, sd_far) = gp.predict(&[0.375]);
        assert!(sd_far > sd);
    }

    #[test]
    fn expected_improvement_by_formula() {
        let n = Normal::new(0.0, 1.0).unwrap();
        // mu = best: EI = sd * phi(0).
        assert!((expected_improvement(1.0, 2.0, 1.0, &n) - 2.0 * 0.398_942_280_401_432_7).abs() < 1e-12);
    }
}
