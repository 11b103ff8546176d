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
//! The last column is the same oracle without `h`, following it from the returns as a
//! Markov-switching GARCH filter would (see [`oracle`]): nearer what a detector could do. The
//! `ms_garch` detector is that filter with nothing from the generator but the model's form.
//! Run: cargo bench --bench regime_ceiling

use tradelab::data::synth::SynthConfig;
use tradelab::experiment::{Detector, RegimeConfig};
use tradelab::regime::{accuracy, evaluate_synth};

const BARS: usize = 17_520;
const SEEDS: u64 = 10;

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
    let hmm = RegimeConfig::default();
    let msg = RegimeConfig { detector: Detector::MsGarch, ..Default::default() };
    println!("balanced accuracy, mean of {SEEDS} seeds, {BARS} hourly bars (\"after\": bars after the 2,000-bar warm-up)");
    println!(
        "{:>12} {:>8} {:>10} {:>10} {:>10} {:>8} {:>15}",
        "regime bars", "HMM", "after", "MS-GARCH", "after", "oracle", "oracle, h est."
    );
    for mean_bars in [25.0, 50.0, 100.0, 200.0, 300.0, 500.0] {
        let per_seed: Vec<[f64; 6]> = (1..=SEEDS)
            .into_par_iter()
            .map(|seed| {
                let h = evaluate_synth(&hmm, mean_bars, BARS, seed).expect("valid defaults");
                let g = evaluate_synth(&msg, mean_bars, BARS, seed).expect("valid defaults");
                [
                    h.all.balanced,
                    h.after_warmup.balanced,
                    g.all.balanced,
                    g.after_warmup.balanced,
                    oracle(mean_bars, seed, false),
                    oracle(mean_bars, seed, true),
                ]
            })
            .collect();
        let m: Vec<f64> = (0..6).map(|c| 100.0 * per_seed.iter().map(|r| r[c]).sum::<f64>() / SEEDS as f64).collect();
        println!("{mean_bars:>12} {:>7.1}% {:>9.1}% {:>9.1}% {:>9.1}% {:>7.1}% {:>14.1}%", m[0], m[1], m[2], m[3], m[4], m[5]);
    }
}
