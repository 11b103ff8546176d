//! Sample efficiency of the Bayesian search against Optuna's samplers on the same test
//! functions (`make_optuna_refs.py`, `refs/optuna.csv`): Branin (2-D) and Hartmann-6 (6-D) on the
//! unit cube, the best value after n evaluations, median over seeds 0..9, as
//! `benches/sample_efficiency.rs` runs them (`benches/common/test_functions.rs`).

use super::table;
use tradelab::optimize::bayes::bo_search;

#[path = "../../benches/common/test_functions.rs"]
mod test_functions;
use test_functions::{branin, hartmann6};

/// Median over seeds 0..9 of the best value after `n` evaluations of tradelab's Bayesian search
/// (2d + 2 Latin-hypercube points first, then one proposal a round).
fn tradelab_median(f: fn(&[f64]) -> f64, d: usize, n: usize) -> f64 {
    let mut bests: Vec<f64> = (0..10)
        .map(|seed| {
            let mut best = f64::INFINITY;
            let _ = bo_search(d, n, 2 * d + 2, 1, seed, &mut |pts| {
                let v: Vec<f64> = pts.iter().map(|p| f(p)).collect();
                best = v.iter().copied().fold(best, f64::min);
                Ok(v.iter().map(|x| -x).collect())
            });
            best
        })
        .collect();
    bests.sort_by(f64::total_cmp);
    (bests[4] + bests[5]) / 2.0
}

#[test]
fn bayesian_search_is_at_least_as_sample_efficient_as_optuna_s_default_sampler() {
    let refs = table("optuna.csv");
    let optuna = |problem: &str, sampler: &str, n: usize| -> f64 {
        let r = refs.iter().find(|r| r["problem"] == problem && r["sampler"] == sampler && r["n"] == n.to_string()).expect("a reference");
        r["median_best"].parse().unwrap()
    };
    for (problem, f, d, n, optimum) in
        [("branin", branin as fn(&[f64]) -> f64, 2, 40, 0.397887), ("hartmann6", hartmann6 as fn(&[f64]) -> f64, 6, 60, -3.32237)]
    {
        let ours = tradelab_median(f, d, n);
        let (tpe, gp) = (optuna(problem, "tpe", n), optuna(problem, "gp", n));
        eprintln!("{problem} after {n}: tradelab {ours:.4}, Optuna TPE {tpe:.4}, Optuna GP {gp:.4} (optimum {optimum})");
        // Optuna's default (TPE) is the bar: tradelab's search must reach at least as low.
        assert!(ours <= tpe, "{problem} after {n}: tradelab {ours}, Optuna's TPE {tpe}");
        // And within 1% of the optimum's scale, where Optuna's GP sampler also is.
        assert!((ours - optimum).abs() <= 0.01 * optimum.abs(), "{problem} after {n}: {ours} against the optimum {optimum}");
    }
}
