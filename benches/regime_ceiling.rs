//! How accurate could a regime detector be on `tradelab data synth` markets? The balanced
//! accuracy of the configured HMM detector against that of an *oracle* filter that is given what
//! no detector has: the generator's true volatilities per regime, its symbols' volatility
//! multipliers, its switching probability, and the shared GARCH variance `h` of every bar. The
//! oracle reads each bar's high-low ranges (Gaussian-driven, the most informative part of a bar:
//! `ln(range)` is `ln(bar sd)` plus a spread calibrated on the same market with the true labels)
//! and forward-filters the regimes with the true transition matrix, labelling each bar from
//! bars up to it only. It ignores the close-to-close returns (fat-tailed, and their drift is
//! tiny next to hourly noise), so it is not the exact Bayes bound, but it knows `h`, which is
//! worth far more: what it cannot reach, a causal detector on these markets is unlikely to.
//! The next column is the same oracle without `h`, following it from the returns as a
//! Markov-switching GARCH filter would (see [`oracle`]): nearer what a detector could do. The
//! last is that filter with nothing from the generator but the model's form: its parameters
//! fitted by maximum likelihood on the first 4,000 bars, scored on the bars after them (see
//! [`fitted`]); a prototype of the detector worth building next.
//! Run: cargo bench --bench regime_ceiling

use tradelab::data::synth::SynthConfig;
use tradelab::experiment::RegimeConfig;
use tradelab::regime::{accuracy, evaluate_synth};

const BARS: usize = 17_520;
const SEEDS: u64 = 10;
/// Bars the fitted MS-GARCH filter is fitted on (it is scored on the bars after them).
const FIT: usize = 4000;

/// Balanced accuracy of the oracle filter on one market. With `track_h` the oracle is not given
/// `h`: it follows it with the generator's own recursion, `h' = (1-a-b) + a*h*f^2 + b*h`, one
/// `h` per regime (what it would be had that regime held this bar, its factor shock `f` read
/// from the bar's mean multiplier-scaled return at that regime's volatility), mixed through the
/// transition probabilities at every bar (Gray's collapse of a Markov-switching GARCH). Still
/// with the true `a`, `b`, correlation, volatilities and switching rate.
fn oracle(mean_bars: f64, seed: u64, track_h: bool) -> f64 {
    let sc = SynthConfig { seed, bars: BARS, mean_regime_bars: mean_bars, ..Default::default() };
    let m = sc.generate().expect("valid defaults");
    let per_year = sc.timeframe.bars_per_year();
    let ns = sc.symbols.len();
    // ln(range) - ln(bar sd) under the true regime: its mean and spread.
    let resid_h = |t: usize, i: usize, k: usize, h: f64| {
        let b = &m.series[i].bars;
        let sd = sc.vol[k] * sc.symbols[i].vol_mult * (h / per_year).sqrt();
        (b.high[t] / b.low[t]).ln().max(1e-12).ln() - sd.ln()
    };
    let resid = |t: usize, i: usize, k: usize| resid_h(t, i, k, m.variance[t]);
    let xs: Vec<f64> = (0..BARS).flat_map(|t| (0..ns).map(move |i| (t, i))).map(|(t, i)| resid(t, i, m.regimes[t] as usize)).collect();
    let mu = xs.iter().sum::<f64>() / xs.len() as f64;
    let sd = (xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
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
            *l = (0..ns).map(|i| -0.5 * ((resid_h(t, i, k, h_in[k]) - mu) / sd).powi(2)).sum();
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

fn main() {
    use rayon::prelude::*;
    let cfg = RegimeConfig::default();
    println!("balanced accuracy, mean of {SEEDS} seeds, {BARS} hourly bars");
    println!(
        "{:>12} {:>8} {:>15} {:>8} {:>15} {:>16}",
        "regime bars", "HMM", "HMM after warm", "oracle", "oracle, h est.", "fitted MS-GARCH"
    );
    for mean_bars in [25.0, 50.0, 100.0, 200.0, 300.0, 500.0] {
        let per_seed: Vec<[f64; 5]> = (1..=SEEDS)
            .into_par_iter()
            .map(|seed| {
                let s = evaluate_synth(&cfg, mean_bars, BARS, seed).expect("valid defaults");
                [
                    s.all.balanced,
                    s.after_warmup.balanced,
                    oracle(mean_bars, seed, false),
                    oracle(mean_bars, seed, true),
                    fitted(mean_bars, seed, FIT),
                ]
            })
            .collect();
        let mean: Vec<f64> = (0..5).map(|c| 100.0 * per_seed.iter().map(|r| r[c]).sum::<f64>() / SEEDS as f64).collect();
        println!("{mean_bars:>12} {:>7.1}% {:>14.1}% {:>7.1}% {:>14.1}% {:>15.1}%", mean[0], mean[1], mean[2], mean[3], mean[4]);
    }
}

/// Inputs of the fitted filter: per bar each symbol's log range (less its multiplier's log) and
/// the mean of the symbols' log returns scaled by their multipliers; the returns' correlation,
/// bars per year and the mean regime length.
struct Obs {
    lr: Vec<[f64; 4]>,
    c: Vec<f64>,
    rho: f64,
    per_year: f64,
    mean_bars: f64,
}

/// Gray-collapse MS-GARCH filter log likelihood over the first `hi` bars (and their labels)
/// for parameters `th = [ln vol0..3, mu, a, b, ln sd]`.
fn gray(o: &Obs, th: &[f64], hi: usize, labels: Option<&mut Vec<u8>>) -> f64 {
    let (rho, per_year, mean_bars) = (o.rho, o.per_year, o.mean_bars);
    let vol = [th[0].exp(), th[1].exp(), th[2].exp(), th[3].exp()];
    let (mu, a, b, sd) = (th[4], th[5], th[6], th[7].exp());
    if !(a > 0.0 && b > 0.0 && a + b < 0.999) {
        return -1e300;
    }
    let (stay, switch) = (1.0 - 1.0 / mean_bars, 1.0 / (3.0 * mean_bars));
    let mut alpha = [0.25; 4];
    let mut h_k = [1.0f64; 4];
    let mut total = 0.0;
    let mut out = labels;
    for t in 0..hi {
        let mut h_in = [1.0; 4];
        for (j, hj) in h_in.iter_mut().enumerate() {
            let w: Vec<f64> = (0..4).map(|i| alpha[i] * if i == j { stay } else { switch }).collect();
            *hj = (0..4).map(|i| w[i] * h_k[i]).sum::<f64>() / w.iter().sum::<f64>();
        }
        let mut ll = [0.0; 4];
        for k in 0..4 {
            let m = (vol[k] * (h_in[k] / per_year).sqrt()).ln() + mu;
            ll[k] = o.lr[t].iter().map(|x| -0.5 * ((x - m) / sd).powi(2) - sd.ln()).sum();
        }
        let top = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut next = [0.0; 4];
        for j in 0..4 {
            let prior: f64 = (0..4).map(|i| alpha[i] * if i == j { stay } else { switch }).sum();
            next[j] = prior * (ll[j] - top).exp();
        }
        let s: f64 = next.iter().sum();
        total += top + s.ln();
        alpha = next.map(|x| x / s);
        for k in 0..4 {
            let h = h_in[k];
            let f2 = ((o.c[t] * o.c[t] * per_year / (vol[k] * vol[k] * h) - (1.0 - rho) / 4.0) / rho).max(0.0);
            h_k[k] = (1.0 - a - b) + a * h * f2 + b * h;
        }
        if let Some(l) = out.as_deref_mut() {
            // States named by volatility, low to high: sideways, bull, bear, high_vol.
            let mut order = [0usize, 1, 2, 3];
            order.sort_by(|x, y| vol[*x].total_cmp(&vol[*y]));
            let names = [2u8, 0, 1, 3];
            let best = (0..4).max_by(|x, y| alpha[*x].total_cmp(&alpha[*y])).unwrap_or(0);
            let rank = order.iter().position(|&k| k == best).unwrap_or(0);
            l.push(names[rank]);
        }
    }
    total
}

/// Nelder-Mead maximization of `f` from `x0` with initial steps `step`.
fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, x0: &[f64], step: f64, iters: usize) -> Vec<f64> {
    let d = x0.len();
    let mut pts: Vec<(Vec<f64>, f64)> = (0..=d)
        .map(|i| {
            let mut x = x0.to_vec();
            if i > 0 {
                x[i - 1] += step;
            }
            let v = f(&x);
            (x, v)
        })
        .collect();
    for _ in 0..iters {
        pts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let cen: Vec<f64> = (0..d).map(|j| pts[..d].iter().map(|p| p.0[j]).sum::<f64>() / d as f64).collect();
        let at = |t: f64| -> Vec<f64> { (0..d).map(|j| cen[j] + t * (pts[d].0[j] - cen[j])).collect() };
        let r = at(-1.0);
        let fr = f(&r);
        if fr > pts[0].1 {
            let e = at(-2.0);
            let fe = f(&e);
            pts[d] = if fe > fr { (e, fe) } else { (r, fr) };
        } else if fr > pts[d - 1].1 {
            pts[d] = (r, fr);
        } else {
            let cc = at(0.5);
            let fc = f(&cc);
            if fc > pts[d].1 {
                pts[d] = (cc, fc);
            } else {
                let best = pts[0].0.clone();
                for p in pts.iter_mut().skip(1) {
                    p.0 = (0..d).map(|j| best[j] + 0.5 * (p.0[j] - best[j])).collect();
                    p.1 = f(&p.0);
                }
            }
        }
    }
    pts.sort_by(|a, b| b.1.total_cmp(&a.1));
    pts.swap_remove(0).0
}

/// Balanced accuracy, on the bars after the fit window, of the MS-GARCH filter with its
/// parameters fitted (no oracle knowledge but the model's form) on the first `fit` bars.
fn fitted(mean_bars: f64, seed: u64, fit: usize) -> f64 {
    let sc = SynthConfig { seed, bars: BARS, mean_regime_bars: mean_bars, ..Default::default() };
    let m = sc.generate().expect("valid defaults");
    let per_year = sc.timeframe.bars_per_year();
    let lr_raw: Vec<[f64; 4]> =
        (0..BARS).map(|t| std::array::from_fn(|i| (m.series[i].bars.high[t] / m.series[i].bars.low[t]).ln().max(1e-12).ln())).collect();
    // Multipliers from the mean log range of each symbol against the first, on the fit window.
    let mean_i: [f64; 4] = std::array::from_fn(|i| lr_raw[..fit].iter().map(|x| x[i]).sum::<f64>() / fit as f64);
    let mult: [f64; 4] = std::array::from_fn(|i| (mean_i[i] - mean_i[0]).exp());
    let lr: Vec<[f64; 4]> = lr_raw.iter().map(|x| std::array::from_fn(|i| x[i] - mult[i].ln())).collect();
    let ret = |t: usize, i: usize| if t == 0 { 0.0 } else { (m.series[i].bars.close[t] / m.series[i].bars.close[t - 1]).ln() };
    let c: Vec<f64> = (0..BARS).map(|t| (0..4).map(|i| ret(t, i) / mult[i]).sum::<f64>() / 4.0).collect();
    // Correlation: mean pairwise correlation of the returns on the fit window.
    let corr = |i: usize, j: usize| {
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for t in 1..fit {
            let (x, y) = (ret(t, i), ret(t, j));
            sxy += x * y;
            sxx += x * x;
            syy += y * y;
        }
        sxy / (sxx * syy).sqrt()
    };
    let pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];
    let rho = pairs.iter().map(|&(i, j)| corr(i, j)).sum::<f64>() / 6.0;
    let o = Obs { lr, c, rho, per_year, mean_bars };
    let lik = |th: &[f64]| gray(&o, th, fit, None);
    // Starts: volatility levels from quantiles of the annualized range-implied volatility.
    let mut ann: Vec<f64> = o.lr[..fit].iter().map(|x| x.iter().sum::<f64>() / 4.0).collect();
    ann.sort_by(f64::total_cmp);
    let q = |p: f64| ann[((fit - 1) as f64 * p) as usize] + 0.5 * per_year.ln();
    let mut best: Option<(Vec<f64>, f64)> = None;
    for (qs, ab) in [([0.1, 0.4, 0.6, 0.9], (0.05, 0.9)), ([0.15, 0.45, 0.65, 0.95], (0.1, 0.8)), ([0.05, 0.3, 0.5, 0.85], (0.03, 0.95))] {
        let x0 = vec![q(qs[0]), q(qs[1]), q(qs[2]), q(qs[3]), 0.0, ab.0, ab.1, (0.3f64).ln()];
        let mut x = x0;
        for _ in 0..3 {
            x = nelder_mead(&lik, &x, 0.1, 400);
        }
        let v = lik(&x);
        if best.as_ref().is_none_or(|b| v > b.1) {
            best = Some((x, v));
        }
    }
    let th = best.expect("starts").0;
    let mut labels = Vec::with_capacity(BARS);
    gray(&o, &th, BARS, Some(&mut labels));
    accuracy(&m.regimes[fit..], &labels[fit..]).balanced
}
