//! Decision: from the combined signal of a symbol to its target position, as a signed fraction
//! of equity: `direction * strength_multiplier * confidence * base`, where `base` is
//! `fraction` (fixed fraction), `notional / equity` (fixed notional), or
//! `min(fraction, target_vol / realized_vol)` (volatility-scaled, realized volatility of log
//! returns over `vol_window` bars, annualized); with `fixed_quantity` the same product with
//! `base = quantity` is a signed number of units, not a fraction. Signals below `min_confidence` are ignored (the
//! position is held); short targets become flat unless shorts are allowed.

use crate::experiment::{DecisionConfig, Sizing};

/// Target fraction (units with `fixed_quantity`) for one symbol at one bar, or None to hold the
/// current target.
/// `vol` is the annualized realized volatility at this bar (NaN while warming up).
pub fn target(cfg: &DecisionConfig, allow_short: bool, dir: i8, strength: u8, conf: f64, equity: f64, vol: f64) -> Option<f64> {
    if dir == crate::signals::NONE || conf < cfg.min_confidence {
        return None;
    }
    if dir == 0 || (dir < 0 && !allow_short) {
        return Some(0.0);
    }
    let base = match cfg.sizing {
        Sizing::FixedFraction => cfg.fraction,
        Sizing::FixedNotional => {
            if equity > 0.0 {
                cfg.notional / equity
            } else {
                0.0
            }
        }
        Sizing::Volatility => {
            if vol.is_nan() || vol <= 0.0 {
                return None;
            }
            (cfg.target_vol / vol).min(cfg.fraction)
        }
        Sizing::FixedQuantity => cfg.quantity,
    };
    Some(dir as f64 * cfg.strength_multipliers[strength as usize - 1] * conf * base)
}

/// Annualized rolling volatility of log returns over `n` bars (ddof = 1); NaN until n returns.
#[allow(clippy::needless_range_loop)]
pub fn rolling_vol(close: &[f64], n: usize, per_year: f64) -> Vec<f64> {
    let mut out = vec![f64::NAN; close.len()];
    let (mut s, mut s2) = (0.0, 0.0);
    let r = |i: usize| (close[i] / close[i - 1]).ln();
    for i in 1..close.len() {
        let x = r(i);
        s += x;
        s2 += x * x;
        if i > n {
            let o = r(i - n);
            s -= o;
            s2 -= o * o;
        }
        if i >= n {
            let var = (s2 - s * s / n as f64) / (n as f64 - 1.0);
            out[i] = (var.max(0.0) * per_year).sqrt();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizing_rules() {
        let mut c = DecisionConfig::default();
        assert_eq!(target(&c, false, 1, 4, 0.8, 1000.0, f64::NAN), Some(0.8));
        assert_eq!(target(&c, false, 1, 2, 1.0, 1000.0, f64::NAN), Some(0.5));
        assert_eq!(target(&c, false, -1, 4, 1.0, 1000.0, f64::NAN), Some(0.0));
        assert_eq!(target(&c, true, -1, 4, 1.0, 1000.0, f64::NAN), Some(-1.0));
        c.min_confidence = 0.9;
        assert_eq!(target(&c, false, 1, 4, 0.8, 1000.0, f64::NAN), None);
        c.min_confidence = 0.0;
        c.sizing = Sizing::Volatility;
        c.target_vol = 0.2;
        assert_eq!(target(&c, false, 1, 4, 1.0, 1000.0, 0.8), Some(0.25));
        c.sizing = Sizing::FixedNotional;
        c.notional = 250.0;
        assert_eq!(target(&c, false, 1, 4, 1.0, 1000.0, 0.8), Some(0.25));
    }

    #[test]
    fn rolling_vol_matches_formula() {
        let close = [100.0, 110.0, 99.0, 108.9];
        let v = rolling_vol(&close, 2, 1.0);
        let (a, b) = ((99.0f64 / 110.0).ln(), (108.9f64 / 99.0).ln());
        let m = (a + b) / 2.0;
        let want = ((a - m).powi(2) + (b - m).powi(2)).sqrt(); // ddof 1 over 2 values
        assert!((v[3] - want).abs() < 1e-12);
        assert!(v[1].is_nan());
    }
}
