//! Judging a search honestly: the deflated Sharpe ratio (Bailey and López de Prado, 2014).

use statrs::distribution::{ContinuousCDF, Normal};

/// Deflated Sharpe ratio: the probability that the best trial's true Sharpe is above zero after
/// allowing for having picked it out of `trials` tries. Sharpes are per period (not annualized);
/// `bars` is the number of returns. Returns are taken as normal (skew 0, kurtosis 3), so the
/// standard error of a Sharpe `s` is `sqrt((1 + s^2/2) / (bars - 1))`. The expected maximum of
/// N trial Sharpes under the null is `sqrt(var) * ((1-g) * z(1-1/N) + g * z(1-1/(N e)))`, g the
/// Euler-Mascheroni constant, var the variance of the trial Sharpes.
pub fn deflated_sharpe(best: f64, trials: &[f64], bars: usize) -> f64 {
    let n = trials.len();
    if n < 2 || bars < 3 || !best.is_finite() {
        return f64::NAN;
    }
    let Ok(norm) = Normal::new(0.0, 1.0) else { return f64::NAN };
    let m = trials.iter().sum::<f64>() / n as f64;
    let var = trials.iter().map(|s| (s - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let g = 0.577_215_664_901_532_9;
    let nf = n as f64;
    let sr0 = var.sqrt() * ((1.0 - g) * norm.inverse_cdf(1.0 - 1.0 / nf) + g * norm.inverse_cdf(1.0 - 1.0 / (nf * std::f64::consts::E)));
    let se = ((1.0 + best * best / 2.0) / (bars as f64 - 1.0)).sqrt();
    norm.cdf((best - sr0) / se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflated_sharpe_by_formula() {
        // Two trials 0.0 and 0.1: var 0.005; N = 2: z(0.5) = 0, z(1 - 1/(2e)) = z(0.81606).
        let z = Normal::new(0.0, 1.0).unwrap().inverse_cdf(1.0 - 1.0 / (2.0 * std::f64::consts::E));
        let sr0 = 0.005f64.sqrt() * 0.577_215_664_901_532_9 * z;
        let se = ((1.0 + 0.005) / 99.0f64).sqrt();
        let want = Normal::new(0.0, 1.0).unwrap().cdf((0.1 - sr0) / se);
        assert!((deflated_sharpe(0.1, &[0.0, 0.1], 100) - want).abs() < 1e-12);
        // More trials of the same spread deflate more.
        let many: Vec<f64> = (0..100).map(|i| i as f64 * 0.001).collect();
        assert!(deflated_sharpe(0.1, &many, 100) < deflated_sharpe(0.1, &many[..10], 100));
    }
}
