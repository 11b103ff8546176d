//! How accurate could a regime detector be on `tradelab data synth` markets? The balanced
//! accuracy of the rules and MS-GARCH detectors (the HMM's columns, before it was removed from
//! the product, are in docs/regimes.md) against that of *oracle* filters that are given
//! what no detector has: the generator's true volatilities per regime, its symbols' volatility
//! multipliers, its switching probability, GARCH parameters and correlation. All forward-filter
//! the regimes with the true switching rate, labelling each bar from bars up to it only.
//! - "oracle" is told the shared GARCH variance `h` of every bar and reads each bar's log range
//!   (`ln(range)` is `ln(bar sd)` plus a Student-t spread calibrated with the truth, [`spread`]).
//! - "oracle, h est." follows `h` from the returns as a Markov-switching GARCH filter would (see
//!   [`oracle`]); the `ms_garch` detector is that filter with nothing from the generator but the
//!   model's form.
//! - [`oracle_pf`]: a particle filter over (regime, `h`) on the same log ranges, with no collapse
//!   of `h` across regimes.
//! - [`oracle_bayes`]: a particle filter with every bar's *exact* likelihood: the returns (their
//!   fat-tailed factor and own shocks, drift and jumps) and each range *given its return*
//!   ([`RangeLaw`], the `pf` detector's: the law of a Brownian bridge pinned at the return).
//!   This is the nearest to the Bayes filter here, and it shows where the information is: the
//!   fat-tailed open-to-close move blurs a range read alone, while the path inside the bar given
//!   its end is Gaussian. Rows
//!   take out the exact-body events (ranges equal to the body, an artifact of a coarse intrabar
//!   path), the ranges, the coarse path itself (200 intrabar steps), the true parameters or just
//!   the drift. The `pf` detector is this filter with fitted parameters.
//! - [`oracle_gray_obs`]: the "h est." filter reading each bar exactly, or by its log
//!   Rogers-Satchell variance, or by its log range.
//!
//! Printed: the default market over regime lengths and the same without the shared GARCH variance
//! (`--garch 0,0`), where volatility level alone tells the regimes apart (section `table`); the
//! log-range particle filter (`pf`); the exact-likelihood particle filter (`bayes`); the "h est."
//! filter by how it reads a bar (`gray`); and 200-bar regimes as the GARCH's persistence
//! `alpha + beta` grows (`persistence`).
//! Run: cargo run --release -p tradelab-research --bin regime_ceiling [-- SECTION...]

use tradelab::experiment::{Detector, RegimeConfig};
use tradelab::regime::accuracy;
use tradelab::regime::pf::RangeLaw;
use tradelab::synth::evaluate_detector as evaluate_synth;
use tradelab::synth::{SynthConfig, SynthMarket};

const BARS: usize = 17_520;
const SEEDS: u64 = 10;
/// Particles of [`oracle_pf`] (with a Gaussian spread 500 / 5,000 / 20,000 gave 77.6 / 76.9 /
/// 77.3% at 200 bars).
const PARTICLES: usize = 5_000;
/// Intrabar steps of the near-continuous markets (the default is 12).
const FINE_SUBSTEPS: usize = 200;

/// The parameters [`oracle_bayes`] is given in its "wrong parameters" row: every volatility 3-8%
/// off, GARCH (0.07, 0.91) for (0.05, 0.93), correlation 0.65 for 0.7, regimes taken to last 30%
/// shorter, and no drift.
fn wrong_params(sc: &SynthConfig) -> SynthConfig {
    SynthConfig {
        vol: [0.53, 0.57, 0.32, 1.1],
        garch: (0.07, 0.91),
        correlation: 0.65,
        mean_regime_bars: sc.mean_regime_bars * 0.7,
        drift: [0.0; 4],
        ..sc.clone()
    }
}

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

/// Means over the seeds of: rules, rules after the warm-up bars, MS-GARCH, MS-GARCH after warm-up, oracle
/// told h, oracle tracking h (percent).
fn row(mean_bars: f64, garch: (f64, f64)) -> Vec<f64> {
    use rayon::prelude::*;
    let rules = RegimeConfig { detector: Detector::Rules, ..Default::default() };
    let msg = RegimeConfig { detector: Detector::MsGarch, ..Default::default() };
    let per_seed: Vec<[f64; 6]> = (1..=SEEDS)
        .into_par_iter()
        .map(|seed| {
            let sc = market(mean_bars, seed, garch);
            let h = evaluate_synth(&rules, &sc).expect("valid defaults");
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
        let (tot, by, _) = tradelab::numerics::weigh(&mut w, &reg);
        let label = tradelab::regime::likeliest(&by);
        pred.push(label as u8);
        let u0 = rng.gen::<f64>();
        tradelab::numerics::systematic_resample(&w, tot, u0, (&reg, &h), (&mut reg2, &mut h2));
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

/// What [`oracle_bayes`] weighs particles by.
#[derive(Clone, Copy, PartialEq)]
enum Uses {
    /// Returns and ranges given the returns: every bar's exact likelihood.
    All,
    /// The same, but whether a range equals its return's size (a path that never left the
    /// open-close interval, an artifact of a 12-step intrabar path) counts for nothing.
    NoAtoms,
    /// Returns only.
    Returns,
}

/// Balanced accuracy of the nearest thing to the Bayes filter built here: a particle filter over
/// (regime, `h`) with the generator's true parameters and every bar's exact likelihood, up to
/// quadrature and tabulation: the four symbols' open-to-close returns jointly (Student-t factor and
/// idiosyncratic shocks, the true correlation, drift per regime and market-wide jumps, the factor
/// integrated out numerically) and their ranges given those returns ([`RangeLaw`] for the
/// generator's intrabar steps). After
/// resampling, each particle's `h` steps on with the factor shock drawn from its posterior.
/// The likelihood is computed on a grid of the common bar scale `S = vol[k]*sqrt(h/N)` and
/// interpolated for each particle.
fn oracle_bayes(sc: &SynthConfig, fc: &SynthConfig, table: &RangeLaw, uses: Uses, particles: usize) -> f64 {
    use rand::{Rng, SeedableRng};
    const G: usize = 160;
    const NC: usize = 80;
    let (ls0, ls1) = (-7.0f64, -2.3f64);
    let dg = (ls1 - ls0) / (G - 1) as f64;
    let m = sc.generate().expect("valid defaults");
    let n = m.regimes.len();
    let per_year = sc.timeframe.bars_per_year();
    let ns = sc.symbols.len();
    let (a, b) = fc.garch;
    let rho = fc.correlation;
    let (sr, se) = (rho.sqrt(), (1.0 - rho).sqrt());
    assert_eq!(sc.tail_dof, 4, "the t densities below are for 4 degrees of freedom");
    // Unit-variance Student-t(4): C4 * (1 + z^2/2)^-2.5.
    let c4 = 0.75 / std::f64::consts::SQRT_2;
    let pj = fc.jump_prob;
    let mult: Vec<f64> = sc.symbols.iter().map(|s| s.vol_mult).collect();
    let tick: Vec<f64> = sc.symbols.iter().map(|s| 10f64.powi(s.price.log10().floor() as i32 - 6)).collect();
    let drift: Vec<[f64; 4]> = mult.iter().map(|mi| std::array::from_fn(|k| fc.drift[k] / per_year / mi)).collect();
    let lvol: [f64; 4] = std::array::from_fn(|k| fc.vol[k].ln() - 0.5 * per_year.ln());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sc.seed ^ 0xBA7E5);
    let normal = |rng: &mut rand_chacha::ChaCha8Rng| {
        let (u1, u2): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen::<f64>());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let mut reg: Vec<u8> = (0..particles).map(|i| (i % 4) as u8).collect();
    let mut h = vec![1.0f64; particles];
    let (mut reg2, mut h2) = (reg.clone(), h.clone());
    let mut w = vec![0.0f64; particles];
    let mut loglik = vec![0.0f64; 4 * G];
    let mut cdf = vec![0.0f64; 4 * G * NC];
    let mut jump_w = vec![0.0f64; 4 * G];
    let mut c0 = vec![0.0f64; G];
    let mut dc = vec![0.0f64; G];
    let mut pred = Vec::with_capacity(n);
    let mut x = vec![0.0f64; ns];
    let mut rabs = vec![0.0f64; ns];
    let mut big_r = vec![0.0f64; ns];
    let mut atom = vec![false; ns];
    for t in 0..n {
        for i in 0..ns {
            let bar = &m.series[i].bars;
            let r = (bar.close[t] / bar.open[t]).ln();
            x[i] = r / mult[i];
            rabs[i] = r.abs();
            big_r[i] = (bar.high[t] / bar.low[t]).ln();
            atom[i] = big_r[i] - rabs[i] < 3.0 * tick[i] / bar.low[t];
        }
        let (xmin, xmax) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        for j in 0..G {
            let s = (ls0 + j as f64 * dg).exp();
            let sig_e = s * se;
            let range: f64 = match uses {
                Uses::Returns => 0.0,
                Uses::NoAtoms => (0..ns)
                    .filter(|i| !atom[*i])
                    .map(|i| {
                        table.ll(big_r[i], rabs[i], s * mult[i], false)
                            - (1.0 - table.ll(0.0, rabs[i], s * mult[i], true).exp()).max(1e-12).ln()
                    })
                    .sum(),
                _ => (0..ns).map(|i| table.ll(big_r[i], rabs[i], s * mult[i], atom[i])).sum(),
            };
            let lo = xmin - 6.0 * sig_e;
            let step = (xmax - xmin + 12.0 * sig_e) / (NC - 1) as f64;
            c0[j] = lo;
            dc[j] = step;
            let norm_e = (c4 / sig_e).powi(ns as i32);
            let jump_var = 0.04 * 0.04 + s * s * rho;
            for k in 0..4 {
                let (mut acc, mut accj) = (0.0, 0.0);
                let row = &mut cdf[(k * G + j) * NC..(k * G + j + 1) * NC];
                for (node, cell) in row.iter_mut().enumerate() {
                    let c = lo + node as f64 * step;
                    let mut q = 1.0;
                    for i in 0..ns {
                        let e = (x[i] - drift[i][k] - c) / sig_e;
                        q *= 1.0 + 0.5 * e * e;
                    }
                    let e_dens = norm_e / (q * q * q.sqrt());
                    let f = c / (s * sr);
                    let pf = c4 / (s * sr) / (1.0 + 0.5 * f * f).powf(2.5);
                    let pjd = (-0.5 * (c + 0.01).powi(2) / jump_var).exp() / (std::f64::consts::TAU * jump_var).sqrt();
                    acc += (1.0 - pj) * pf * e_dens * step;
                    accj += pj * pjd * e_dens * step;
                    *cell = acc;
                }
                jump_w[k * G + j] = accj;
                loglik[k * G + j] = (acc + accj).max(1e-300).ln() + range;
            }
        }
        // Weights: each particle's log likelihood interpolated on the grid of ln S.
        for p in 0..particles {
            let k = reg[p] as usize;
            let y = ((lvol[k] + 0.5 * h[p].ln() - ls0) / dg).clamp(0.0, G as f64 - 1.000001);
            let (j0, fr) = (y.floor() as usize, y - y.floor());
            w[p] = (1.0 - fr) * loglik[k * G + j0] + fr * loglik[k * G + j0 + 1];
        }
        let (tot, by, _) = tradelab::numerics::weigh(&mut w, &reg);
        let label = tradelab::regime::likeliest(&by);
        pred.push(label as u8);
        let u0 = rng.gen::<f64>();
        tradelab::numerics::systematic_resample(&w, tot, u0, (&reg, &h), (&mut reg2, &mut h2));
        std::mem::swap(&mut reg, &mut reg2);
        std::mem::swap(&mut h, &mut h2);
        // h steps on with this bar's factor shock drawn from its posterior; then the regime moves.
        for p in 0..particles {
            let k = reg[p] as usize;
            let ls = lvol[k] + 0.5 * h[p].ln();
            let jn = (((ls - ls0) / dg).round().clamp(0.0, G as f64 - 1.0)) as usize;
            let row = &cdf[(k * G + jn) * NC..(k * G + jn + 1) * NC];
            let total = row[NC - 1] + jump_w[k * G + jn];
            let v = rng.gen::<f64>() * total;
            let f = if v >= row[NC - 1] || total <= 0.0 {
                // A jump bar says nothing of f: draw it from its prior.
                let chi: f64 = (0..4).map(|_| normal(&mut rng).powi(2)).sum();
                normal(&mut rng) / (chi / 4.0).sqrt() * 0.5f64.sqrt()
            } else {
                let node = row.partition_point(|cv| *cv < v).min(NC - 1);
                let c = c0[jn] + (node as f64 + rng.gen::<f64>() - 0.5) * dc[jn];
                c / (ls.exp() * sr)
            };
            h[p] = (1.0 - a - b) + (a * f * f + b) * h[p];
            if rng.gen::<f64>() < 1.0 / fc.mean_regime_bars {
                reg[p] = ((k + 1 + rng.gen_range(0..3)) % 4) as u8;
            }
        }
    }
    accuracy(&m.regimes, &pred).balanced
}

/// The tracking oracle's filter (true parameters, Gray's collapse of `h`, factor shock read from
/// the returns) with the bar likelihood `ll(t, s)`, `s` the bar's common sd `vol[k]*sqrt(h/N)`
/// (each symbol's is `s * m[i]`).
fn oracle_gray(sc: &SynthConfig, m: &SynthMarket, ll_of: &dyn Fn(usize, f64) -> f64) -> f64 {
    let mean_bars = sc.mean_regime_bars;
    let per_year = sc.timeframe.bars_per_year();
    let ns = sc.symbols.len();
    let (stay, switch) = (1.0 - 1.0 / mean_bars, 1.0 / (3.0 * mean_bars));
    let mut alpha = [0.25; 4];
    let mut pred = Vec::with_capacity(BARS);
    let (a, b) = sc.garch;
    let rho = sc.correlation;
    let mut h_k = [1.0f64; 4];
    for t in 0..BARS {
        let mut h_in = [1.0; 4];
        for (j, hj) in h_in.iter_mut().enumerate() {
            let w: Vec<f64> = (0..4).map(|i| alpha[i] * if i == j { stay } else { switch }).collect();
            *hj = (0..4).map(|i| w[i] * h_k[i]).sum::<f64>() / w.iter().sum::<f64>();
        }
        let ll: [f64; 4] = std::array::from_fn(|k| ll_of(t, sc.vol[k] * (h_in[k] / per_year).sqrt()));
        let top = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut next = [0.0; 4];
        for j in 0..4 {
            let prior: f64 = (0..4).map(|i| alpha[i] * if i == j { stay } else { switch }).sum();
            next[j] = prior * (ll[j] - top).exp();
        }
        let s: f64 = next.iter().sum();
        alpha = next.map(|x| x / s);
        let c =
            (0..ns).map(|i| (m.series[i].bars.close[t] / m.series[i].bars.open[t]).ln() / sc.symbols[i].vol_mult).sum::<f64>() / ns as f64;
        for k in 0..4 {
            let h = h_in[k];
            let f2 = ((c * c * per_year / (sc.vol[k] * sc.vol[k] * h) - (1.0 - rho) / ns as f64) / rho).max(0.0);
            h_k[k] = (1.0 - a - b) + a * h * f2 + b * h;
        }
        pred.push((0..4).max_by(|a, b| alpha[*a].total_cmp(&alpha[*b])).unwrap_or(0) as u8);
    }
    accuracy(&m.regimes, &pred).balanced
}

/// How [`oracle_gray_obs`] reads a bar.
#[derive(Clone, Copy, PartialEq)]
enum Obs {
    /// The range given the return, exactly ([`RangeLaw`]).
    Exact,
    /// ln(Rogers-Satchell variance), floored, with the Student-t [`spread`].
    LnRs,
    /// ln(range) with the Student-t [`spread`] (the oracles above).
    LnRange,
}

/// [`oracle_gray`] reading each symbol's bar by `obs` (spreads calibrated with the truth).
fn oracle_gray_obs(sc: &SynthConfig, table: &RangeLaw, obs_model: Obs) -> f64 {
    let m = sc.generate().expect("valid defaults");
    let ns = sc.symbols.len();
    let per_year = sc.timeframe.bars_per_year();
    let mult: Vec<f64> = sc.symbols.iter().map(|s| s.vol_mult).collect();
    let tick: Vec<f64> = sc.symbols.iter().map(|s| 10f64.powi(s.price.log10().floor() as i32 - 6)).collect();
    // Per bar and symbol: |ln(C/O)|, ln(H/L), range == |return|, Rogers-Satchell variance.
    let obs: Vec<(f64, f64, bool, f64)> = (0..BARS * ns)
        .map(|q| {
            let (t, i) = (q / ns, q % ns);
            let b = &m.series[i].bars;
            let r = (b.close[t] / b.open[t]).ln().abs();
            let big_r = (b.high[t] / b.low[t]).ln();
            let (hc, ho, lc, lo) =
                ((b.high[t] / b.close[t]).ln(), (b.high[t] / b.open[t]).ln(), (b.low[t] / b.close[t]).ln(), (b.low[t] / b.open[t]).ln());
            (r, big_r, big_r - r < 3.0 * tick[i] / b.low[t], (hc * ho + lc * lo).max(0.0))
        })
        .collect();
    let resid = |o: (f64, f64, bool, f64), si: f64| match obs_model {
        Obs::LnRs => o.3.max(1e-4 * si * si).ln() - 2.0 * si.ln(),
        _ => o.1.ln() - si.ln(),
    };
    let (mu, sd) =
        range_model(&m, ns, |t, i| resid(obs[t * ns + i], sc.vol[m.regimes[t] as usize] * (m.variance[t] / per_year).sqrt() * mult[i]));
    let ll = |t: usize, s: f64| -> f64 {
        (0..ns)
            .map(|i| {
                let o = obs[t * ns + i];
                match obs_model {
                    Obs::Exact => table.ll(o.1, o.0, s * mult[i], o.2),
                    _ => spread((resid(o, s * mult[i]) - mu) / sd),
                }
            })
            .sum()
    };
    oracle_gray(sc, &m, &ll)
}

/// The parameters an oracle filter is given, from the market's.
type FilterParams = fn(&SynthConfig) -> SynthConfig;

fn main() {
    // Sections to print (`cargo bench --bench regime_ceiling -- bayes`): all when none named.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let default = SynthConfig::default().garch;
    println!("balanced accuracy, mean of {SEEDS} seeds, {BARS} hourly bars (\"after\": bars after the 2,000-bar warm-up)");
    let head = |first: &str| {
        println!("{first:>12} {:>8} {:>10} {:>10} {:>10} {:>8} {:>15}", "rules", "after", "MS-GARCH", "after", "oracle", "oracle, h est.")
    };
    let print = |label: String, m: &[f64]| {
        println!("{label:>12} {:>7.1}% {:>9.1}% {:>9.1}% {:>9.1}% {:>7.1}% {:>14.1}%", m[0], m[1], m[2], m[3], m[4], m[5])
    };
    if want("table") {
        for (title, garch) in [("default market (GARCH 0.05, 0.93)", default), ("without the shared GARCH (--garch 0,0)", (0.0, 0.0))] {
            println!("\n{title}");
            head("regime bars");
            for mean_bars in [25.0, 50.0, 100.0, 200.0, 300.0, 500.0] {
                print(format!("{mean_bars}"), &row(mean_bars, garch));
            }
        }
    }
    if want("pf") {
        println!("\nparticle filter over (regime, h), true parameters, no collapse, default market");
        for mean_bars in [200.0, 500.0] {
            use rayon::prelude::*;
            let pf: f64 = (1..=SEEDS).into_par_iter().map(|seed| oracle_pf(&market(mean_bars, seed, default), PARTICLES)).sum::<f64>();
            println!("{mean_bars:>12} {:>7.1}%  ({PARTICLES} particles)", 100.0 * pf / SEEDS as f64);
        }
    }
    if want("bayes") {
        use rayon::prelude::*;
        let sub = SynthConfig::default().substeps;
        let table = RangeLaw::build(sub, 200_000);
        let fine = RangeLaw::build(FINE_SUBSTEPS, 40_000);
        println!("\nparticle filter with every bar's exact likelihood, default market ({PARTICLES} particles)");
        println!("{:>12} {:>8} {:>12}  filter", "regime bars", "mean", "worst seed");
        let truth: FilterParams = SynthConfig::clone;
        let no_drift: FilterParams = |sc| SynthConfig { drift: [0.0; 4], ..sc.clone() };
        let rows: [(f64, &str, Uses, usize, FilterParams); 7] = [
            (200.0, "true parameters", Uses::All, sub, truth),
            (500.0, "true parameters", Uses::All, sub, truth),
            (200.0, "no atoms", Uses::NoAtoms, sub, truth),
            (200.0, "returns only", Uses::Returns, sub, truth),
            (200.0, "true parameters, 200-step intrabar path", Uses::All, FINE_SUBSTEPS, truth),
            (200.0, "wrong parameters (see wrong_params)", Uses::All, sub, wrong_params),
            (200.0, "true parameters but no drift", Uses::All, sub, no_drift),
        ];
        for (mean_bars, label, uses, substeps, filter_params) in rows {
            let tab = if substeps == sub { &table } else { &fine };
            let per: Vec<f64> = (1..=SEEDS)
                .into_par_iter()
                .map(|seed| {
                    let sc = SynthConfig { substeps, ..market(mean_bars, seed, default) };
                    let fc = filter_params(&sc);
                    oracle_bayes(&sc, &fc, tab, uses, PARTICLES)
                })
                .collect();
            let worst = per.iter().copied().fold(f64::INFINITY, f64::min);
            println!("{mean_bars:>12} {:>7.1}% {:>11.1}%  {label}", 100.0 * per.iter().sum::<f64>() / SEEDS as f64, 100.0 * worst);
        }
    }
    if want("gray") {
        use rayon::prelude::*;
        println!("\ntracking oracle (Gray's collapse, true parameters), 200-bar regimes, by how it reads a bar");
        for substeps in [SynthConfig::default().substeps, FINE_SUBSTEPS] {
            let table = RangeLaw::build(substeps, if substeps > 50 { 40_000 } else { 200_000 });
            for (label, obs) in [("exact", Obs::Exact), ("ln Rogers-Satchell", Obs::LnRs), ("ln range", Obs::LnRange)] {
                let per: Vec<f64> = (1..=SEEDS)
                    .into_par_iter()
                    .map(|seed| oracle_gray_obs(&SynthConfig { substeps, ..market(200.0, seed, default) }, &table, obs))
                    .collect();
                println!("{substeps:>6} steps {:>7.1}%  {label}", 100.0 * per.iter().sum::<f64>() / SEEDS as f64);
            }
        }
    }
    if want("persistence") {
        println!("\n200-bar regimes, GARCH alpha = 0.05, by persistence alpha + beta");
        head("persistence");
        for beta in [0.0, 0.75, 0.85, 0.9, 0.93] {
            print(format!("{:.2}", 0.05 + beta), &row(200.0, (0.05, beta)));
        }
    }
}
