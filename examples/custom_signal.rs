//! A strategy written in Rust, run by the whole tradelab command line.
//!
//! Long when RSI(14) is under `lo` and the close is above its 200-bar SMA; out when RSI crosses
//! above `hi` or after `max_bars` bars in the trade: the strategy of
//! `experiments/rsi_sma_rules.toml`, written as code instead of rules, and trading identically.
//!
//! ```text
//! cargo run --release --example custom_signal -- run examples/custom_signal.toml
//! cargo run --release --example custom_signal -- optimize examples/custom_signal.toml
//! ```
//!
//! A user's own crate does the same: depend on `tradelab`, implement [`Signal`], register a
//! constructor under a name, and hand `main` to [`tradelab::cli::main`]. Experiment files then
//! name the strategy in `[[signals.code]]` and its `params` are searched like any other field.

use std::process::ExitCode;
use std::sync::Arc;
use tradelab::signals::{register, Action, IndKey, Params, Signal, View};

/// The strategy and its parameters.
pub struct RsiSma {
    /// Enter below this RSI.
    pub lo: f64,
    /// Leave when RSI crosses above this.
    pub hi: f64,
    /// Leave after this many bars in the trade.
    pub max_bars: usize,
}

impl RsiSma {
    /// Build from an experiment's `params` (defaults 30, 70, 48), refusing impossible ones.
    pub fn from_params(p: &Params) -> Result<RsiSma, String> {
        for k in p.keys() {
            if !["lo", "hi", "max_bars"].contains(&k.as_str()) {
                return Err(format!("unknown parameter '{k}' (rsi_sma takes lo, hi, max_bars)"));
            }
        }
        let get = |k: &str, default: f64| p.get(k).copied().unwrap_or(default);
        let (lo, hi, max_bars) = (get("lo", 30.0), get("hi", 70.0), get("max_bars", 48.0));
        if !(0.0 <= lo && lo < hi && hi <= 100.0) {
            return Err(format!("need 0 <= lo ({lo}) < hi ({hi}) <= 100"));
        }
        if !(max_bars >= 1.0 && max_bars.fract() == 0.0) {
            return Err(format!("max_bars must be a whole number >= 1, not {max_bars}"));
        }
        Ok(RsiSma { lo, hi, max_bars: max_bars as usize })
    }
}

impl Signal for RsiSma {
    fn decide(&self, v: &View) -> Action {
        let rsi = v.indicator(IndKey::Rsi(14));
        let pos = v.position();
        if pos.side > 0 {
            // Exits first; an exit on this bar is not followed by a new entry on it.
            let crossed = rsi.now() > self.hi && rsi.ago(1) < self.hi;
            return if crossed || pos.bars_in_trade >= self.max_bars { Action::Flat } else { Action::Hold };
        }
        // Comparisons with NaN (warm-up) are false: no entry until both indicators exist.
        let sma = v.indicator(IndKey::Sma(200)).now();
        if rsi.now() < self.lo && v.close(0) > sma {
            Action::Long
        } else {
            Action::Hold
        }
    }
}

/// Make the strategy known to experiment files as `rsi_sma`.
pub fn register_rsi_sma() {
    register("rsi_sma", |p| Ok(Arc::new(RsiSma::from_params(p)?)));
}

fn main() -> ExitCode {
    register_rsi_sma();
    tradelab::cli::main()
}
