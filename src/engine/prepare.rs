//! What every run over the same data and signals shares, computed once: combined signals
//! (through the shared indicator cache), realized volatility, ATR, rolling correlations.

use crate::data::MarketData;
use crate::decision;
use crate::error::Result;
use crate::experiment::{LoadedExperiment, Sizing};
use crate::signals::{self, Combined, IndicatorCache};
use std::sync::Arc;

/// What every run over the same data and signals shares, computed once.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The bars.
    pub md: Arc<MarketData>,
    /// Combined signal per symbol.
    pub combined: Vec<Combined>,
    /// Annualized realized volatility per symbol (only for volatility sizing).
    pub vol: Vec<Vec<f64>>,
    /// Periods per year for metrics.
    pub per_year: f64,
    /// ATR per symbol (only for ATR stops).
    pub atr: Vec<super::signals::Series>,
    /// Rolling return correlation per symbol pair `(i, j)`, i < j, at index `i * n_sym + j`
    /// (only for the correlation cap).
    pub corr: Vec<Vec<f64>>,
    /// Lot size per symbol id.
    pub lots: Vec<f64>,
    /// Targets, members and volatility of the rebalancer (with `[rebalance]`).
    pub rebalance: Option<crate::rebalance::RebalancePrep>,
    /// Labels and per-regime parameter sets (with `[regime]`).
    pub regime: Option<RegimePrep>,
    /// What preparing the inputs warns about (signal rows outside the data), for `stats.json`.
    pub warnings: Vec<String>,
    /// The strategy deciding each symbol bar by bar (`[[signals.rules]]`, `[[signals.code]]`),
    /// where one does instead of the combined signal.
    pub drivers: Vec<Option<signals::Driver>>,
    /// The indicator cache the inputs were computed through (strategies read it as they run).
    pub cache: Arc<IndicatorCache>,
    /// What each `[[signals.models]]` entry predicted, and its refits.
    pub models: Vec<Arc<signals::models::ModelOutput>>,
}

/// Regime labels and the parameter set each regime runs with.
#[derive(Debug, Clone)]
pub struct RegimePrep {
    /// Detected regime id per bar and the two axes it is named from (see [`crate::regime`]).
    pub labels: std::sync::Arc<crate::regime::Labels>,
    /// Experiments with a regime's overrides applied, each prepared.
    pub variants: Vec<(crate::experiment::Experiment, Prepared)>,
    /// Index into `variants` per regime id (None: the base experiment).
    pub which: [Option<usize>; 4],
}

/// Check what the schema leaves to the modules that interpret it: each technical signal's
/// parameters (by [`crate::signals::Spec::check`]) and, with `[regime]`, every regime's
/// parameter set (built and validated by [`crate::regime::variants`]). Errors name the key.
pub fn check(exp: &crate::experiment::Experiment, file: &std::path::Path) -> Result<()> {
    check_signals(exp, file)?;
    if exp.regime.is_some() {
        crate::regime::variants(exp, file)?;
    }
    Ok(())
}

/// The key a strategy's construction error names: its name when nothing is registered under
/// it, else its parameters (the constructor refused them).
fn code_key(i: usize, name: &str) -> String {
    let part = if signals::registered().iter().any(|n| n == name) { "params" } else { "name" };
    format!("signals.code[{i}].{part}")
}

fn check_signals(exp: &crate::experiment::Experiment, file: &std::path::Path) -> Result<()> {
    let cfg_err = |key: String, msg: String| crate::Error::Config { file: file.to_path_buf(), key, msg };
    for (i, s) in exp.signals.technical.iter().enumerate() {
        if let Some((k, msg)) = crate::signals::Spec::from_config(s).check() {
            return Err(cfg_err(format!("signals.technical[{i}].{k}"), msg));
        }
    }
    // Rules are parsed here; names, types and windows are checked against the data in `prepare`.
    for (i, r) in exp.signals.rules.iter().enumerate() {
        for (name, src) in [("entry", &r.entry), ("exit", &r.exit), ("short_entry", &r.short_entry), ("short_exit", &r.short_exit)] {
            if let Some(src) = src {
                signals::rules::parse(src)
                    .map_err(|e| cfg_err(format!("signals.rules[{i}].{name}"), format!("column {} of \"{src}\": {}", e.col, e.msg)))?;
            }
        }
    }
    for (i, m) in exp.signals.models.iter().enumerate() {
        for (j, f) in m.features.iter().enumerate() {
            if !signals::models::REGIME_FEATURES.contains(&f.trim()) {
                signals::rules::parse(f).map_err(|e| {
                    cfg_err(format!("signals.models[{i}].features[{j}]"), format!("column {} of \"{f}\": {}", e.col, e.msg))
                })?;
            }
        }
    }
    for (i, c) in exp.signals.code.iter().enumerate() {
        signals::build_code(&c.name, &c.params).map_err(|m| cfg_err(code_key(i, &c.name), m))?;
    }
    Ok(())
}

/// Compute signals (through the shared indicator cache) and everything else a run reads.
pub fn prepare(le: &LoadedExperiment, md: Arc<MarketData>, cache: &Arc<IndicatorCache>) -> Result<Prepared> {
    prepare_with(le, md, cache, true)
}

/// [`prepare`], or with `signals` false everything but the technical signals' series and the
/// combined signals (left empty: the batch path makes them tile by tile), checks included.
pub(super) fn prepare_with(le: &LoadedExperiment, md: Arc<MarketData>, cache: &Arc<IndicatorCache>, signals: bool) -> Result<Prepared> {
    let exp = &le.exp;
    // Regime overrides are checked where the variants are built, below.
    check_signals(exp, &le.file)?;
    let n = md.len();
    if exp.execution.delay_bars + 1 >= n {
        return Err(crate::Error::Config {
            file: le.file.clone(),
            key: "execution.delay_bars".into(),
            msg: format!("{} puts every fill past the data's {n} bars", exp.execution.delay_bars),
        });
    }
    let mut warnings = Vec::new();
    let mut per_sym: Vec<Vec<signals::Stream>> = vec![Vec::new(); md.symbols.len()];
    for (i, cfg) in exp.signals.technical.iter().enumerate() {
        covered(le, &md, &format!("signals.technical[{i}]"), &cfg.symbols)?;
        let warmup = signals::Spec::from_config(cfg).warmup();
        if warmup >= n {
            return Err(crate::Error::Config {
                file: le.file.clone(),
                key: format!("signals.technical[{i}]"),
                msg: format!("needs {warmup} bars of history before its first signal, and the data has {n}: it could never trade"),
            });
        }
        for (s, bars) in md.bars.iter().enumerate() {
            if cfg.symbols.is_empty() || cfg.symbols.contains(&md.symbols[s]) {
                per_sym[s].push(if signals {
                    signals::technical_stream(cfg, s, bars, cache)
                } else {
                    signals::technical_of(cfg, Vec::new(), None)
                });
            }
        }
    }
    for f in &exp.signals.files {
        let path = le.resolve(&f.path);
        let rows = signals::read_signal_file(&path)?;
        let span = signals::usable_span(&md);
        let (before, after) = (rows.iter().filter(|r| r.ts < span.start).count(), rows.iter().filter(|r| r.ts >= span.end).count());
        if before + after > 0 {
            let w = format!(
                "{}: {before} row(s) before the first bar and {after} after the last bar's end were dropped (a signal from after the data would trade on information the bars do not have)",
                path.display()
            );
            tracing::warn!("{w}");
            warnings.push(w);
        }
        for (s, st) in signals::file_streams(&path, &rows, &md)? {
            per_sym[s].push(st);
        }
    }
    // Regime labels as model features (computed once per detector setting, as below).
    let mut regime_cols = std::collections::BTreeMap::new();
    if let Some(rc) = &exp.regime {
        if exp.signals.models.iter().flat_map(|m| &m.features).any(|f| signals::models::REGIME_FEATURES.contains(&f.trim())) {
            let l = regime_labels(rc, &md, cache);
            for (id, name) in signals::models::REGIME_FEATURES[..4].iter().enumerate() {
                regime_cols.insert(*name, l.label.iter().map(|&x| f64::from(u8::from(x as usize == id))).collect());
            }
            regime_cols.insert("regime_trend_t", l.trend_t.clone());
        }
    }
    let mut models = Vec::new();
    for (i, m) in exp.signals.models.iter().enumerate() {
        let syms = covered(le, &md, &format!("signals.models[{i}]"), &m.symbols)?;
        // Trained once per entry and data, whatever else a candidate changes.
        let key = format!("model {i} {syms:?} {}", toml::to_string(m).unwrap_or_default());
        let key = format!("{key} {:?}", exp.regime.as_ref().map(detector_key));
        let out = cache.shared(key, || signals::models::train(m, i, &md, cache, &syms, &regime_cols).map(Arc::new));
        let out = match &*out {
            Ok(o) => o.clone(),
            Err((key, msg)) => return Err(crate::Error::Config { file: le.file.clone(), key: key.clone(), msg: msg.clone() }),
        };
        for &s in &syms {
            if let Some(p) = &out.per_sym[s] {
                per_sym[s].push(signals::models::stream(m, p));
            }
        }
        models.push(out);
    }
    let drivers = drivers(le, &md, cache, &per_sym)?;
    // A weight for a source that no signal has is a typo, not a choice: say so.
    for k in exp.signals.weights.keys() {
        if !per_sym.iter().flatten().any(|st| &st.source == k) {
            let mut known: Vec<&str> = per_sym.iter().flatten().map(|st| st.source.as_str()).collect();
            known.sort_unstable();
            known.dedup();
            return Err(crate::Error::Config {
                file: le.file.clone(),
                key: format!("signals.weights.{k}"),
                msg: format!("no signal has this source (sources: {})", known.join(", ")),
            });
        }
    }
    let mults = &exp.decision.strength_multipliers;
    let combined = if !signals {
        Vec::new()
    } else {
        per_sym
            .into_iter()
            .map(|mut streams| {
                if is_single(&streams, &exp.signals.weights, mults) {
                    let st = streams.pop().expect("one stream");
                    Combined::of_stream(st)
                } else {
                    let refs: Vec<&signals::Stream> = streams.iter().collect();
                    signals::combine(&refs, &exp.signals.weights, mults, n)
                }
            })
            .collect()
    };
    let per_year = periods_per_year(exp, &md, cache);
    let vol = if exp.decision.sizing == Sizing::Volatility {
        md.bars.iter().map(|b| decision::rolling_vol(&b.close, exp.decision.vol_window, per_year)).collect()
    } else {
        Vec::new()
    };
    let rc = &exp.risk;
    let atr = if rc.stop_atr.is_some() || rc.trailing_atr.is_some() {
        md.bars.iter().enumerate().map(|(s, b)| cache.get(s, b, signals::IndKey::Atr(rc.atr_period))).collect()
    } else {
        Vec::new()
    };
    let ns = md.symbols.len();
    let corr = if rc.max_correlation.is_some() {
        let mut corr = vec![Vec::new(); ns * ns];
        for i in 0..ns {
            for j in i + 1..ns {
                corr[i * ns + j] = signals::rolling_correlation(&md.bars[i].close, &md.bars[j].close, rc.correlation_window);
            }
        }
        corr
    } else {
        Vec::new()
    };
    let cfg_err = |key: String, msg: String| crate::Error::Config { file: le.file.clone(), key, msg };
    let x = &exp.execution;
    for name in x.lot_sizes.keys() {
        if md.symbol_id(name).is_none() {
            return Err(cfg_err(format!("execution.lot_sizes.{name}"), format!("{name} is not in the data ({})", md.symbols.join(", "))));
        }
    }
    let lots = md.symbols.iter().map(|name| x.lot_sizes.get(name).copied().unwrap_or(x.lot_size)).collect();
    let rebalance = match &exp.rebalance {
        Some(rb) => {
            let closes: Vec<&[f64]> = md.bars.iter().map(|b| b.close.as_slice()).collect();
            Some(crate::rebalance::prepare(rb, &md.symbols, &closes, &md.timestamps).map_err(|(k, m)| cfg_err(k, m))?)
        }
        None => None,
    };
    let regime = match &exp.regime {
        Some(rc) => {
            if let Some(sym) = &rc.symbol {
                if md.symbol_id(sym).is_none() {
                    return Err(cfg_err("regime.symbol".into(), format!("{sym} is not in the data ({})", md.symbols.join(", "))));
                }
            }
            let labels = regime_labels(rc, &md, cache);
            let mut variants = Vec::new();
            let mut which = [None; 4];
            for (id, v) in crate::regime::variants(exp, &le.file)?.into_iter().enumerate() {
                if let Some(v) = v {
                    let lv = LoadedExperiment { exp: v, file: le.file.clone() };
                    let p = prepare(&lv, md.clone(), cache)?;
                    which[id] = Some(variants.len());
                    variants.push((lv.exp, p));
                }
            }
            Some(RegimePrep { labels, variants, which })
        }
        None => None,
    };
    Ok(Prepared { md, combined, vol, per_year, atr, corr, lots, rebalance, regime, warnings, drivers, cache: cache.clone(), models })
}

/// Whether a symbol's streams are one source whose votes never vanish (confidence and multiplier
/// > 0, weight > 0): it is then its own combination, with no copy (a sweep makes thousands).
pub(super) fn is_single(streams: &[signals::Stream], weights: &std::collections::BTreeMap<String, f64>, mults: &[f64; 4]) -> bool {
    streams.len() == 1 && {
        let st = &streams[0];
        weights.get(&st.source).is_none_or(|w| *w > 0.0)
            && if st.strength.len() == 1 && st.conf.len() == 1 {
                mults[st.strength[0] as usize - 1] * st.conf[0] > 0.0
            } else {
                (0..st.dir.len()).all(|t| st.dir[t] == signals::NONE || mults[st.strength_at(t) as usize - 1] * st.conf_at(t) > 0.0)
            }
    }
}

/// The symbol ids a signal entry (`key`) covers: those of its `symbols` list, or all when it is
/// empty; a name the data lacks is an error naming `key.symbols`.
fn covered(le: &LoadedExperiment, md: &MarketData, key: &str, symbols: &[String]) -> Result<Vec<usize>> {
    if let Some(w) = symbols.iter().find(|w| md.symbol_id(w).is_none()) {
        return Err(crate::Error::Config {
            file: le.file.clone(),
            key: format!("{key}.symbols"),
            msg: format!("{w} is not in the data ({})", md.symbols.join(", ")),
        });
    }
    Ok((0..md.symbols.len()).filter(|&s| symbols.is_empty() || symbols.contains(&md.symbols[s])).collect())
}

/// The detector settings of `[regime]`, without the overrides: what its labels depend on.
fn detector_key(rc: &crate::experiment::RegimeConfig) -> String {
    toml::to_string(&crate::experiment::RegimeConfig { overrides: Default::default(), ..rc.clone() }).unwrap_or_default()
}

/// Regime labels for a detector setting, shared by candidates that differ only in overrides.
fn regime_labels(rc: &crate::experiment::RegimeConfig, md: &MarketData, cache: &IndicatorCache) -> Arc<crate::regime::Labels> {
    cache.shared(detector_key(rc), || crate::regime::detect(rc, md))
}

/// The strategies of `[[signals.rules]]` and `[[signals.code]]`, per symbol: each decides its
/// symbols alone, so a symbol covered twice, or also by a signal stream, is an error.
fn drivers(
    le: &LoadedExperiment,
    md: &MarketData,
    cache: &IndicatorCache,
    streams: &[Vec<signals::Stream>],
) -> Result<Vec<Option<signals::Driver>>> {
    let exp = &le.exp;
    let cfg_err = |key: String, msg: String| crate::Error::Config { file: le.file.clone(), key, msg };
    let mut out: Vec<Option<signals::Driver>> = vec![None; md.symbols.len()];
    let rules = exp.signals.rules.iter().enumerate().map(|(i, r)| (i, &r.symbols, r.strength, r.confidence, "rules"));
    let code = exp.signals.code.iter().enumerate().map(|(i, c)| (i, &c.symbols, c.strength, c.confidence, "code"));
    for (i, symbols, strength, confidence, kind) in rules.chain(code) {
        let key = format!("signals.{kind}[{i}]");
        let syms = covered(le, md, &key, symbols)?;
        let signal: Arc<dyn signals::Signal> = if kind == "rules" {
            let set = signals::rules::build(&exp.signals.rules[i], i, md, cache, &syms).map_err(|e| cfg_err(e.key, e.msg))?;
            Arc::new(set)
        } else {
            let c = &exp.signals.code[i];
            signals::build_code(&c.name, &c.params).map_err(|m| cfg_err(code_key(i, &c.name), m))?
        };
        for s in syms {
            let name = &md.symbols[s];
            if let Some(d) = &out[s] {
                return Err(cfg_err(
                    key,
                    format!("{name} is already decided by {}: one strategy per symbol (give each a `symbols` list)", d.key),
                ));
            }
            if let Some(st) = streams[s].first() {
                return Err(cfg_err(
                    key,
                    format!("{name} also has signal source '{}': a strategy decides its symbols alone (give it, or the other source, a `symbols` list)", st.source),
                ));
            }
            out[s] = Some(signals::Driver { signal: signal.clone(), strength: strength as u8 + 1, confidence, key: key.clone() });
        }
    }
    Ok(out)
}

/// Bars per year for `exp`'s annualized figures: its `[metrics]` setting, else the market's
/// (read once through `cache`, see [`PER_YEAR`]).
pub fn periods_per_year(exp: &crate::experiment::Experiment, md: &MarketData, cache: &IndicatorCache) -> f64 {
    exp.metrics.periods_per_year.unwrap_or_else(|| *cache.shared(PER_YEAR.into(), || md.bars_per_year()))
}

/// The cache key of a market's bars per year (see [`MarketData::bars_per_year`]): reading the
/// calendar scans every timestamp, so it is done once per market, not per candidate; a part
/// of a market (a walk-forward's training window) is given the whole market's.
pub const PER_YEAR: &str = "bars_per_year";
