//! Numerical routines shared by the optimizers and the regime detectors: a derivative-free
//! minimizer (argmin's Nelder-Mead) behind one small signature.

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
