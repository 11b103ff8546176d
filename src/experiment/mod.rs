//! Experiment files: the TOML schema (serde; unknown keys rejected with their path and a
//! suggestion), defaults, range checks with key paths, path resolution, and setting any field
//! by its path (`risk.stop_loss`, `signals.technical[0].fast`) for overrides and optimizers.
//!
//! Relative paths in an experiment (data, signal files) are resolved against the experiment
//! file's folder first, then against the working directory.

mod rebalance_regime;
mod sections;

pub use rebalance_regime::*;
pub use sections::*;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
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
    /// Target weights and their upkeep (replaces the decision layer's targets when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceConfig>,
    /// Market-regime labels and per-regime parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regime: Option<RegimeConfig>,
    /// Parameter search (used by `tradelab optimize` and `walk-forward`; ignored by `run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize: Option<OptimizeConfig>,
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
        if let Ok(toml::Value::Table(t)) = text.parse::<toml::Value>() {
            let empty = |k: &str| t.get("data").and_then(|d| d.get(k)).and_then(|v| v.as_array()).is_some_and(|a| a.is_empty());
            if empty("symbols") {
                return Err(Error::Config {
                    file: file.to_path_buf(),
                    key: "data.symbols".into(),
                    msg: "is an empty list: name the symbols to keep, or leave the key out to keep them all".into(),
                });
            }
        }
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

    /// As [`from_value_with`](Self::from_value_with) for a base experiment `self` that is
    /// `root` read as it stands: only the sections the paths lead into are read again from
    /// their subtrees (a sweep's candidates differ in a few keys of one or two sections, and
    /// reading the whole tree for each was most of a candidate's set-up). Any path or section
    /// this cannot take goes through `from_value_with`, for the same result and error.
    pub fn with_sets(&self, root: &toml::Value, sets: &[(String, toml::Value)], file: &Path) -> Result<Experiment> {
        let mut exp = self.clone();
        let mut done: Vec<&str> = Vec::new();
        for (path, _) in sets {
            let Some((sec, _)) = path.split_once('.') else { return Experiment::from_value_with(root.clone(), sets, file) };
            if done.contains(&sec) {
                continue;
            }
            done.push(sec);
            let mut sub = root.get(sec).cloned().unwrap_or_else(|| toml::Value::Table(Default::default()));
            for (p, v) in sets {
                if let Some((s, rest)) = p.split_once('.') {
                    if s == sec && set_path(&mut sub, rest, v.clone()).is_err() {
                        return Experiment::from_value_with(root.clone(), sets, file);
                    }
                }
            }
            if exp.read_section(sec, sub).is_err() {
                return Experiment::from_value_with(root.clone(), sets, file);
            }
        }
        exp.validate(file)?;
        Ok(exp)
    }

    /// Replace section `name` (a top-level key) with `value` read as that section.
    fn read_section(&mut self, name: &str, value: toml::Value) -> std::result::Result<(), String> {
        let e = |x: toml::de::Error| x.to_string();
        match name {
            "experiment" => self.experiment = Meta::deserialize(value).map_err(e)?,
            "data" => self.data = DataConfig::deserialize(value).map_err(e)?,
            "portfolio" => self.portfolio = PortfolioConfig::deserialize(value).map_err(e)?,
            "signals" => self.signals = SignalsConfig::deserialize(value).map_err(e)?,
            "decision" => self.decision = DecisionConfig::deserialize(value).map_err(e)?,
            "risk" => self.risk = RiskConfig::deserialize(value).map_err(e)?,
            "execution" => self.execution = ExecutionConfig::deserialize(value).map_err(e)?,
            "metrics" => self.metrics = MetricsConfig::deserialize(value).map_err(e)?,
            "rebalance" => self.rebalance = Some(RebalanceConfig::deserialize(value).map_err(e)?),
            "regime" => self.regime = Some(RegimeConfig::deserialize(value).map_err(e)?),
            "optimize" => self.optimize = Some(OptimizeConfig::deserialize(value).map_err(e)?),
            _ => return Err(format!("no section {name}")),
        }
        Ok(())
    }

    /// The schema's own range checks, each error naming its key. The sections other modules
    /// interpret are checked by them: signal parameters and regime overrides by
    /// [`crate::engine::check`] (every run calls it), the search by
    /// [`crate::optimize::check_config`] (every search calls it).
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
        if !(self.data.max_price_jump.is_finite() && self.data.max_price_jump > 1.0) {
            return err("data.max_price_jump".into(), format!("{} must be a factor > 1", self.data.max_price_jump));
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
            if !(0.0..=1.0).contains(&s.confidence) {
                return err(key("confidence"), format!("{} must be in [0, 1]", s.confidence));
            }
        }
        let rules = self.signals.rules.iter().enumerate().map(|(i, r)| (i, &r.params, r.confidence, "rules"));
        let code = self.signals.code.iter().enumerate().map(|(i, c)| (i, &c.params, c.confidence, "code"));
        for (i, params, confidence, kind) in rules.chain(code) {
            if !(0.0..=1.0).contains(&confidence) {
                return err(format!("signals.{kind}[{i}].confidence"), format!("{confidence} must be in [0, 1]"));
            }
            if let Some((k, v)) = params.iter().find(|(_, v)| !v.is_finite()) {
                return err(format!("signals.{kind}[{i}].params.{k}"), format!("{v} must be a finite number"));
            }
            if self.rebalance.is_some() {
                return err(
                    format!("signals.{kind}[{i}]"),
                    "[rebalance] sets positions from target weights; a strategy cannot drive them too (drop one)".into(),
                );
            }
        }
        for (i, m) in self.signals.models.iter().enumerate() {
            let key = |k: &str| format!("signals.models[{i}].{k}");
            let checks: [(&str, bool, String); 9] = [
                ("features", !m.features.is_empty(), "needs at least one feature expression".into()),
                ("horizon", m.horizon >= 1, format!("must be >= 1 bar, not {}", m.horizon)),
                ("l2", m.l2.is_finite() && m.l2 >= 0.0, format!("must be >= 0, not {}", m.l2)),
                ("trees", m.trees >= 1 && m.trees <= 1000, format!("must be in 1..=1000, not {}", m.trees)),
                ("max_depth", m.max_depth >= 1, "must be >= 1".into()),
                ("min_leaf", m.min_leaf >= 1, "must be >= 1".into()),
                ("train_bars", m.train_bars >= 50, format!("must be >= 50 samples, not {}", m.train_bars)),
                ("refit_every", m.refit_every >= 1, "must be >= 1 bar".into()),
                (
                    "calibration",
                    (0.0..=0.5).contains(&m.calibration),
                    format!("a share of the training window in [0, 0.5], not {}", m.calibration),
                ),
            ];
            if let Some((k, _, msg)) = checks.into_iter().find(|c| !c.1) {
                return err(key(k), msg);
            }
            let barriers = [("take_profit", m.take_profit), ("stop_loss", m.stop_loss)];
            for (k, v) in barriers {
                match (m.label, v) {
                    (ModelLabel::TripleBarrier, None) => {
                        return err(key(k), "triple_barrier needs take_profit and stop_loss, as returns (0.02)".into())
                    }
                    (ModelLabel::TripleBarrier, Some(x)) if !(x > 0.0 && x < 1.0) => {
                        return err(key(k), format!("{x} must be a return in (0, 1)"))
                    }
                    (ModelLabel::Forward, Some(_)) => return err(key(k), "only used by label = \"triple_barrier\"".into()),
                    _ => {}
                }
            }
        }
        for (i, r) in self.signals.rules.iter().enumerate() {
            if r.entry.is_none() && r.short_entry.is_none() {
                return err(format!("signals.rules[{i}]"), "needs `entry` or `short_entry` (or both)".into());
            }
            if !self.portfolio.allow_short {
                if let Some(k) =
                    [("short_entry", &r.short_entry), ("short_exit", &r.short_exit)].iter().find(|(_, v)| v.is_some()).map(|(k, _)| k)
                {
                    return err(format!("signals.rules[{i}].{k}"), "short rules need portfolio.allow_short = true".into());
                }
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
        let most = d.strength_multipliers.iter().fold(0.0f64, |a, m| a.max(*m));
        if matches!(d.sizing, Sizing::FixedFraction | Sizing::Volatility) && d.fraction * most > 1.0 + 1e-12 {
            return err(
                "decision.fraction".into(),
                format!(
                    "{} times the largest strength multiplier {most} asks for more than 100% of equity; leverage (margin) is not modelled, so the most is 1",
                    d.fraction
                ),
            );
        }
        if !(d.quantity.is_finite() && d.quantity > 0.0) {
            return err("decision.quantity".into(), format!("{} must be > 0", d.quantity));
        }
        if d.sizing == Sizing::FixedQuantity && self.rebalance.is_some() {
            return err(
                "decision.sizing".into(),
                "fixed_quantity sets units, and [rebalance] needs fractions of equity; use fixed_fraction".into(),
            );
        }
        if !(d.notional > 0.0 && d.notional.is_finite()) {
            return err("decision.notional".into(), format!("{} must be a finite number > 0", d.notional));
        }
        if !(d.target_vol > 0.0 && d.target_vol.is_finite()) {
            return err("decision.target_vol".into(), format!("{} must be a finite number > 0", d.target_vol));
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
        if x.slippage_bps >= 10_000.0 {
            return err(
                "execution.slippage_bps".into(),
                format!("{} bps is 100% or more: a sell would fill at a price <= 0", x.slippage_bps),
            );
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
        for (k, v) in &x.lot_sizes {
            if !(v.is_finite() && *v >= 0.0) {
                return err(format!("execution.lot_sizes.{k}"), format!("{v} must be >= 0"));
            }
        }
        if let Some(rb) = &self.rebalance {
            let unit = |key: &str, v: f64| -> Result<()> {
                if (0.0..=1.0).contains(&v) {
                    Ok(())
                } else {
                    err(format!("rebalance.{key}"), format!("{v} must be in [0, 1]"))
                }
            };
            unit("min_weight", rb.min_weight)?;
            unit("max_weight", rb.max_weight)?;
            unit("invested", rb.invested)?;
            if rb.min_weight > rb.max_weight {
                return err("rebalance.min_weight".into(), format!("{} is above max_weight {}", rb.min_weight, rb.max_weight));
            }
            let mut sum = 0.0;
            for (k, w) in &rb.targets {
                let key = format!("targets.{k}");
                unit(&key, *w)?;
                if *w < rb.min_weight || *w > rb.max_weight {
                    return err(
                        format!("rebalance.{key}"),
                        format!("{w} is outside [min_weight, max_weight] = [{}, {}]", rb.min_weight, rb.max_weight),
                    );
                }
                sum += w;
            }
            if sum > 1.0 + 1e-9 {
                return err("rebalance.targets".into(), format!("weights sum to {sum}; at most 1 (the rest is cash)"));
            }
            if rb.weights != WeightScheme::Fixed && !rb.targets.is_empty() {
                return err("rebalance.targets".into(), format!("only used with weights = \"fixed\" (weights is {:?})", rb.weights));
            }
            for (k, v) in [("band", rb.band), ("relative_band", rb.relative_band)] {
                if let Some(b) = v {
                    if !(b > 0.0 && b <= 1.0) {
                        return err(format!("rebalance.{k}"), format!("{b} must be in (0, 1]"));
                    }
                }
            }
            if !(rb.tolerance > 0.0 && rb.tolerance < 1.0) {
                return err("rebalance.tolerance".into(), format!("{} must be in (0, 1)", rb.tolerance));
            }
            if !(rb.min_trade >= 0.0 && rb.min_trade.is_finite() && rb.signal_tilt >= 0.0 && rb.signal_tilt.is_finite()) {
                return err("rebalance.min_trade".into(), "min_trade and signal_tilt must be >= 0".into());
            }
            if rb.vol_window < 2 {
                return err("rebalance.vol_window".into(), "must be >= 2".into());
            }
            if self.portfolio.allow_short {
                return err("portfolio.allow_short".into(), "rebalancing targets are long-only weights; set allow_short = false".into());
            }
        }
        if let Some(rg) = &self.regime {
            let counts = [
                ("trend_window", rg.trend_window >= 2, format!("must be >= 2, not {}", rg.trend_window)),
                (
                    "mean_bars",
                    rg.mean_bars >= 2.0 && rg.mean_bars.is_finite(),
                    format!("must be a finite number >= 2, not {}", rg.mean_bars),
                ),
                ("confirm_bars", rg.confirm_bars >= 1, format!("must be >= 1, not {}", rg.confirm_bars)),
                ("refit_every", rg.refit_every >= 1, "must be >= 1, not 0".to_string()),
            ];
            if let Some((key, _, msg)) = counts.into_iter().find(|c| !c.1) {
                return err(format!("regime.{key}"), msg);
            }
            if !(0.0..1.0).contains(&rg.switch_margin) {
                return err("regime.switch_margin".into(), format!("must be in [0, 1), not {}", rg.switch_margin));
            }
            if rg.level_prior.is_some_and(|l| l.iter().any(|v| !(v.is_finite() && *v > 0.0))) {
                return err("regime.level_prior".into(), "four relative volatilities, each > 0".into());
            }
            if !(rg.level_prior_sd >= 0.0 && rg.level_prior_sd.is_finite()) {
                return err("regime.level_prior_sd".into(), format!("must be >= 0 (0 for no prior), not {}", rg.level_prior_sd));
            }
            let levels = [
                ("vol_halflife", rg.vol_halflife, rg.vol_halflife > 0.0 && rg.vol_halflife.is_finite(), "a finite number > 0"),
                ("low_vol_ratio", rg.low_vol_ratio, rg.low_vol_ratio > 0.0 && rg.low_vol_ratio < 1.0, "in (0, 1)"),
                ("high_vol_ratio", rg.high_vol_ratio, rg.high_vol_ratio > 1.0 && rg.high_vol_ratio.is_finite(), "a finite number > 1"),
                ("trend_t", rg.trend_t, rg.trend_t >= 0.0 && rg.trend_t.is_finite(), "a finite number >= 0"),
            ];
            if let Some((key, got, _, want)) = levels.into_iter().find(|c| !c.2) {
                return err(format!("regime.{key}"), format!("must be {want}, not {got}"));
            }
        }
        let rf = self.metrics.risk_free;
        if !(rf > -1.0 && rf.is_finite()) {
            // A rate of -100% or below has no meaning, and a NaN would make every Sharpe NaN.
            return err("metrics.risk_free".into(), format!("{rf} must be a finite annual rate above -1 (0.04 for 4%)"));
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
    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    for (n, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => {
                let i = rest.strip_suffix(']').and_then(|d| d.parse::<usize>().ok());
                match i {
                    Some(i) if word(name) => (name, Some(i)),
                    _ => return Err(format!("'{part}' in '{path}' is not a key or key[index] (e.g. signals.technical[0].fast)")),
                }
            }
            None if word(part) => (*part, None),
            None => return Err(format!("'{part}' in '{path}' is not a key (e.g. signals.technical[0].fast)")),
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
