//! Numerical routines shared by the optimizers and the regime detectors: a derivative-free
//! minimizer (argmin's Nelder-Mead) behind one small signature, and the weighting and
//! resampling steps of a particle filter over regimes.

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;

struct Cost<'a>(&'a dyn Fn(&[f64]) -> f64);

impl CostFunction for Cost<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Self::Param) -> std::result::Result<f64, argmin::core::Error> {
        Ok((self.0)(p))
    }
}

/// Minimize `f` with argmin's Nelder-Mead from `x0` (initial simplex: steps of `step` along
/// each axis); returns the best point (x0 when the solver fails).
pub fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, x0: Vec<f64>, step: f64, iters: u64) -> Vec<f64> {
    let mut simplex = vec![x0.clone()];
    for i in 0..x0.len() {
        let mut v = x0.clone();
        v[i] += step;
        simplex.push(v);
    }
    let Ok(solver) = NelderMead::new(simplex).with_sd_tolerance(1e-9) else { return x0 };
    match Executor::new(Cost(f), solver).configure(|s| s.max_iters(iters)).run() {
        Ok(r) => r.state().get_best_param().cloned().unwrap_or(x0),
        Err(_) => x0,
    }
}

/// Turn particles' log weights `w` into weights relative to the largest (in place); return their
/// total, the weight per regime (0..4, as in `reg`), and the log of the mean weight (the bar's log
/// likelihood given the bars before it).
pub fn weigh(w: &mut [f64], reg: &[u8]) -> (f64, [f64; 4], f64) {
    let top = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut tot, mut by) = (0.0, [0.0; 4]);
    for (wp, r) in w.iter_mut().zip(reg) {
        *wp = (*wp - top).exp();
        tot += *wp;
        by[*r as usize] += *wp;
    }
    (tot, by, top + (tot / w.len() as f64).ln())
}

/// Systematic resampling of particles `from` (regime, `h`) with weights `w` summing to `tot`
/// into `to`, from one uniform draw `u0` in [0, 1): particle j is copied about `w[j]/tot` times
/// the count, with the least variance of any unbiased scheme that takes one draw.
pub fn systematic_resample(w: &[f64], tot: f64, u0: f64, from: (&[u8], &[f64]), to: (&mut [u8], &mut [f64])) {
    let n = w.len();
    let step = tot / n as f64;
    let mut u = u0 * step;
    let (mut c, mut j) = (w[0], 0usize);
    for p in 0..n {
        while u > c && j + 1 < n {
            j += 1;
            c += w[j];
        }
        to.0[p] = from.0[j];
        to.1[p] = from.1[j];
        u += step;
    }
}
