//! Strategies that decide bar by bar: the [`Signal`] trait a user implements in Rust, the
//! [`View`] of the market it decides from (which ends at the current bar, so it cannot look
//! ahead), and the registry through which an experiment file names it (`[[signals.code]]`).
//!
//! The engine calls [`Signal::decide`] at every bar's close for each symbol the strategy covers,
//! after stops and account limits and before orders go out; the [`Action`] becomes a target
//! through the same decision, risk and execution code as every other signal, sized by the
//! entry's `strength` and `confidence`. A strategy decides its symbols alone: no other signal
//! may cover them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tradelab::signals::{register, Action, IndKey, Signal, View};
//!
//! /// Long while the close is above its 50-bar SMA.
//! struct AboveSma;
//!
//! impl Signal for AboveSma {
//!     fn decide(&self, v: &View) -> Action {
//!         let sma = v.indicator(IndKey::Sma(50)).now();
//!         if sma.is_nan() {
//!             Action::Hold // warm-up
//!         } else if v.close(0) > sma {
//!             Action::Long
//!         } else {
//!             Action::Flat
//!         }
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     register("above_sma", |_params| Ok(Arc::new(AboveSma)));
//!     tradelab::cli::main() // the whole tradelab CLI, with `above_sma` known to it
//! }
//! ```

use super::{IndKey, IndicatorCache, Series};
use crate::data::MarketData;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

/// What a strategy wants for a symbol at this bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep the current target.
    Hold,
    /// Be long (entering, or reversing a short; holding if already long).
    Long,
    /// Be short (needs `portfolio.allow_short`; otherwise taken as flat).
    Short,
    /// Be flat.
    Flat,
}

/// The strategy's position in one symbol at the current bar.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Position {
    /// +1 long, -1 short, 0 flat: the side of the latest target (which may still be waiting
    /// for its fill; a stop or a risk halt sets it flat).
    pub side: i8,
    /// Units held now (0 before an entry fills).
    pub qty: f64,
    /// Average entry price of the units held (0 when none).
    pub entry_price: f64,
    /// Bars since the bar whose fill opened the position: 0 on that bar, and 0 when nothing is
    /// held.
    pub bars_in_trade: usize,
    /// This close over the entry price, minus 1, signed by the direction held (a short that
    /// gained 5% reads 0.05); 0 when nothing is held.
    pub unrealized_return: f64,
}

/// One symbol's market up to and including bar t, and the strategy's position there. Every
/// slice ends at t: nothing later can be read.
pub struct View<'a> {
    pub(crate) t: usize,
    pub(crate) sym: usize,
    pub(crate) md: &'a MarketData,
    pub(crate) cache: &'a IndicatorCache,
    pub(crate) pos: Position,
    /// Series this run already fetched for this symbol (the cache is shared and locked; most
    /// strategies ask for the same few series every bar).
    pub(crate) memo: &'a RefCell<Vec<(IndKey, Series)>>,
}

/// An indicator series as a strategy sees it: values up to the current bar; NaN in warm-up.
pub struct Indicator {
    series: Series,
    end: usize,
}

impl Indicator {
    /// The value at the current bar.
    pub fn now(&self) -> f64 {
        self.ago(0)
    }
    /// The value k bars ago (NaN before the first bar).
    pub fn ago(&self, k: usize) -> f64 {
        self.end.checked_sub(k).map_or(f64::NAN, |i| self.series[i])
    }
    /// Every value up to the current bar.
    pub fn values(&self) -> &[f64] {
        &self.series[..=self.end]
    }
}

impl<'a> View<'a> {
    /// Index of the current bar.
    pub fn bar(&self) -> usize {
        self.t
    }
    /// The symbol's name.
    pub fn symbol(&self) -> &'a str {
        &self.md.symbols[self.sym]
    }
    /// The current bar's open time, milliseconds since the epoch (UTC).
    pub fn time(&self) -> i64 {
        self.md.timestamps[self.t]
    }
    /// Open prices up to the current bar.
    pub fn opens(&self) -> &'a [f64] {
        &self.md.bars[self.sym].open[..=self.t]
    }
    /// High prices up to the current bar.
    pub fn highs(&self) -> &'a [f64] {
        &self.md.bars[self.sym].high[..=self.t]
    }
    /// Low prices up to the current bar.
    pub fn lows(&self) -> &'a [f64] {
        &self.md.bars[self.sym].low[..=self.t]
    }
    /// Closing prices up to the current bar.
    pub fn closes(&self) -> &'a [f64] {
        &self.md.bars[self.sym].close[..=self.t]
    }
    /// Volumes up to the current bar.
    pub fn volumes(&self) -> &'a [f64] {
        &self.md.bars[self.sym].volume[..=self.t]
    }
    /// The close k bars ago (NaN before the first bar).
    pub fn close(&self, k: usize) -> f64 {
        self.t.checked_sub(k).map_or(f64::NAN, |i| self.md.bars[self.sym].close[i])
    }
    /// Closing prices of another symbol of the data up to the current bar (None if it is not
    /// in the data).
    pub fn closes_of(&self, symbol: &str) -> Option<&'a [f64]> {
        self.md.symbol_id(symbol).map(|s| &self.md.bars[s].close[..=self.t])
    }
    /// An indicator of this symbol's bars (computed once per data and shared by every run).
    pub fn indicator(&self, key: IndKey) -> Indicator {
        let hit = self.memo.borrow().iter().find(|(k, _)| *k == key).map(|(_, s)| s.clone());
        let series = hit.unwrap_or_else(|| {
            let s = self.cache.get(self.sym, &self.md.bars[self.sym], key);
            self.memo.borrow_mut().push((key, s.clone()));
            s
        });
        Indicator { series, end: self.t }
    }
    /// The strategy's position at this bar.
    pub fn position(&self) -> &Position {
        &self.pos
    }
}

/// A strategy that decides bar by bar. `Send + Sync`: an optimizer runs many at once.
pub trait Signal: Send + Sync {
    /// What to do for `view`'s symbol at its current bar's close.
    fn decide(&self, view: &View) -> Action;
}

/// Parameters handed to a strategy's constructor: the `params` table of its `[[signals.code]]`
/// entry, after any optimizer or `--set` change.
pub type Params = BTreeMap<String, f64>;

/// Builds a strategy from its parameters, or says which one is wrong and why.
pub type Factory = Arc<dyn Fn(&Params) -> Result<Arc<dyn Signal>, String> + Send + Sync>;

fn registry() -> &'static RwLock<BTreeMap<String, Factory>> {
    static R: OnceLock<RwLock<BTreeMap<String, Factory>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Make a strategy known to experiment files as `[[signals.code]] name = "<name>"`, for this
/// process (register before running; a second registration of a name replaces the first).
pub fn register(name: &str, factory: impl Fn(&Params) -> Result<Arc<dyn Signal>, String> + Send + Sync + 'static) {
    if let Ok(mut r) = registry().write() {
        r.insert(name.to_string(), Arc::new(factory));
    }
}

/// Names registered so far.
pub fn registered() -> Vec<String> {
    registry().read().map(|r| r.keys().cloned().collect()).unwrap_or_default()
}

/// Build the strategy registered under `name`.
pub(crate) fn build(name: &str, params: &Params) -> Result<Arc<dyn Signal>, String> {
    let f = registry().read().ok().and_then(|r| r.get(name).cloned());
    match f {
        Some(f) => f(params),
        None => {
            let known = registered();
            Err(if known.is_empty() {
                format!("no strategy '{name}' is registered: strategies written in Rust run from the program that registers them (see examples/custom_signal.rs), not from the plain tradelab binary")
            } else {
                format!("no strategy '{name}' is registered (registered: {})", known.join(", "))
            })
        }
    }
}

/// A symbol's strategy and the size of its positions, as prepared for a run.
#[derive(Clone)]
pub struct Driver {
    /// The strategy.
    pub signal: Arc<dyn Signal>,
    /// Strength level 1..=4 of its positions.
    pub strength: u8,
    /// Confidence of its positions.
    pub confidence: f64,
    /// The experiment key it came from (`signals.rules[0]`).
    pub key: String,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("key", &self.key).field("strength", &self.strength).field("confidence", &self.confidence).finish()
    }
}
