//! Experiment files: the TOML schema (serde; unknown keys rejected with their path and a
//! suggestion), defaults, range checks with key paths, path resolution, and setting any field
//! by its path (`risk.stop_loss`, `signals.technical[0].fast`) for overrides and optimizers.
//!
//! Relative paths in an experiment (data, signal files) are resolved against the experiment
//! file's folder first, then against the working directory.

use crate::data::LoadOptions;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A whole experiment: one reproducible run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name and seed.
    pub experiment: Meta,
    /// Where the bars come from and how they are loaded.
    pub data: DataConfig,
    /// Starting capital and what positions may be held.
    #[serde(default)]
    pub portfolio: PortfolioConfig,
    /// Signals from indicators and from files.
    #[serde(default)]
    pub signals: SignalsConfig,
    /// From combined signal to target position.
    #[serde(default)]
    pub decision: DecisionConfig,
    /// Limits and stops.
    #[serde(default)]
    pub risk: RiskConfig,
    /// The execution simulator.
    #[serde(default)]
    pub execution: ExecutionConfig,
    /// Conventions of the statistics.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Parameter search (used by `tradelab optimize` and `walk-forward`; ignored by `run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize: Option<OptimizeConfig>,
}

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
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Periods per year; default from the timeframe with 365 trading days (crypto).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods_per_year: Option<f64>,
    /// Annual risk-free rate subtracted in Sharpe and Sortino (0).
    pub risk_free: f64,
}

/// An experiment read from a file, with the file's path kept for resolving relative paths.
#[derive(Debug, Clone)]
pub struct LoadedExperiment {
    /// The experiment.
    pub exp: Experiment,
    /// The file it came from.
    pub file: PathBuf,
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Turn serde's message into ours: `unknown key, did you mean stop_loss?`.
fn friendly(msg: &str) -> (Option<String>, String) {
    let first = msg.lines().next().unwrap_or(msg);
    let variant = first.strip_prefix("unknown variant `");
    if let Some(rest) = first.strip_prefix("unknown field `").or(variant) {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let best = expected.iter().map(|e| (edit_distance(name, e), *e)).min();
        let hint = match best {
            Some((d, e)) if d <= 2.max(name.len() / 3) => format!(", did you mean {e}?"),
            _ if !expected.is_empty() => format!("; expected one of {}", expected.join(", ")),
            _ => String::new(),
        };
        if variant.is_some() {
            return (None, format!("unknown value '{name}'{hint}"));
        }
        return (Some(name.to_string()), format!("unknown key{hint}"));
    }
    (None, first.to_string())
}

fn join_key(path: &str, leaf: Option<&str>) -> String {
    let path = if path == "." { "" } else { path };
    match leaf {
        Some(l) if path.is_empty() => l.to_string(),
        Some(l) if path == l || path.ends_with(&format!(".{l}")) => path.to_string(),
        Some(l) => format!("{path}.{l}"),
        None if path.is_empty() => "(top level)".into(),
        None => path.to_string(),
    }
}

impl Experiment {
    /// Parse TOML text; `file` names the source in errors.
    pub fn from_toml(text: &str, file: &Path) -> Result<Experiment> {
        let de = toml::Deserializer::new(text);
        let exp: Experiment = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let (leaf, msg) = friendly(e.inner().message());
            let line = e.inner().span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = match line {
                Some(l) => format!("{msg} (line {l})"),
                None => msg,
            };
            Error::Config { file: file.to_path_buf(), key: join_key(&path, leaf.as_deref()), msg }
        })?;
        exp.validate(file)?;
        Ok(exp)
    }

    /// Read and validate an experiment file.
    pub fn load(file: &Path) -> Result<LoadedExperiment> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        Ok(LoadedExperiment { exp: Experiment::from_toml(&text, file)?, file: file.to_path_buf() })
    }

    /// The experiment as TOML with every default filled in.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# could not serialize: {e}\n"))
    }

    /// A copy with the field at `path` set to `value` (TOML syntax, e.g. `0.05`, `"ffill"`),
    /// validated as if it had been written in the file.
    pub fn with_override(&self, path: &str, value: &str, file: &Path) -> Result<Experiment> {
        let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        self.with_value(path, parsed, file)
    }

    /// A copy with the field at `path` set to `value`, validated.
    pub fn with_value(&self, path: &str, value: toml::Value, file: &Path) -> Result<Experiment> {
        let root = toml::Value::try_from(self).map_err(|e| Error::Internal(e.to_string()))?;
        Experiment::from_value_with(root, &[(path.to_string(), value)], file)
    }

    /// An experiment from its TOML tree with fields set by path, validated (what every
    /// optimizer candidate is: the user's experiment with some fields changed).
    pub fn from_value_with(mut root: toml::Value, sets: &[(String, toml::Value)], file: &Path) -> Result<Experiment> {
        for (path, value) in sets {
            set_path(&mut root, path, value.clone()).map_err(|msg| Error::Config { file: file.to_path_buf(), key: path.clone(), msg })?;
        }
        // Straight from the tree when it is valid (fast, for sweeps); through text otherwise, for
        // an error with the key's path.
        if let Ok(exp) = Experiment::deserialize(root.clone()) {
            exp.validate(file)?;
            return Ok(exp);
        }
        let text = toml::to_string(&root).map_err(|e| Error::Internal(e.to_string()))?;
        Experiment::from_toml(&text, file)
    }

    /// Range checks, each error naming its key.
    pub fn validate(&self, file: &Path) -> Result<()> {
        let err = |key: String, msg: String| Err(Error::Config { file: file.to_path_buf(), key, msg });
        let frac_open = |key: &str, v: Option<f64>| -> Result<()> {
            match v {
                Some(x) if !(x > 0.0 && x < 1.0) => err(key.into(), format!("{x} must be a fraction in (0, 1)")),
                _ => Ok(()),
            }
        };
        if self.experiment.name.trim().is_empty() || self.experiment.name.contains(['/', '\\']) {
            return err("experiment.name".into(), "must be a non-empty name without slashes".into());
        }
        if self.data.path.is_none() && self.data.paths.is_empty() {
            return err("data.path".into(), "missing: give a file or folder of bars".into());
        }
        let p = &self.portfolio;
        if !(p.initial_cash.is_finite() && p.initial_cash > 0.0) {
            return err("portfolio.initial_cash".into(), format!("{} must be > 0", p.initial_cash));
        }
        for (i, s) in self.signals.technical.iter().enumerate() {
            let key = |k: &str| format!("signals.technical[{i}].{k}");
            let used: &[&str] = match s.kind {
                SignalKind::SmaCross | SignalKind::EmaCross => &["fast", "slow"],
                SignalKind::Macd => &["fast", "slow", "signal"],
                SignalKind::Rsi => &["period", "lower", "upper"],
                SignalKind::Bollinger => &["period", "std_dev", "style"],
                SignalKind::Momentum => &["period", "threshold"],
                SignalKind::Donchian => &["period"],
            };
            let given = [
                ("fast", s.fast.is_some()),
                ("slow", s.slow.is_some()),
                ("signal", s.signal.is_some()),
                ("period", s.period.is_some()),
                ("lower", s.lower.is_some()),
                ("upper", s.upper.is_some()),
                ("std_dev", s.std_dev.is_some()),
                ("style", s.style.is_some()),
                ("threshold", s.threshold.is_some()),
            ];
            for (name, set) in given {
                if set && !used.contains(&name) {
                    return err(key(name), format!("not used by {:?} (it takes {})", s.kind, used.join(", ")));
                }
            }
            let spec = crate::signals::Spec::from_config(s);
            if let Some(msg) = spec.check() {
                return err(key(msg.0), msg.1);
            }
            if !(0.0..=1.0).contains(&s.confidence) {
                return err(key("confidence"), format!("{} must be in [0, 1]", s.confidence));
            }
        }
        for (k, w) in &self.signals.weights {
            if !(w.is_finite() && *w >= 0.0) {
                return err(format!("signals.weights.{k}"), format!("{w} must be >= 0"));
            }
        }
        let d = &self.decision;
        if !(0.0..=1.0).contains(&d.min_confidence) {
            return err("decision.min_confidence".into(), format!("{} must be in [0, 1]", d.min_confidence));
        }
        if d.strength_multipliers.iter().any(|m| !(m.is_finite() && *m >= 0.0)) {
            return err("decision.strength_multipliers".into(), "each multiplier must be >= 0".into());
        }
        if !(d.fraction.is_finite() && d.fraction > 0.0) {
            return err("decision.fraction".into(), format!("{} must be > 0", d.fraction));
        }
        if !(d.notional > 0.0 && d.target_vol > 0.0) {
            return err("decision.notional".into(), "notional and target_vol must be > 0".into());
        }
        if d.vol_window < 2 {
            return err("decision.vol_window".into(), "must be >= 2".into());
        }
        let r = &self.risk;
        if !(r.max_position > 0.0 && r.max_position.is_finite()) {
            return err("risk.max_position".into(), format!("{} must be > 0", r.max_position));
        }
        if !(r.max_gross_exposure > 0.0 && r.max_gross_exposure.is_finite()) {
            return err("risk.max_gross_exposure".into(), format!("{} must be > 0", r.max_gross_exposure));
        }
        frac_open("risk.stop_loss", r.stop_loss)?;
        frac_open("risk.trailing_stop", r.trailing_stop)?;
        frac_open("risk.max_drawdown", r.max_drawdown)?;
        frac_open("risk.max_daily_loss", r.max_daily_loss)?;
        for (k, v) in [("risk.stop_atr", r.stop_atr), ("risk.trailing_atr", r.trailing_atr)] {
            if let Some(x) = v {
                if !(x > 0.0 && x.is_finite()) {
                    return err(k.into(), format!("{x} must be > 0"));
                }
            }
        }
        if r.atr_period < 1 {
            return err("risk.atr_period".into(), "must be >= 1".into());
        }
        if let Some(c) = r.max_correlation {
            if !(-1.0..=1.0).contains(&c) {
                return err("risk.max_correlation".into(), format!("{c} must be in [-1, 1]"));
            }
        }
        if r.correlation_window < 3 {
            return err("risk.correlation_window".into(), "must be >= 3".into());
        }
        if !(p.borrow_rate >= 0.0 && p.borrow_rate.is_finite()) {
            return err("portfolio.borrow_rate".into(), format!("{} must be >= 0", p.borrow_rate));
        }
        if let Some(tp) = r.take_profit {
            if !(tp > 0.0 && tp.is_finite()) {
                return err("risk.take_profit".into(), format!("{tp} must be > 0"));
            }
        }
        let x = &self.execution;
        for (k, v) in [
            ("fee_bps", x.fee_bps),
            ("maker_fee_bps", x.maker_fee_bps.unwrap_or(0.0)),
            ("fixed_fee", x.fixed_fee),
            ("slippage_bps", x.slippage_bps),
            ("impact_bps", x.impact_bps),
            ("lot_size", x.lot_size),
            ("min_notional", x.min_notional),
            ("min_qty", x.min_qty),
            ("limit_offset_bps", x.limit_offset_bps),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return err(format!("execution.{k}"), format!("{v} must be >= 0"));
            }
        }
        if x.fee_bps >= 10_000.0 {
            return err("execution.fee_bps".into(), format!("{} bps is 100% or more", x.fee_bps));
        }
        if let Some(p) = x.max_participation {
            if !(p > 0.0 && p <= 1.0) {
                return err("execution.max_participation".into(), format!("{p} must be in (0, 1]"));
            }
        }
        if x.fill == FillTiming::Close && x.delay_bars > 0 {
            return err("execution.delay_bars".into(), "must be 0 with fill = \"close\"".into());
        }
        if let Some(o) = &self.optimize {
            if let Err((key, msg)) = crate::optimize::check_config(self, o) {
                return err(key, msg);
            }
        }
        if let Some(n) = self.metrics.periods_per_year {
            if !(n > 0.0 && n.is_finite()) {
                return err("metrics.periods_per_year".into(), format!("{n} must be > 0"));
            }
        }
        Ok(())
    }
}

/// Set `path` (dot-separated keys, `[i]` for array items) inside a TOML value, creating tables
/// for missing keys.
pub fn set_path(root: &mut toml::Value, path: &str, value: toml::Value) -> std::result::Result<(), String> {
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (n, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => {
                let i: usize = rest.trim_end_matches(']').parse().map_err(|_| format!("bad index in '{part}'"))?;
                (name, Some(i))
            }
            None => (*part, None),
        };
        let last = n + 1 == parts.len();
        let table = cur.as_table_mut().ok_or_else(|| format!("'{name}' is inside a value that is not a table"))?;
        if last && index.is_none() {
            table.insert(name.to_string(), value);
            return Ok(());
        }
        cur = table.entry(name.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(i) = index {
            let arr = cur.as_array_mut().ok_or_else(|| format!("'{name}' is not a list"))?;
            let len = arr.len();
            cur = arr.get_mut(i).ok_or_else(|| format!("'{name}' has {len} items, no [{i}]"))?;
            if last {
                *cur = value;
                return Ok(());
            }
        }
    }
    Ok(())
}

impl LoadedExperiment {
    /// Resolve a path written in the experiment: against the experiment file's folder if that
    /// exists, else against the working directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            return p.to_path_buf();
        }
        let beside = self.file.parent().unwrap_or(Path::new(".")).join(p);
        if beside.exists() {
            beside
        } else {
            p.to_path_buf()
        }
    }

    /// The experiment with every relative path (data, signal files) made absolute, so a copy
    /// written anywhere (a run folder, `best.toml`) runs as it stands.
    pub fn with_absolute_paths(&self) -> Experiment {
        let abs = |p: &Path| {
            let r = self.resolve(p);
            std::fs::canonicalize(&r).unwrap_or(r)
        };
        let mut e = self.exp.clone();
        e.data.path = e.data.path.as_deref().map(abs);
        e.data.paths = e.data.paths.iter().map(|p| abs(p)).collect();
        for f in e.signals.files.iter_mut() {
            f.path = abs(&f.path);
        }
        e
    }

    /// The data paths, resolved.
    pub fn data_paths(&self) -> Vec<PathBuf> {
        let d = &self.exp.data;
        d.path.iter().chain(d.paths.iter()).map(|p| self.resolve(p)).collect()
    }
}
