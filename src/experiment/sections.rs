//! The sections of an experiment file, one struct per table, with their defaults. Each field's
//! doc comment is its documentation; unknown keys are rejected.

use crate::data::LoadOptions;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Search methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Every point of the grid (floats take `grid_points` values unless they have a step).
    Grid,
    /// A Latin hypercube of `budget` points.
    #[default]
    Random,
    /// A genetic algorithm (genevo).
    Genetic,
    /// Gaussian-process Bayesian optimization with expected improvement.
    Bayesian,
}

/// Whether the objective is to be maximized or minimized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better.
    #[default]
    Maximize,
    /// Smaller is better.
    Minimize,
}

/// `[optimize]`: a search over experiment fields named by their paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizeConfig {
    /// Search method.
    pub method: Method,
    /// Any statistic of `stats.json` (`sharpe`, `total_return`, `calmar`, ...).
    pub objective: String,
    /// Maximize or minimize the objective.
    pub direction: Direction,
    /// Evaluations (grid: ignored, every point is evaluated).
    pub budget: usize,
    /// Constraints on statistics, e.g. `"max_drawdown <= 0.25"`, `"trades >= 30"`. A candidate
    /// that breaks one is kept in `trials.csv` as infeasible and ranked below every feasible one.
    pub constraints: Vec<String>,
    /// Rules between parameters, e.g. `"signals.technical[0].fast < signals.technical[0].slow"`.
    /// Candidates that break one are not run (recorded as `rule` in `trials.csv`, except on a grid).
    pub rules: Vec<String>,
    /// Field path -> range: `[lo, hi]` (integers if both are), or a table with `min`, `max`,
    /// optional `step`, `log = true`, `int = true`, or `choices = [...]`.
    pub space: BTreeMap<String, toml::Value>,
    /// Values per float dimension on a grid (10).
    pub grid_points: usize,
    /// Candidates evaluated together (random, genetic generations are their own batches; Bayesian
    /// proposals per round) (8). Fixed, so results never depend on the thread count.
    pub batch: usize,
    /// Bayesian: random initial design size (10).
    pub initial: usize,
    /// Genetic: population size (24).
    pub population: usize,
    /// Genetic: tournament size (3).
    pub tournament: usize,
    /// Genetic: per-gene mutation probability (0.2).
    pub mutation_rate: f64,
    /// Genetic: best individuals kept unchanged per generation (2).
    pub elitism: usize,
    /// Walk-forward windows.
    pub walk_forward: WalkForwardConfig,
}

impl Default for OptimizeConfig {
    fn default() -> Self {
        OptimizeConfig {
            method: Method::Random,
            objective: "sharpe".into(),
            direction: Direction::Maximize,
            budget: 100,
            constraints: Vec::new(),
            rules: Vec::new(),
            space: BTreeMap::new(),
            grid_points: 10,
            batch: 8,
            initial: 10,
            population: 24,
            tournament: 3,
            mutation_rate: 0.2,
            elitism: 2,
            walk_forward: WalkForwardConfig::default(),
        }
    }
}

/// `[optimize.walk_forward]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalkForwardConfig {
    /// Number of test windows (4).
    pub windows: usize,
    /// Train length as a multiple of the test length (3).
    pub train_ratio: f64,
    /// Anchored: every train window starts at the first bar (else it rolls).
    pub anchored: bool,
}

impl Default for WalkForwardConfig {
    fn default() -> Self {
        WalkForwardConfig { windows: 4, train_ratio: 3.0, anchored: false }
    }
}

/// `[experiment]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Name; runs go to `reports/<name>/`.
    pub name: String,
    /// Seed of every random stream (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `[data]`: see [`LoadOptions`].
pub type DataConfig = LoadOptions;

/// `[portfolio]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortfolioConfig {
    /// Starting cash in the quote currency (default 10,000).
    pub initial_cash: f64,
    /// Whether short positions may be opened (default false).
    pub allow_short: bool,
    /// Annual borrow cost of short positions, as a fraction of their value, charged every bar
    /// from cash (0).
    pub borrow_rate: f64,
}

impl Default for PortfolioConfig {
    fn default() -> Self {
        PortfolioConfig { initial_cash: 10_000.0, allow_short: false, borrow_rate: 0.0 }
    }
}

/// Built-in technical signal kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Long while SMA(fast) > SMA(slow), short while below.
    SmaCross,
    /// Long while EMA(fast) > EMA(slow), short while below.
    EmaCross,
    /// Long when RSI(period) < lower (oversold), short when > upper.
    Rsi,
    /// Long while MACD line > its signal line, short while below.
    Macd,
    /// Mean reversion: long below the lower band, short above the upper (style `reversion`);
    /// breakout: the reverse (style `breakout`).
    Bollinger,
    /// Long when the `period`-bar return > threshold, short when < -threshold.
    Momentum,
    /// Long when close > the previous `period` bars' highest high, short when < their lowest low.
    Donchian,
}

/// Whether a signal holds while its condition holds, or fires only when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalMode {
    /// Emits every bar (flat when the condition is neither long nor short).
    #[default]
    State,
    /// Emits only on the bar where the direction changes to long or short (a strict cross).
    Event,
}

/// Signal strength levels; each maps to a multiplier in `decision.strength_multipliers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// Level 1.
    Weak,
    /// Level 2.
    Moderate,
    /// Level 3.
    Strong,
    /// Level 4 (default for technical signals).
    #[default]
    VeryStrong,
}

/// Bollinger style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandStyle {
    /// Fade moves outside the bands.
    #[default]
    Reversion,
    /// Follow moves outside the bands.
    Breakout,
}

/// `[[signals.technical]]`: one indicator signal. Parameters not used by `kind` are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TechnicalSignal {
    /// Which indicator.
    pub kind: SignalKind,
    /// Fast window (sma_cross, ema_cross, macd; default 12 for macd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast: Option<usize>,
    /// Slow window (sma_cross, ema_cross, macd; default 26 for macd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<usize>,
    /// MACD signal-line window (default 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<usize>,
    /// Window of rsi (14), bollinger (20), momentum (24), donchian (20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<usize>,
    /// RSI oversold level (30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    /// RSI overbought level (70).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// Bollinger band width in standard deviations (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std_dev: Option<f64>,
    /// Bollinger style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<BandStyle>,
    /// Momentum threshold on the n-bar return (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// State or event.
    #[serde(default)]
    pub mode: SignalMode,
    /// Strength it emits.
    #[serde(default)]
    pub strength: Strength,
    /// Confidence it emits, in [0, 1] (1).
    #[serde(default = "one")]
    pub confidence: f64,
    /// Source name for the combiner's weights (default: the kind, e.g. `sma_cross`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Symbols it applies to (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
}

fn one() -> f64 {
    1.0
}

/// `[[signals.files]]`: a file of externally made signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalFileConfig {
    /// CSV or Parquet with `timestamp, symbol, direction, strength, confidence, source`.
    pub path: PathBuf,
}

/// `[[signals.rules]]`: a strategy written as entry and exit expressions (see
/// [`crate::signals::rules`] for the language and its semantics). It decides the position of each
/// symbol it applies to, bar by bar, alone: no other signal may cover those symbols.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSignal {
    /// Go (or stay) long when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Leave a long position when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    /// Go (or stay) short when true (needs `portfolio.allow_short`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_entry: Option<String>,
    /// Leave a short position when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_exit: Option<String>,
    /// Named numbers the expressions use, searchable by path (`signals.rules[0].params.lo`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, f64>,
    /// Strength of its positions.
    #[serde(default)]
    pub strength: Strength,
    /// Confidence of its positions, in [0, 1] (1).
    #[serde(default = "one")]
    pub confidence: f64,
    /// Symbols it applies to (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
}

/// `[[signals.code]]`: a strategy written in Rust, registered under `name` by the program that
/// runs the experiment (see [`crate::signals::register`]). Like rules, it decides the position of
/// each symbol it applies to alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSignal {
    /// The name it was registered under.
    pub name: String,
    /// Numbers handed to its constructor, searchable by path (`signals.code[0].params.lo`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, f64>,
    /// Strength of its positions.
    #[serde(default)]
    pub strength: Strength,
    /// Confidence of its positions, in [0, 1] (1).
    #[serde(default = "one")]
    pub confidence: f64,
    /// Symbols it applies to (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
}

/// What a model learns to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelLabel {
    /// The sign of the return over the next `horizon` bars: up (long) or not (short).
    #[default]
    Forward,
    /// The first of three barriers the close reaches within `horizon` bars: `take_profit` above
    /// the entry close (long), `stop_loss` below it (short), or neither (flat).
    TripleBarrier,
}

/// Which learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// L2-regularised (multinomial) logistic regression on standardised features.
    #[default]
    Logistic,
    /// Bagged decision trees (bootstrap samples, fixed seeds); probability = the trees' vote.
    Forest,
}

/// `[[signals.models]]`: a classifier trained walk-forward on features of past bars, whose
/// predictions are a signal source like any other (see [`crate::signals::models`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSignal {
    /// Features, each an expression of the rules language that is a number (`"rsi(14)"`,
    /// `"close / sma(50) - 1"`, `"momentum(24)@ETHUSDT"`).
    pub features: Vec<String>,
    /// What is predicted.
    #[serde(default)]
    pub label: ModelLabel,
    /// Bars the label looks ahead (24).
    #[serde(default = "default_horizon")]
    pub horizon: usize,
    /// Upper barrier of `triple_barrier`, as a return (0.02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<f64>,
    /// Lower barrier of `triple_barrier`, as a loss (0.02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<f64>,
    /// The learner.
    #[serde(default)]
    pub model: ModelKind,
    /// L2 penalty of `logistic` (1).
    #[serde(default = "one")]
    pub l2: f64,
    /// Trees of `forest` (50).
    #[serde(default = "default_trees")]
    pub trees: usize,
    /// Depth limit of each tree (4).
    #[serde(default = "default_depth")]
    pub max_depth: u16,
    /// Fewest training samples in a leaf (20).
    #[serde(default = "default_leaf")]
    pub min_leaf: usize,
    /// Training samples per fit: the latest ones whose label is known (2000).
    #[serde(default = "default_train")]
    pub train_bars: usize,
    /// Bars between refits (500).
    #[serde(default = "default_refit")]
    pub refit_every: usize,
    /// Bars between the end of the last training label and the refit bar (default: `horizon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embargo: Option<usize>,
    /// Share of the training window, its latest part, held out to calibrate the probabilities
    /// (Platt); 0 for none (0.25).
    #[serde(default = "default_calibration")]
    pub calibration: f64,
    /// One model over every symbol's samples instead of one per symbol.
    #[serde(default)]
    pub pooled: bool,
    /// Source name for the combiner's weights (`model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Symbols it applies to (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
    /// Strength of its signals (confidence is the model's probability).
    #[serde(default)]
    pub strength: Strength,
    /// Seed of the forest's bootstrap samples and trees (0); its own, not the experiment's, so
    /// candidates that differ in other fields share one trained model.
    #[serde(default)]
    pub seed: u64,
}

fn default_horizon() -> usize {
    24
}
fn default_trees() -> usize {
    50
}
fn default_depth() -> u16 {
    4
}
fn default_leaf() -> usize {
    20
}
fn default_train() -> usize {
    2000
}
fn default_refit() -> usize {
    500
}
fn default_calibration() -> f64 {
    0.25
}

/// `[signals]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {
    /// Indicator signals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub technical: Vec<TechnicalSignal>,
    /// Signal files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SignalFileConfig>,
    /// Strategies written as expressions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSignal>,
    /// Strategies written in Rust.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub code: Vec<CodeSignal>,
    /// Classifiers trained walk-forward.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelSignal>,
    /// Weight per source in the combiner (1 when absent).
    pub weights: BTreeMap<String, f64>,
}

/// How the base size of a position is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sizing {
    /// `fraction` of equity.
    #[default]
    FixedFraction,
    /// `notional` in the quote currency.
    FixedNotional,
    /// `target_vol / realized annualized vol` of equity, capped at `fraction`.
    Volatility,
    /// `quantity` units per entry, whatever the equity (backtesting.py's `size=N`,
    /// backtrader's `FixedSize`); not with `[rebalance]`, which needs fractions.
    FixedQuantity,
}

/// `[decision]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionConfig {
    /// Combined signals below this confidence are ignored (positions held) (0).
    pub min_confidence: f64,
    /// Multipliers for weak, moderate, strong, very strong ([0.25, 0.5, 0.75, 1]).
    pub strength_multipliers: [f64; 4],
    /// Base size rule.
    pub sizing: Sizing,
    /// Base fraction of equity per symbol (1), and the cap for volatility sizing.
    pub fraction: f64,
    /// Base notional for `fixed_notional`.
    pub notional: f64,
    /// Units per entry for `fixed_quantity` (1).
    pub quantity: f64,
    /// Annualized volatility aimed at by `volatility` sizing (0.5).
    pub target_vol: f64,
    /// Bars of realized volatility for `volatility` sizing (720).
    pub vol_window: usize,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            min_confidence: 0.0,
            strength_multipliers: [0.25, 0.5, 0.75, 1.0],
            sizing: Sizing::FixedFraction,
            fraction: 1.0,
            notional: 1_000.0,
            quantity: 1.0,
            target_vol: 0.5,
            vol_window: 720,
        }
    }
}

/// What decides a bar that reaches both the stop and the take-profit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SameBarRule {
    /// The stop (the worse outcome) first.
    #[default]
    Adverse,
    /// The take-profit first.
    Favorable,
}

/// `[risk]`. Fractions are of equity (positions) or of entry price (stops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Max absolute position per symbol, fraction of equity (1).
    pub max_position: f64,
    /// Max sum of absolute positions, fraction of equity (1).
    pub max_gross_exposure: f64,
    /// Stop-loss distance from the entry price (fraction), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<f64>,
    /// Take-profit distance from the entry price, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<f64>,
    /// Trailing-stop distance from the best price since entry, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing_stop: Option<f64>,
    /// Who wins when one bar reaches both stop and take-profit.
    pub same_bar: SameBarRule,
    /// Whether stops may trigger on the bar whose open filled the entry (true). Entries filled
    /// at a bar's close are never checked against that bar.
    pub stop_on_entry_bar: bool,
    /// Halt: flatten and open nothing when equity falls this far below its peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_drawdown: Option<f64>,
    /// Bars the drawdown halt lasts (0 = for the rest of the run).
    pub halt_bars: usize,
    /// Flatten and open nothing for the rest of the UTC day after this daily loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_daily_loss: Option<f64>,
    /// Entries allowed per UTC day over all symbols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_trades_per_day: Option<u32>,
    /// Stop-loss distance as a multiple of ATR(`atr_period`) at entry, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_atr: Option<f64>,
    /// Trailing-stop distance as a multiple of ATR at entry, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing_atr: Option<f64>,
    /// Bars of Wilder's average true range for the ATR stops (14).
    pub atr_period: usize,
    /// Refuse to add to a symbol whose rolling return correlation with a symbol already held in
    /// the same direction exceeds this, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_correlation: Option<f64>,
    /// Bars of the rolling correlation (168).
    pub correlation_window: usize,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_position: 1.0,
            max_gross_exposure: 1.0,
            stop_loss: None,
            take_profit: None,
            trailing_stop: None,
            same_bar: SameBarRule::Adverse,
            stop_on_entry_bar: true,
            max_drawdown: None,
            halt_bars: 0,
            max_daily_loss: None,
            max_trades_per_day: None,
            stop_atr: None,
            trailing_atr: None,
            atr_period: 14,
            max_correlation: None,
            correlation_window: 168,
        }
    }
}

/// When orders decided at bar t's close are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillTiming {
    /// At the open of bar t+1+delay.
    #[default]
    NextOpen,
    /// At the close of bar t+1+delay.
    NextClose,
    /// At bar t's own close (market-on-close, as vectorized backtesters do).
    Close,
}

/// Order type the decision layer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// Fill at the fill-timing price.
    #[default]
    Market,
    /// Buy `limit_offset_bps` below (sell above) the decision bar's close; fills when a later bar
    /// trades through it, at the limit or the open if better.
    Limit,
    /// Buy `limit_offset_bps` above (sell below) the decision bar's close; fills when a later bar
    /// trades through it, at the stop or the open if worse, as a taker with slippage.
    Stop,
}

/// `[execution]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionConfig {
    /// Fill timing.
    pub fill: FillTiming,
    /// Extra bars of delay for `next_open` / `next_close`.
    pub delay_bars: usize,
    /// Taker fee (market and stop fills), bps of notional (10).
    pub fee_bps: f64,
    /// Maker fee (limit and take-profit fills), bps of notional (defaults to `fee_bps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maker_fee_bps: Option<f64>,
    /// Fixed fee per fill, in the quote currency (0).
    pub fixed_fee: f64,
    /// Slippage on market and stop fills, bps of price, against the trader (0).
    pub slippage_bps: f64,
    /// Extra slippage: `impact_bps * (fill qty / bar volume)` (0 = none).
    pub impact_bps: f64,
    /// At most this fraction of a bar's volume per fill; the rest waits for later bars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_participation: Option<f64>,
    /// Quantities are rounded down to a multiple of this (0 = no rounding).
    pub lot_size: f64,
    /// Fills below this notional are rejected (0).
    pub min_notional: f64,
    /// Fills below this quantity are rejected (1e-8, as vectorbt's `min_size`).
    pub min_qty: f64,
    /// Order type of signal orders.
    pub order_type: OrderType,
    /// Limit distance from the decision close, bps.
    pub limit_offset_bps: f64,
    /// Unfilled orders expire after this many bars (0 = good till cancelled).
    pub time_in_force_bars: usize,
    /// Day orders: unfilled orders expire at the end of the UTC day of the bar they could first
    /// fill on (false).
    pub time_in_force_day: bool,
    /// Lot size per symbol, overriding `lot_size` (e.g. `{ BTC = 0.00001, ETH = 0.0001 }`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub lot_sizes: BTreeMap<String, f64>,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            fill: FillTiming::NextOpen,
            delay_bars: 0,
            fee_bps: 10.0,
            maker_fee_bps: None,
            fixed_fee: 0.0,
            slippage_bps: 0.0,
            impact_bps: 0.0,
            max_participation: None,
            lot_size: 0.0,
            min_notional: 0.0,
            min_qty: 1e-8,
            order_type: OrderType::Market,
            limit_offset_bps: 0.0,
            time_in_force_bars: 0,
            time_in_force_day: false,
            lot_sizes: BTreeMap::new(),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Periods per year; default from the bars: 365-day years for a market that trades at
    /// weekends, 252 trading days for one that does not (see `data::time::bars_per_year`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods_per_year: Option<f64>,
    /// Annual risk-free rate subtracted in Sharpe and Sortino (0).
    pub risk_free: f64,
}
