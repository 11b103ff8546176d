//! The `[rebalance]` and `[regime]` sections of an experiment file (keeping a portfolio at its
//! targets, and adapting to the market's regime), with their defaults; as in `sections`, each
//! field's doc comment is its documentation and unknown keys are rejected.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the rebalancer's target weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightScheme {
    /// `targets`, a weight per symbol; the rest is cash.
    #[default]
    Fixed,
    /// `invested / n` for each of `symbols` (all symbols when empty).
    Equal,
    /// Proportional to `1 / realized volatility` over `vol_window` bars, scaled to `invested`.
    InverseVol,
}

/// How far a rebalance trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeTo {
    /// Every symbol back to its target weight.
    #[default]
    Target,
    /// Only symbols outside their band, and only back to the band's nearer edge (less turnover).
    BandEdge,
}

/// Calendar rebalancing points (the first bar of each new UTC period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calendar {
    /// No calendar trigger.
    #[default]
    None,
    /// Each UTC day.
    Daily,
    /// Each ISO week (Monday).
    Weekly,
    /// Each calendar month.
    Monthly,
}

/// `[rebalance]`: keep the portfolio at target weights. When present, it replaces the decision
/// layer as the source of targets; signals, if any, only tilt the weights (`signal_tilt`).
///
/// Triggers: with only bands set, any bar whose close weights drift outside a band; with only a
/// calendar (or `every_bars`), each calendar point; with both, calendar points at which some
/// weight is outside its band. The first bar always allocates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RebalanceConfig {
    /// Target scheme.
    pub weights: WeightScheme,
    /// `fixed`: weight per symbol; the sum must be <= 1 (the rest is cash); symbols not listed are
    /// sold down.
    pub targets: BTreeMap<String, f64>,
    /// `equal` / `inverse_vol`: the symbols held (all when empty).
    pub symbols: Vec<String>,
    /// `equal` / `inverse_vol`: total weight invested (1); the rest is cash.
    pub invested: f64,
    /// `inverse_vol`: bars of realized volatility (720).
    pub vol_window: usize,
    /// Signals tilt each weight to `w * (1 + signal_tilt * vote)`, vote in [-1, 1] being the
    /// combined signal's direction x strength multiplier x confidence (0 = signals ignored).
    pub signal_tilt: f64,
    /// Lowest weight per symbol after tilting (0).
    pub min_weight: f64,
    /// Highest weight per symbol after tilting (1).
    pub max_weight: f64,
    /// Absolute band: rebalance when `|w - target| > band` for some symbol (0.05 unless a
    /// calendar is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<f64>,
    /// Relative band: rebalance when `|w - target| > relative_band * target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative_band: Option<f64>,
    /// Calendar trigger.
    pub calendar: Calendar,
    /// Also (or instead) every n bars (0 = off).
    pub every_bars: usize,
    /// How far to trade (the first allocation and a regime change's new targets always go to
    /// target).
    pub trade_to: TradeTo,
    /// Skip trades below this notional, in the quote currency (0).
    pub min_trade: f64,
    /// Accuracy: after `trade_to = "target"`, a weight within this of its target counts as on
    /// target (0.002); after `band_edge`, within the band.
    pub tolerance: f64,
}

impl Default for RebalanceConfig {
    fn default() -> Self {
        RebalanceConfig {
            weights: WeightScheme::Fixed,
            targets: BTreeMap::new(),
            symbols: Vec::new(),
            invested: 1.0,
            vol_window: 720,
            signal_tilt: 0.0,
            min_weight: 0.0,
            max_weight: 1.0,
            band: None,
            relative_band: None,
            calendar: Calendar::None,
            every_bars: 0,
            trade_to: TradeTo::Target,
            min_trade: 0.0,
            tolerance: 0.002,
        }
    }
}

/// Regime detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// Trend t-statistic and range-based volatility against its expanding median, with
    /// hysteresis (cheap, transparent, less accurate).
    Rules,
    /// A 4-state Markov-switching GARCH filter on every symbol's high-low range, its parameters
    /// fitted by maximum likelihood on past bars only (see `regime::msgarch`). The default: of
    /// the detectors measured on markets tradelab did not make (`docs/regimes.md`), the only one
    /// that beat the rules by 2 points; the HMM that was the default did not and was removed.
    #[default]
    MsGarch,
    /// A particle filter over (regime, shared variance) reading every symbol's range given its
    /// return, its parameters fitted on past bars only (see `regime::pf`).
    Pf,
}

/// `[regime]`: label each bar bull / bear / sideways / high_vol from data up to its close, and
/// switch parameter sets with the label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegimeConfig {
    /// Detector.
    pub detector: Detector,
    /// Symbol whose bars are classified (default: an equal-weight index of all symbols).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// Rules: bars of the trend t-statistic (336).
    pub trend_window: usize,
    /// Rules: |t| above this is a trend (1.0).
    pub trend_t: f64,
    /// Rules: half-life in bars of the volatility average (24).
    pub vol_halflife: f64,
    /// Rules: volatility above this multiple of its expanding median is high_vol (1.6).
    pub high_vol_ratio: f64,
    /// Rules: volatility below this multiple of its median is sideways (0.75).
    pub low_vol_ratio: f64,
    /// Rules: a new label must hold this many bars in a row before it is adopted (12).
    pub confirm_bars: usize,
    /// MS-GARCH, PF: expected regime length in bars; each state persists with probability
    /// `1 - 1/mean_bars` (200).
    pub mean_bars: f64,
    /// PF: hysteresis; a new label must have a posterior share this much above the held
    /// label's before it replaces it, in [0, 1) (0.5; 0 takes the likeliest regime every bar).
    pub switch_margin: f64,
    /// PF: a prior on the four regimes' relative volatilities, in any order (e.g. `[0.3, 0.5,
    /// 0.6, 1.2]`: only their ratios count); none by default. Short histories cannot tell which
    /// regime a level belongs to; a prior the user believes keeps the four states apart, and a
    /// long history outweighs it.
    pub level_prior: Option<[f64; 4]>,
    /// PF: how far, in `ln`, each fitted level may stray from `level_prior`, as the sd of a
    /// normal prior; 0 for none (0.05).
    pub level_prior_sd: f64,
    /// Every detector: divide each bar's volatility by its hour-of-day and day-of-week factor,
    /// estimated from the bars before it, before labelling (true). Intraday crypto volatility
    /// swings by about 1.5x between the quietest and busiest hours, which otherwise reads as
    /// regime changes.
    pub deseasonalize: bool,
    /// MS-GARCH, PF: bars before the first fit (labels come from the rules until then)
    /// (2000; 500 for the PF, whose fits are sound on fewer bars and which refits every warm-up's
    /// worth of bars until it has 4,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup: Option<usize>,
    /// MS-GARCH, PF: refit every this many bars, or a fortieth of the bars so far when that is longer
    /// (2000); the PF also refits every `warmup` bars until its history is 4,000 bars long.
    pub refit_every: usize,
    /// Parameters per regime (`bull`, `bear`, `sideways`, `high_vol`): tables of `signals`,
    /// `decision`, `risk` and `rebalance` fields, e.g. `[regime.overrides.high_vol]
    /// risk.max_position = 0.2`. They apply from the close of the bar whose label changed.
    pub overrides: BTreeMap<String, toml::Table>,
}

impl Default for RegimeConfig {
    fn default() -> Self {
        RegimeConfig {
            detector: Detector::MsGarch,
            symbol: None,
            trend_window: 336,
            trend_t: 1.0,
            vol_halflife: 24.0,
            high_vol_ratio: 1.6,
            low_vol_ratio: 0.75,
            confirm_bars: 12,
            mean_bars: 200.0,
            switch_margin: 0.5,
            level_prior: None,
            level_prior_sd: 0.05,
            deseasonalize: true,
            warmup: None,
            refit_every: 2000,
            overrides: BTreeMap::new(),
        }
    }
}

impl RegimeConfig {
    /// Bars before the first fit: `warmup` when set, else 500 for the PF and 2000 otherwise.
    pub fn warmup_bars(&self) -> usize {
        self.warmup.unwrap_or(match self.detector {
            Detector::Pf => 500,
            _ => 2000,
        })
    }
}
