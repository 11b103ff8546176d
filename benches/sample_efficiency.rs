//! Sample efficiency of the optimizers on standard test functions: the best value found after
//! 20/30/40/60/100 evaluations, median over 10 seeds, for random (Latin hypercube), genetic and
//! Bayesian search; and the time per Bayesian proposal at 60 observations in 6 dimensions.
//! Run: cargo bench --bench sample_efficiency

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use tradelab::optimize::{bayes::bo_search, genetic::ga_search, genetic::GaSettings, latin_hypercube};

#[path = "common/test_functions.rs"]
mod test_functions;
use test_functions::{branin, hartmann6};

/// An objective on the unit cube, minimized.
type Objective<'a> = &'a (dyn Fn(&[f64]) -> f64 + Sync);

/// Values of f in evaluation order for one method and seed.
fn trace(method: &str, f: Objective, d: usize, budget: usize, seed: u64) -> Vec<f64> {
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

/// The backtest objective: minus the Sharpe ratio of the quickstart experiment's strategy (an SMA
/// cross with a stop) on real bars, Binance BTCUSDT hours 2017-08 to 2022-10 from
/// `../shared/data`, with its fast SMA (2..=50), slow SMA (fast + 1 .. fast + 150) and stop loss
/// (1%..20%) from the unit cube.
struct Backtest {
    le: tradelab::experiment::LoadedExperiment,
    md: std::sync::Arc<tradelab::data::MarketData>,
    cache: std::sync::Arc<tradelab::signals::IndicatorCache>,
}

impl Backtest {
    fn new() -> Backtest {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let le = tradelab::experiment::Experiment::load(&root.join("experiments/quickstart.toml")).expect("quickstart loads");
        let file = root.join("../shared/data/binance_usdt_1h/BTCUSDT.csv");
        let (md, _) = tradelab::data::load(std::slice::from_ref(&file), &Default::default())
            .unwrap_or_else(|e| panic!("{}: {e} (the bench reads real bars from ../shared/data)", file.display()));
        Backtest { le, md: std::sync::Arc::new(md), cache: Default::default() }
    }

    fn params(u: &[f64]) -> (usize, usize, f64) {
        let fast = 2 + (u[0] * 48.0).round() as usize;
        (fast, fast + 1 + (u[1] * 149.0).round() as usize, 0.01 + 0.19 * u[2])
    }

    fn eval(&self, u: &[f64]) -> f64 {
        let (fast, slow, stop) = Backtest::params(u);
        let mut le = self.le.clone();
        le.exp.signals.technical[0].fast = Some(fast);
        le.exp.signals.technical[0].slow = Some(slow);
        le.exp.risk.stop_loss = Some(stop);
        let prep = tradelab::engine::prepare(&le, self.md.clone(), &self.cache).expect("valid candidate");
        let s = tradelab::engine::summarize(&prep, &tradelab::engine::backtest_stats(&le.exp, &prep));
        if s.sharpe.is_finite() {
            -s.sharpe
        } else {
            0.0
        }
    }
}

fn main() {
    let checkpoints = [20, 30, 40, 60, 100];
    let bt = Backtest::new();
    // A reference for the backtest: the best of a grid over every fast and slow SMA (a step of 2
    // in the slow offset) and 20 stop levels.
    let grid: Vec<[f64; 3]> = (0..=48)
        .flat_map(|i| (0..=74).flat_map(move |j| (0..20).map(move |k| [i as f64 / 48.0, (2 * j) as f64 / 149.0, k as f64 / 19.0])))
        .collect();
    let grid_best = {
        use rayon::prelude::*;
        grid.par_iter().map(|u| bt.eval(u)).reduce(|| f64::INFINITY, f64::min)
    };
    let backtest = |u: &[f64]| bt.eval(u);
    let problems: [(String, Objective, usize); 3] = [
        ("branin (optimum 0.397887)".into(), &branin, 2),
        ("hartmann6 (optimum -3.32237)".into(), &hartmann6, 6),
        (format!("backtest: minus the Sharpe ratio, 3-D (best of a 73,500-point grid {grid_best:.4})"), &backtest, 3),
    ];
    for (name, f, d) in problems {
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
    // first (cold) proposal, then eight more timed here, warm-started as every later round is
    // (one round in four also refits the GP from scratch, so the mean over eight is the cost).
    let mut times = Vec::new();
    let _ = bo_search(6, 68, 59, 1, 3, &mut |pts| {
        times.push(Instant::now());
        Ok(pts.iter().map(|p| -hartmann6(p)).collect())
    });
    if times.len() == 10 {
        let ms: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1e3).collect();
        println!("cold proposal at 59 observations: {:.1} ms", ms[0]);
        let warm = &ms[1..];
        println!(
            "proposals (GP fit + EI search) at 60-67 observations in 6-D: mean {:.1} ms, max {:.1} ms",
            warm.iter().sum::<f64>() / warm.len() as f64,
            warm.iter().copied().fold(0.0, f64::max)
        );
    }
}
