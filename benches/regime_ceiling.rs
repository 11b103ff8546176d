//! How accurate could a regime detector be on `tradelab data synth` markets? The balanced
//! accuracy of the HMM and MS-GARCH detectors against that of *oracle* filters that are given
//! what no detector has: the generator's true volatilities per regime, its symbols' volatility
//! multipliers, its switching probability, GARCH parameters and correlation. They read each
//! bar's high-low ranges (Gaussian-driven, the most informative part of a bar: `ln(range)` is
//! `ln(bar sd)` plus a spread calibrated on the same market with the true labels, see
//! [`spread`]) and forward-filter the regimes with the true transition matrix, labelling each
//! bar from bars up to it only. They ignore the close-to-close returns' size (fat-tailed, and
//! their drift is tiny next to hourly noise), so none is the exact Bayes bound.
//! - "oracle" is also told the shared GARCH variance `h` of every bar: worth far more than
//!   anything it leaves out, so what it cannot reach a causal detector is unlikely to.
//! - "oracle, h est." follows `h` from the returns as a Markov-switching GARCH filter would (see
//!   [`oracle`]); the `ms_garch` detector is that filter with nothing from the generator but the
//!   model's form.
//! - A particle filter over (regime, `h`) with the true parameters and no collapse of `h` across
//!   regimes ([`oracle_pf`]): the nearest to the Bayes filter here.
//!
//! Printed: the default market over regime lengths; the same without the shared GARCH variance
//! (`--garch 0,0`), where volatility level alone tells the regimes apart; the particle filter on
//! the default market; and 200-bar regimes as the GARCH's persistence `alpha + beta` grows,
//! which is what takes the ceiling down.
//! Run: cargo bench --bench regime_ceiling

use tradelab::data::synth::{SynthConfig, SynthMarket};
use tradelab::experiment::{Detector, RegimeConfig};
use tradelab::regime::{accuracy, evaluate_synth};

const BARS: usize = 17_520;
const SEEDS: u64 = 10;
/// Particles of [`oracle_pf`] (with a Gaussian spread 500 / 5,000 / 20,000 gave 77.6 / 76.9 /
/// 77.3% at 200 bars).
const PARTICLES: usize = 5_000;

/// Log density (up to a constant) of a standardized log-range residual: Student-t with 5 degrees
/// of freedom, as the HMM's spread. A Gaussian here cost the particle filter 5-8 points (76.9%
/// instead of 82.5% at 200 bars): jump bars and the odd tiny range are far out in its tails, and
/// each particle's `h` is only an estimate.
fn spread(z: f64) -> f64 {
    -3.0 * (z * z / 5.0).ln_1p()
}

/// Mean and spread over every bar and symbol of `resid(t, i)`, ln(range) - ln(bar sd) under the
/// true regime and `h`: the oracles' Gaussian log-range model, calibrated with the truth.
fn range_model(m: &SynthMarket, ns: usize, resid: impl Fn(usize, usize) -> f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..m.regimes.len()).flat_map(|t| (0..ns).map(move |i| (t, i))).map(|(t, i)| resid(t, i)).collect();
    let mu = xs.iter().sum::<f64>() / xs.len() as f64;
    (mu, (xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / xs.len() as f64).sqrt())
}

/// Balanced accuracy of the oracle filter on one market. With `track_h` the oracle is not given
/// `h`: it follows it with the generator's own recursion, `h' = (1-a-b) + a*h*f^2 + b*h`, one
/// `h` per regime (what it would be had that regime held this bar, its factor shock `f` read
/// from the bar's mean multiplier-scaled return at that regime's volatility), mixed through the
/// transition probabilities at every bar (Gray's collapse of a Markov-switching GARCH). Still
/// with the true `a`, `b`, correlation, volatilities and switching rate.
fn oracle(sc: &SynthConfig, track_h: bool) -> f64 {
    let m = sc.generate().expect("valid defaults");
    let mean_bars = sc.mean_regime_bars;
    let per_year = sc.timeframe.bars_per_year();
    let ns = sc.symbols.len();
    // ln(range) - ln(bar sd) in regime k with variance h.
    let resid_h = |t: usize, i: usize, k: usize, h: f64| {
        let b = &m.series[i].bars;
        let sd = sc.vol[k] * sc.symbols[i].vol_mult * (h / per_year).sqrt();
        (b.high[t] / b.low[t]).ln().max(1e-12).ln() - sd.ln()
    };
    let (mu, sd) = range_model(&m, ns, |t, i| resid_h(t, i, m.regimes[t] as usize, m.variance[t]));
    let (stay, switch) = (1.0 - 1.0 / mean_bars, 1.0 / (3.0 * mean_bars));
    let mut alpha = [0.25; 4];
    let mut pred = Vec::with_capacity(BARS);
    let (a, b) = sc.garch;
    let rho = sc.correlation;
    let mut h_k = [1.0f64; 4];
    for t in 0..BARS {
        // Each regime's own h (what h would be had that regime held), mixed through the
        // transition probabilities into the regime it moves to (Gray's collapse).
        let mut h_in = [m.variance[t]; 4];
        if track_h {
            for (j, hj) in h_in.iter_mut().enumerate() {
                let w: Vec<f64> = (0..4).map(|i| alpha[i] * if i == j { stay } else { switch }).collect();
                *hj = (0..4).map(|i| w[i] * h_k[i]).sum::<f64>() / w.iter().sum::<f64>();
            }
        }
        let mut ll = [0.0; 4];
        for (k, l) in ll.iter_mut().enumerate() {
            *l = (0..ns).map(|i| spread((resid_h(t, i, k, h_in[k]) - mu) / sd)).sum();
        }
        let top = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut next = [0.0; 4];
        for j in 0..4 {
            let prior: f64 = (0..4).map(|i| alpha[i] * if i == j { stay } else { switch }).sum();
            next[j] = prior * (ll[j] - top).exp();
        }
        let s: f64 = next.iter().sum();
        alpha = next.map(|x| x / s);
        if track_h {
            // Mean of the symbols' returns in units of their multipliers: vol*sqrt(h/N) times
            // sqrt(rho)*f + sqrt(1-rho)*mean(e), mean(e) with variance 1/ns.
            let c = if t == 0 {
                0.0
            } else {
                (0..ns).map(|i| (m.series[i].bars.close[t] / m.series[i].bars.close[t - 1]).ln() / sc.symbols[i].vol_mult).sum::<f64>()
                    / ns as f64
            };
            for k in 0..4 {
                let h = h_in[k];
                let f2 = ((c * c * per_year / (sc.vol[k] * sc.vol[k] * h) - (1.0 - rho) / ns as f64) / rho).max(0.0);
                h_k[k] = (1.0 - a - b) + a * h * f2 + b * h;
            }
        }
        pred.push((0..4).max_by(|a, b| alpha[*a].total_cmp(&alpha[*b])).unwrap_or(0) as u8);
    }
    accuracy(&m.regimes, &pred).balanced
}

/// The default market with `mean_bars` regimes, `seed` and the shared GARCH `garch`.
fn market(mean_bars: f64, seed: u64, garch: (f64, f64)) -> SynthConfig {
    SynthConfig { seed, bars: BARS, mean_regime_bars: mean_bars, garch, ..Default::default() }
}

/// Means over the seeds of: HMM, HMM after warm-up, MS-GARCH, MS-GARCH after warm-up, oracle
/// told h, oracle tracking h (percent).
fn row(mean_bars: f64, garch: (f64, f64)) -> Vec<f64> {
    use rayon::prelude::*;
    let hmm = RegimeConfig::default();
    let msg = RegimeConfig { detector: Detector::MsGarch, ..Default::default() };
    let per_seed: Vec<[f64; 6]> = (1..=SEEDS)
        .into_par_iter()
        .map(|seed| {
            let sc = market(mean_bars, seed, garch);
            let h = evaluate_synth(&hmm, &sc).expect("valid defaults");
            let g = evaluate_synth(&msg, &sc).expect("valid defaults");
            [h.all.balanced, h.after_warmup.balanced, g.all.balanced, g.after_warmup.balanced, oracle(&sc, false), oracle(&sc, true)]
        })
        .collect();
    (0..6).map(|c| 100.0 * per_seed.iter().map(|r| r[c]).sum::<f64>() / SEEDS as f64).collect()
}

/// Balanced accuracy of a particle filter over (regime, `h`) with the generator's true
/// parameters: the Bayes forward filter itself as the particles grow, with no collapse of `h`
/// across regimes. Each particle moves regime as the generator does; its weight is the bars'
/// ranges' likelihood (the oracles' log-range model, [`spread`]); after resampling its `h` steps on
/// with the factor shock `f` drawn from its posterior given the bar's returns (Gaussian
/// idiosyncratic shocks, the true correlation). A bar's label is the regime with the most weight.
fn oracle_pf(sc: &SynthConfig, particles: usize) -> f64 {
    use rand::{Rng, SeedableRng};
    let m = sc.generate().expect("valid defaults");
    let mean_bars = sc.mean_regime_bars;
    let per_year = sc.timeframe.bars_per_year();
    let ns = sc.symbols.len();
    let lr = |t: usize, i: usize| {
        let b = &m.series[i].bars;
        (b.high[t] / b.low[t]).ln().max(1e-12).ln() - (sc.symbols[i].vol_mult / per_year.sqrt()).ln()
    };
    let (mu, sd) = range_model(&m, ns, |t, i| lr(t, i) - (sc.vol[m.regimes[t] as usize] * m.variance[t].sqrt()).ln());
    let (a, b) = sc.garch;
    let rho = sc.correlation;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sc.seed ^ 0xF1);
    let mut reg: Vec<u8> = (0..particles).map(|i| (i % 4) as u8).collect();
    let mut h: Vec<f64> = vec![1.0; particles];
    let mut w = vec![0.0f64; particles];
    let (mut reg2, mut h2) = (reg.clone(), h.clone());
    let lv: [f64; 4] = std::array::from_fn(|k| sc.vol[k].ln());
    let prec = 1.0 + ns as f64 * rho / (1.0 - rho);
    let mut pred = Vec::with_capacity(BARS);
    let normal = |rng: &mut rand_chacha::ChaCha8Rng| {
        let (u1, u2): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen::<f64>());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    for t in 0..BARS {
        // Regimes move as the generator's do.
        for r in reg.iter_mut() {
            if rng.gen::<f64>() < 1.0 / mean_bars {
                *r = ((*r as usize + 1 + rng.gen_range(0..3)) % 4) as u8;
            }
        }
        // Weights from the ranges.
        let y: Vec<f64> = (0..ns).map(|i| lr(t, i)).collect();
        for p in 0..particles {
            let mean = lv[reg[p] as usize] + 0.5 * h[p].ln() + mu;
            w[p] = y.iter().map(|yi| spread((yi - mean) / sd)).sum();
        }
        let top = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut tot = 0.0;
        let mut by = [0.0; 4];
        for p in 0..particles {
            w[p] = (w[p] - top).exp();
            tot += w[p];
            by[reg[p] as usize] += w[p];
        }
        pred.push((0..4).max_by(|x, y| by[*x].total_cmp(&by[*y])).unwrap_or(0) as u8);
        // Systematic resampling.
        let step = tot / particles as f64;
        let mut u = rng.gen::<f64>() * step;
        let (mut c, mut j) = (w[0], 0usize);
        for p in 0..particles {
            while u > c && j + 1 < particles {
                j += 1;
                c += w[j];
            }
            reg2[p] = reg[j];
            h2[p] = h[j];
            u += step;
        }
        std::mem::swap(&mut reg, &mut reg2);
        std::mem::swap(&mut h, &mut h2);
        // h steps on, with f drawn given this bar's returns (sum of scaled returns over the
        // particle's bar sd: sqrt(rho)*f*n plus idiosyncratic noise).
        if t > 0 {
            let zs: Vec<f64> = (0..ns)
                .map(|i| (m.series[i].bars.close[t] / m.series[i].bars.close[t - 1]).ln() / sc.symbols[i].vol_mult * per_year.sqrt())
                .collect();
            let zsum: f64 = zs.iter().sum();
            for p in 0..particles {
                let k = reg[p] as usize;
                let s = zsum / (sc.vol[k] * h[p].sqrt());
                let fm = rho.sqrt() / (1.0 - rho) * s / prec;
                let f = fm + normal(&mut rng) / prec.sqrt();
                h[p] = (1.0 - a - b) + a * h[p] * f * f + b * h[p];
            }
        } else {
            for hp in h.iter_mut() {
                *hp = (1.0 - a - b) + a * *hp * normal(&mut rng).powi(2) + b * *hp;
            }
        }
    }
    accuracy(&m.regimes, &pred).balanced
}

fn main() {
    let default = SynthConfig::default().garch;
    println!("balanced accuracy, mean of {SEEDS} seeds, {BARS} hourly bars (\"after\": bars after the 2,000-bar warm-up)");
    let head = |first: &str| {
        println!("{first:>12} {:>8} {:>10} {:>10} {:>10} {:>8} {:>15}", "HMM", "after", "MS-GARCH", "after", "oracle", "oracle, h est.")
    };
    let print = |label: String, m: &[f64]| {
        println!("{label:>12} {:>7.1}% {:>9.1}% {:>9.1}% {:>9.1}% {:>7.1}% {:>14.1}%", m[0], m[1], m[2], m[3], m[4], m[5])
    };
    for (title, garch) in [("default market (GARCH 0.05, 0.93)", default), ("without the shared GARCH (--garch 0,0)", (0.0, 0.0))] {
        println!("\n{title}");
        head("regime bars");
        for mean_bars in [25.0, 50.0, 100.0, 200.0, 300.0, 500.0] {
            print(format!("{mean_bars}"), &row(mean_bars, garch));
        }
    }
    println!("\nparticle filter over (regime, h), true parameters, no collapse, default market");
    for mean_bars in [200.0, 500.0] {
        use rayon::prelude::*;
        let pf: f64 = (1..=SEEDS).into_par_iter().map(|seed| oracle_pf(&market(mean_bars, seed, default), PARTICLES)).sum::<f64>();
        println!("{mean_bars:>12} {:>7.1}%  ({PARTICLES} particles)", 100.0 * pf / SEEDS as f64);
    }
    println!("\n200-bar regimes, GARCH alpha = 0.05, by persistence alpha + beta");
    head("persistence");
    for beta in [0.0, 0.75, 0.85, 0.9, 0.93] {
        print(format!("{:.2}", 0.05 + beta), &row(200.0, (0.05, beta)));
    }
}
