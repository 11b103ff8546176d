//! Sample efficiency of the optimizers on standard test functions: the best value found after
//! 20/30/40/60/100 evaluations, median over 10 seeds, for random (Latin hypercube), genetic and
//! Bayesian search; and the time per Bayesian proposal at 60 observations in 6 dimensions.
//! Run: cargo bench --bench sample_efficiency

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use tradelab::optimize::{bayes::bo_search, genetic::ga_search, genetic::GaSettings, latin_hypercube};

fn branin(u: &[f64]) -> f64 {
    let (x1, x2) = (-5.0 + 15.0 * u[0], 15.0 * u[1]);
    let pi = std::f64::consts::PI;
    (x2 - 5.1 / (4.0 * pi * pi) * x1 * x1 + 5.0 / pi * x1 - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * pi)) * x1.cos() + 10.0
}

fn hartmann6(x: &[f64]) -> f64 {
    let a = [1.0, 1.2, 3.0, 3.2];
    let aa = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    let p = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ];
    -(0..4).map(|i| a[i] * (-(0..6).map(|j| aa[i][j] * (x[j] - p[i][j]).powi(2)).sum::<f64>()).exp()).sum::<f64>()
}

/// Values of f in evaluation order for one method and seed.
fn trace(method: &str, f: fn(&[f64]) -> f64, d: usize, budget: usize, seed: u64) -> Vec<f64> {
    let mut vals = Vec::new();
    match method {
        "random" => {
            let pts = latin_hypercube(budget, d, &mut ChaCha8Rng::seed_from_u64(seed));
            vals = pts.iter().map(|p| f(p)).collect();
        }
        "genetic" => {
            let s = GaSettings { population: 20, tournament: 3, mutation_rate: 0.3, elitism: 2 };
            let eval = |g: &[f64]| (-f(g), f(g));
            let _ = ga_search(d, budget, s, seed, &eval, &mut |fresh| {
                vals.extend(fresh.into_iter().map(|(_, v)| v));
                Ok(())
            });
        }
        _ => {
            let _ = bo_search(d, budget, 2 * d + 2, 1, seed, &mut |pts| {
                let v: Vec<f64> = pts.iter().map(|p| f(p)).collect();
                vals.extend(v.iter().copied());
                Ok(v.iter().map(|x| -x).collect())
            });
        }
    }
    vals.truncate(budget);
    vals
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let checkpoints = [20, 30, 40, 60, 100];
    for (name, f, d) in [("branin (optimum 0.397887)", branin as fn(&[f64]) -> f64, 2), ("hartmann6 (optimum -3.32237)", hartmann6, 6)] {
        println!("{name}: median over 10 seeds of the best value after n evaluations");
        println!("{:<10}{}", "method", checkpoints.iter().map(|c| format!("{c:>10}")).collect::<String>());
        for method in ["random", "genetic", "bayesian"] {
            let start = Instant::now();
            let traces: Vec<Vec<f64>> = (0..10).map(|s| trace(method, f, d, 100, s)).collect();
            let row: String = checkpoints
                .iter()
                .map(|&c| {
                    let bests: Vec<f64> =
                        traces.iter().map(|t| t[..c.min(t.len())].iter().copied().fold(f64::INFINITY, f64::min)).collect();
                    format!("{:>10.4}", median(bests))
                })
                .collect();
            println!("{method:<10}{row}   ({:.1} s)", start.elapsed().as_secs_f64());
        }
    }
    // Time per proposal at 60 observations in 6 dimensions (one core): 59 initial points, a
    // first (cold) proposal, then the one timed here, warm-started as every later round is.
    let mut times = Vec::new();
    let _ = bo_search(6, 61, 59, 1, 3, &mut |pts| {
        times.push(Instant::now());
        Ok(pts.iter().map(|p| -hartmann6(p)).collect())
    });
    if times.len() == 3 {
        println!("cold proposal at 59 observations: {:.1} ms", (times[1] - times[0]).as_secs_f64() * 1e3);
        println!("proposal (GP refit + EI search) at 60 observations in 6-D: {:.1} ms", (times[2] - times[1]).as_secs_f64() * 1e3);
    }
}
