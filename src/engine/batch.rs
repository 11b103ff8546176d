//! The batch path of a sweep: many candidates run over the same bars together, tile by tile.
//! Per tile of bars, each indicator series the candidates read is produced once (its state
//! carries from tile to tile: the prefix sum of an SMA, an EMA's last value, a channel's
//! deque), each candidate's signals are built from the tile's values, and its run, the
//! engine's own loop, advances through the tile. No whole indicator line or signal series is
//! held, so memory grows neither with the bars (beyond the loaded data) nor with the number of
//! candidates, and a tile's working set stays in cache.
//!
//! The results are those of [`super::backtest_stats`] to the last bit: the same loop and the
//! same kernels, a tile's first bar overlapping the last one of the tile before (crosses and
//! signal changes compare with it), and a skip over idle bars that a tile's end interrupts put
//! off until a later tile shows where it ends, then pushed in one piece. What needs a whole
//! series at once runs through the engine alone: see [`fallback_reason`].

use super::{
    prepare::{is_single, prepare_with},
    Loop, Prepared, RunResult,
};
use crate::data::MarketData;
use crate::error::Result;
use crate::experiment::{LoadedExperiment, SignalMode, Sizing, TechnicalSignal};
use crate::signals::{
    self,
    indicators::{IndState, Prefix},
    Combined, IndKey, IndicatorCache, Spec, Stream,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Bars per tile: the indicator values of a batch's tile (a few hundred series at most in a
/// sweep) fit in a core's cache.
pub const TILE: usize = 2048;

/// Why an experiment runs through the engine alone rather than the batch path (None: it takes
/// the batch path). Everything else (every technical signal kind and mode, weights, sizing by
/// signal, fraction or quantity, every stop in percent, account limits, fees, slippage, fill
/// timing and order types, shorts and borrow) runs in both, through the same code.
pub fn fallback_reason(exp: &crate::experiment::Experiment) -> Option<&'static str> {
    let s = &exp.signals;
    let r = &exp.risk;
    Some(if !s.files.is_empty() {
        "signal files"
    } else if !s.models.is_empty() {
        "model signals"
    } else if !s.rules.is_empty() || !s.code.is_empty() {
        "strategies (rules or code)"
    } else if exp.regime.is_some() {
        "[regime]"
    } else if exp.rebalance.is_some() {
        "[rebalance]"
    } else if exp.decision.sizing == Sizing::Volatility {
        "volatility sizing"
    } else if r.stop_atr.is_some() || r.trailing_atr.is_some() {
        "ATR stops"
    } else if r.max_correlation.is_some() {
        "correlation cap"
    } else {
        return None;
    })
}

/// How an indicator series of the batch is produced tile by tile: an SMA from its symbol's
/// shared prefix sums, anything else from its own carried state.
enum Slot {
    Sma(usize),
    State(IndState),
}

impl Slot {
    fn of(key: IndKey) -> Slot {
        match key {
            IndKey::Sma(n) => Slot::Sma(n),
            k => Slot::State(IndState::new(k)),
        }
    }
}

/// One technical signal of a candidate on one symbol: what it is and where its lines are.
struct Entry<'e> {
    cfg: &'e TechnicalSignal,
    /// Its stream's source name (for the weights).
    source: String,
    /// Its strength level (1..=4).
    strength: u8,
    /// Whether it is its symbol's only stream and its own combination (see `is_single`).
    single: bool,
    spec: Spec,
    /// Indices of its indicator series in the batch's list (see [`Spec::keys`]).
    slots: Vec<usize>,
}

/// Run candidates (each of which [`fallback_reason`] passes) over the same bars together;
/// each result is what [`super::prepare`] and [`super::backtest_stats`] (or, as `record` asks,
/// [`super::backtest_equity`] or [`super::backtest`]) give for it alone.
pub fn run_batch(
    les: &[LoadedExperiment],
    md: &Arc<MarketData>,
    cache: &Arc<IndicatorCache>,
    tile: usize,
    record: super::Record,
) -> Vec<Result<(Prepared, RunResult)>> {
    let (n, ns) = (md.len(), md.symbols.len());
    let tile = tile.max(1);
    let preps: Vec<Result<Prepared>> = les.iter().map(|le| prepare_with(le, md.clone(), cache, false)).collect();
    // Every indicator series any candidate reads, once.
    let mut slot_of: BTreeMap<(usize, IndKey), usize> = BTreeMap::new();
    let mut states: Vec<(usize, Slot)> = Vec::new();
    let plans: Vec<Vec<Vec<Entry>>> = les
        .iter()
        .zip(&preps)
        .map(|(le, p)| {
            let mut per_sym: Vec<Vec<Entry>> = (0..ns).map(|_| Vec::new()).collect();
            if p.is_err() {
                return per_sym;
            }
            for cfg in &le.exp.signals.technical {
                let spec = Spec::from_config(cfg);
                for (s, list) in per_sym.iter_mut().enumerate() {
                    if !(cfg.symbols.is_empty() || cfg.symbols.contains(&md.symbols[s])) {
                        continue;
                    }
                    let slots = spec
                        .keys()
                        .into_iter()
                        .map(|k| {
                            *slot_of.entry((s, k)).or_insert_with(|| {
                                states.push((s, Slot::of(k)));
                                states.len() - 1
                            })
                        })
                        .collect();
                    let source = signals::technical_of(cfg, Vec::new(), None).source;
                    list.push(Entry { cfg, source, strength: cfg.strength as u8 + 1, single: false, spec, slots });
                }
            }
            let mults = &le.exp.decision.strength_multipliers;
            for list in &mut per_sym {
                let streams: Vec<Stream> = list.iter().map(|e| signals::technical_of(e.cfg, Vec::new(), None)).collect();
                let single = is_single(&streams, &le.exp.signals.weights, mults);
                list.iter_mut().for_each(|e| e.single = single);
            }
            per_sym
        })
        .collect();
    // Each symbol's closes summed once per tile for all its SMA windows.
    let mut prefixes: Vec<Option<Prefix>> = (0..ns)
        .map(|s| {
            let keep =
                states.iter().filter(|(t, _)| *t == s).filter_map(|(_, st)| if let Slot::Sma(n) = st { Some(*n) } else { None }).max();
            keep.map(Prefix::new)
        })
        .collect();
    let mut bufs: Vec<Vec<f64>> = vec![vec![f64::NAN; tile + 1]; states.len()];
    let mut loops: Vec<Option<Loop>> = les
        .iter()
        .zip(&preps)
        .map(|(le, p)| {
            p.as_ref().ok().map(|p| {
                let mut lp = Loop::new(&le.exp, p, record);
                lp.tile = vec![Combined::default(); ns];
                lp
            })
        })
        .collect();
    // A tile's signals live in one set of buffers per symbol, lent to each candidate in turn
    // (they stay in cache; a candidate keeps only its signal at the tile's last bar, which the
    // next tile's first bar repeats).
    let mut scratch: Vec<Combined> = vec![Combined::default(); ns];
    let mut lasts: Vec<Vec<(i8, u8, f64)>> = vec![Vec::new(); les.len()];
    let (mut t0, mut prev_len) = (0, 0);
    while t0 < n {
        let t1 = (t0 + tile).min(n);
        // The tile's window starts a bar early (but at bar 0 for the first).
        let w0 = t0.saturating_sub(1);
        let off = t0 - w0;
        let len = t1 - w0;
        for (s, p) in prefixes.iter_mut().enumerate() {
            if let Some(p) = p {
                p.advance(&md.bars[s].close, t0..t1);
            }
        }
        for ((s, st), buf) in states.iter_mut().zip(&mut bufs) {
            if off == 1 {
                buf[0] = buf[prev_len - 1];
            }
            let out = &mut buf[off..len];
            match (st, &prefixes[*s]) {
                (Slot::Sma(n), Some(p)) => p.sma(&md.bars[*s].close, *n, t0..t1, out),
                (Slot::State(st), _) => st.fill(&md.bars[*s], t0..t1, out),
                (Slot::Sma(_), None) => unreachable!("a symbol with an SMA slot has its prefix sums"),
            }
        }
        for (((lp, plan), le), last) in loops.iter_mut().zip(&plans).zip(les).zip(&mut lasts) {
            let Some(lp) = lp else { continue };
            if lp.done {
                continue;
            }
            let exp = &le.exp;
            let mults = &exp.decision.strength_multipliers;
            for (s, entries) in plan.iter().enumerate() {
                let line = |e: &Entry, i: usize| e.slots.get(i).map_or(&[][..], |&k| &bufs[k][..len]);
                let first = (off == 1).then(|| last[s]);
                let mut prev = std::mem::take(&mut scratch[s]);
                let comb = match &entries[..] {
                    [e] if e.single && e.cfg.mode == SignalMode::Event && e.spec.is_cross() => {
                        // The hot path of a crossover sweep: one cross, its own combination,
                        // written into the last tile's vectors.
                        signals::cross_events_into(line(e, 0), line(e, 1), &mut prev.dir, &mut prev.acts);
                        if let Some(f) = first {
                            prev.dir[0] = f.0;
                        }
                        prev.strength.clear();
                        prev.conf.clear();
                        prev.strength.push(e.strength);
                        prev.conf.push(e.cfg.confidence);
                        let st = Stream {
                            source: String::new(),
                            dir: prev.dir,
                            strength: prev.strength,
                            conf: prev.conf,
                            acts: Some(prev.acts),
                        };
                        Combined::of_stream(st)
                    }
                    _ => {
                        let mut streams: Vec<Stream> = entries
                            .iter()
                            .map(|e| {
                                let (dir, acts) = e.spec.directions(e.cfg.mode, &md.bars[s].close, w0..t1, line(e, 0), line(e, 1));
                                Stream { source: e.source.clone(), dir, strength: vec![e.strength], conf: vec![e.cfg.confidence], acts }
                            })
                            .collect();
                        let comb = if is_single(&streams, &exp.signals.weights, mults) {
                            Combined::of_stream(streams.pop().expect("one stream"))
                        } else {
                            let refs: Vec<&Stream> = streams.iter().collect();
                            signals::combine(&refs, &exp.signals.weights, mults, len)
                        };
                        // The window's first bar is the last of the tile before, as it was there.
                        match first {
                            Some(f) => comb.with_first(f),
                            None => comb,
                        }
                    }
                };
                lp.tile[s] = comb.at_base(w0);
            }
            lp.act_cursor.fill(0);
            lp.advance(t1);
            last.clear();
            for (c, buf) in lp.tile.iter_mut().zip(&mut scratch) {
                last.push(c.get(t1 - 1));
                *buf = std::mem::take(c);
            }
        }
        (t0, prev_len) = (t1, len);
    }
    let results: Vec<Option<RunResult>> = loops.into_iter().map(|lp| lp.map(Loop::finish)).collect();
    preps.into_iter().zip(results).map(|(p, r)| p.map(|p| (p, r.expect("a loop per prepared candidate")))).collect()
}
