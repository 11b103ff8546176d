//! Parameter optimization: search spaces over any experiment field (by path), grid, random
//! (Latin hypercube), genetic (genevo) and Bayesian (Gaussian process + expected improvement)
//! search, evaluated in parallel with rayon, with a trial log written as it goes and resumable.
//!
//! Determinism: candidates are generated from the experiment seed and from earlier results only;
//! each batch is evaluated in parallel and its results are put back in candidate order before
//! anything is written or used, so the trials (and their order) do not depend on the number of
//! threads. Every candidate is the user's experiment with some fields changed: `best.toml` re-runs
//! the best trial exactly with `tradelab run`.
//!
//! Sharing: the market data is shared read-only by all candidates. Candidates the batch path
//! covers run together, tile by tile ([`crate::engine::batch`]), sharing each tile's indicator
//! values; the others run one by one through the engine over the shared indicator cache. A
//! candidate keeps streaming statistics only (no per-bar curves, no list of trades).
//!
//! Memory: a search with a trial log keeps no trials in memory (only their count and the best);
//! `optimize.json` (deflation, PBO, effective trials, the top curves) is computed from the log
//! in passes over `trials.csv` and `trial_blocks.csv`, so memory is flat in the number of
//! candidates. Genetic and Bayesian searches keep what their method needs (a population, the
//! observations).
//!
//! Beyond one machine: [`shard`] cuts a grid or random search (or a walk-forward) into
//! independent parts and merges them; [`rounds`] runs any search in ask/tell rounds.

pub mod bayes;
pub mod genetic;
pub mod resume;
pub mod rounds;
pub mod shard;
pub mod space;
mod summary;
mod trials;
pub mod walk;

pub use space::{Comparison, Dim, Space};
use summary::finish;
pub use summary::{EffectiveTrials, Summary};
pub use trials::TrialLog;

use crate::data::MarketData;
use crate::engine::{backtest_stats, prepare};
use crate::error::{Error, Result};
use crate::experiment::{Direction, Experiment, LoadedExperiment, Method, OptimizeConfig};
use crate::metrics::Stats;
use crate::signals::IndicatorCache;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Names of the statistics an objective or constraint may use.
pub fn stat_names() -> Vec<String> {
    let s = crate::metrics::EquityStream::default().stats(1.0);
    match serde_json::to_value(&s) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A statistic by name.
pub fn stat(s: &Stats, name: &str) -> Option<f64> {
    let v = serde_json::to_value(s).ok()?;
    let x = v.get(name)?;
    // serde_json writes NaN and infinities as null.
    Some(x.as_f64().unwrap_or(f64::NAN))
}

/// A comparison's numbers must be finite: against `nan` nothing holds (every candidate would
/// quietly fail it), and against `inf` the comparison says nothing.
fn finite_operands(key: &str, cmp: &Comparison) -> std::result::Result<(), (String, String)> {
    for side in [&cmp.left, &cmp.right] {
        if side.parse::<f64>().is_ok_and(|x| !x.is_finite()) {
            return Err((key.to_string(), format!("'{side}' is not a finite number")));
        }
    }
    Ok(())
}

/// Check `[optimize]` against the experiment: (key, message) of the first problem.
pub fn check_config(exp: &Experiment, o: &OptimizeConfig) -> std::result::Result<(), (String, String)> {
    let space = Space::parse(&o.space)?;
    if space.dims.is_empty() {
        return Err(("optimize.space".into(), "is empty: name at least one field, e.g. \"risk.stop_loss\" = [0.01, 0.1]".into()));
    }
    let names = stat_names();
    if !names.contains(&o.objective) {
        return Err(("optimize.objective".into(), format!("unknown statistic '{}'; one of {}", o.objective, names.join(", "))));
    }
    for (i, c) in o.constraints.iter().enumerate() {
        let k = format!("optimize.constraints[{i}]");
        let cmp = Comparison::parse(c).map_err(|m| (k.clone(), m))?;
        finite_operands(&k, &cmp)?;
        for side in [&cmp.left, &cmp.right] {
            if side.parse::<f64>().is_err() && !names.contains(side) {
                return Err((k, format!("unknown statistic '{side}'")));
            }
        }
    }
    let mut probe = exp.clone();
    probe.optimize = None;
    let root = toml::Value::try_from(&probe).map_err(|e| ("optimize".to_string(), e.to_string()))?;
    for (i, r) in o.rules.iter().enumerate() {
        let k = format!("optimize.rules[{i}]");
        let cmp = Comparison::parse(r).map_err(|m| (k.clone(), m))?;
        finite_operands(&k, &cmp)?;
        for side in [&cmp.left, &cmp.right] {
            if side.parse::<f64>().is_err() && !space.paths.contains(side) && space::number_at(&root, side).is_none() {
                return Err((k, format!("'{side}' is neither a number, a searched path nor a numeric field")));
            }
        }
    }
    space::check_paths(&probe, &space)?;
    let bad = |k: &str, m: &str| Err((format!("optimize.{k}"), m.to_string()));
    if o.budget == 0 {
        return bad("budget", "must be >= 1");
    }
    if o.batch == 0 {
        return bad("batch", "must be >= 1");
    }
    if o.grid_points == 0 {
        return bad("grid_points", "must be >= 1");
    }
    if o.initial < 2 {
        return bad("initial", "must be >= 2");
    }
    if o.population < 4 {
        return bad("population", "must be >= 4");
    }
    if o.tournament < 2 || o.tournament > o.population {
        return bad("tournament", "must be in [2, population]");
    }
    if o.elitism >= o.population {
        return bad("elitism", "must be < population");
    }
    if !(0.0..=1.0).contains(&o.mutation_rate) {
        return bad("mutation_rate", "must be in [0, 1]");
    }
    let w = &o.walk_forward;
    if w.windows == 0 || !(w.train_ratio > 0.0 && w.train_ratio.is_finite()) {
        return bad("walk_forward", "windows must be >= 1 and train_ratio > 0");
    }
    Ok(())
}

/// What became of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialStatus {
    /// Backtested.
    Ok,
    /// Broke a rule between parameters: not run.
    Rule,
    /// The experiment with these values is invalid (e.g. fast >= slow): not run.
    Invalid,
}

impl TrialStatus {
    fn as_str(&self) -> &'static str {
        match self {
            TrialStatus::Ok => "ok",
            TrialStatus::Rule => "rule",
            TrialStatus::Invalid => "invalid",
        }
    }
}

/// One evaluated candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Order of evaluation (0-based).
    pub index: usize,
    /// Values, in the space's path order.
    pub params: Vec<toml::Value>,
    /// Ok, rule or invalid.
    pub status: TrialStatus,
    /// The objective statistic (NaN when not run).
    pub objective: f64,
    /// What the search maximizes: the objective (negated when minimizing) if feasible, else a
    /// penalty below every feasible score.
    pub score: f64,
    /// Whether every constraint held.
    pub feasible: bool,
    /// Key statistics: total return, Sharpe, max drawdown, trades.
    pub key_stats: [f64; 4],
    /// Milliseconds spent (not part of the determinism guarantee).
    pub duration_ms: f64,
    /// Per-block return sums for the overfitting statistic (kept in `trial_blocks.csv`).
    pub blocks: Option<[[f64; 3]; crate::metrics::BLOCKS]>,
    /// Why a trial is `rule` or `invalid` (empty for `ok`).
    pub reason: String,
}

pub(crate) const PENALTY: f64 = -1e12;

/// Everything the candidates of one search share.
pub struct Study {
    /// The user's experiment.
    pub le: LoadedExperiment,
    base_tree: toml::Value,
    /// `base_tree` read back: what a candidate is built from (None if it does not read, and
    /// each candidate then reads its whole tree).
    base_exp: Option<Experiment>,
    /// The search space.
    pub space: Space,
    /// `[optimize]`.
    pub cfg: OptimizeConfig,
    /// Shared bars.
    pub md: Arc<MarketData>,
    /// Shared indicators.
    pub cache: std::sync::Arc<IndicatorCache>,
    rules: Vec<Comparison>,
    constraints: Vec<Comparison>,
    /// Results read back from an interrupted run, by parameter values (with `logged`, only the
    /// current call's window of them).
    done: BTreeMap<String, Trial>,
    /// An interrupted grid or random search's log, read back a window of candidates at a time.
    logged: Option<trials::Logged>,
    /// Whether candidates the batch path covers take it (true unless switched off, e.g. to
    /// compare the two paths).
    pub batch: bool,
    /// How the candidates were run.
    paths: std::sync::Mutex<RunPaths>,
    /// `(i, n)`: evaluate only the candidates whose index is `i` modulo `n` (a shard of a
    /// search spread over a cluster; see [`shard`]).
    pub shard: Option<(usize, usize)>,
    /// Replay the search from the told results and stop at the first candidates not among
    /// them (see [`rounds`]).
    asking: bool,
    /// The candidates the replay stopped at (with their indices).
    asked: Asked,
}

/// Candidates a replay stopped at, with their indices (shared by the study and its sink).
type Asked = Arc<std::sync::Mutex<Vec<(usize, Vec<toml::Value>)>>>;

impl Study {
    /// A study over `md` for the experiment's `[optimize]` table.
    pub fn new(le: &LoadedExperiment, md: Arc<MarketData>) -> Result<Study> {
        let cfg = le.exp.optimize.clone().ok_or_else(|| Error::Config {
            file: le.file.clone(),
            key: "optimize".into(),
            msg: "missing: add an [optimize] table with a space to search".into(),
        })?;
        check_config(&le.exp, &cfg).map_err(|(key, msg)| Error::Config { file: le.file.clone(), key, msg })?;
        let space = Space::parse(&cfg.space).map_err(|(key, msg)| Error::Config { file: le.file.clone(), key, msg })?;
        // A candidate is a plain run with absolute paths and no search table: best.toml runs
        // from anywhere with `tradelab run`.
        let mut base = le.with_absolute_paths();
        base.optimize = None;
        let base_tree = toml::Value::try_from(&base).map_err(|e| Error::Internal(e.to_string()))?;
        let base_exp = <Experiment as serde::Deserialize>::deserialize(base_tree.clone()).ok();
        let parse_all = |v: &[String]| v.iter().map(|s| Comparison::parse(s)).collect::<std::result::Result<Vec<_>, _>>();
        let rules = parse_all(&cfg.rules).map_err(Error::Input)?;
        let constraints = parse_all(&cfg.constraints).map_err(Error::Input)?;
        Ok(Study {
            le: LoadedExperiment { exp: base, file: le.file.clone() },
            base_tree,
            base_exp,
            space,
            cfg,
            md,
            cache: Default::default(),
            rules,
            constraints,
            done: BTreeMap::new(),
            logged: None,
            batch: true,
            paths: Default::default(),
            shard: None,
            asking: false,
            asked: Default::default(),
        })
    }

    /// The experiment of a candidate, or why it cannot run.
    pub fn candidate(&self, params: &[toml::Value]) -> std::result::Result<Experiment, (TrialStatus, String)> {
        if let Some(r) = self.broken_rule(params) {
            return Err((TrialStatus::Rule, format!("{} {} {}", r.left, r.op, r.right)));
        }
        let sets: Vec<(String, toml::Value)> = self.space.paths.iter().cloned().zip(params.iter().cloned()).collect();
        let exp = match &self.base_exp {
            Some(base) => base.with_sets(&self.base_tree, &sets, &self.le.file),
            None => Experiment::from_value_with(self.base_tree.clone(), &sets, &self.le.file),
        };
        exp.map_err(|e| (TrialStatus::Invalid, e.to_string()))
    }

    /// The first rule of `[optimize].rules` that `params` break (checked without building the
    /// experiment).
    fn broken_rule(&self, params: &[toml::Value]) -> Option<&Comparison> {
        let lookup = |name: &str| match self.space.paths.iter().position(|p| p == name) {
            Some(i) => params[i].as_float().or_else(|| params[i].as_integer().map(|x| x as f64)),
            None => space::number_at(&self.base_tree, name),
        };
        self.rules.iter().find(|r| r.holds(&lookup) != Some(true))
    }

    /// With a resumed log read back in windows: the logged trials below index `end` (the
    /// next call's candidates) become the ones read back.
    fn load_logged(&mut self, end: usize) -> Result<()> {
        if let Some(l) = self.logged.as_mut() {
            self.done = l.take_below(end)?.into_iter().map(|t| (params_key(&t.params), t)).collect();
        }
        Ok(())
    }

    /// Continue the search logged in `dir` (see [`TrialLog::open`]); grid and random searches
    /// read their logged trials back a window at a time, so memory does not grow with them.
    pub(crate) fn resume_log(&mut self, dir: &Path, resume: bool) -> Result<TrialLog> {
        if resume && matches!(self.cfg.method, Method::Grid | Method::Random) {
            let (log, logged) = TrialLog::resume_streaming(dir, &self.space)?;
            self.logged = logged;
            return Ok(log);
        }
        let (log, done) = TrialLog::open(dir, &self.space, resume)?;
        self.done = done.into_iter().map(|t| (params_key(&t.params), t)).collect();
        Ok(log)
    }

    /// Backtest one candidate.
    pub fn evaluate(&self, index: usize, params: Vec<toml::Value>) -> Trial {
        if let Some(t) = self.done.get(&params_key(&params)) {
            self.count_told(&params);
            return Trial { index, ..t.clone() };
        }
        let start = std::time::Instant::now();
        let outcome = self.candidate(&params).and_then(|exp| {
            // A candidate alone still takes the batch path when it covers it (see `run`).
            self.count_path(&exp);
            self.run_candidate(exp).map_err(|e| (TrialStatus::Invalid, e.to_string()))
        });
        self.trial(index, params, outcome, start.elapsed().as_secs_f64() * 1e3)
    }

    /// A trial from what its run gave (or why it did not run).
    fn trial(&self, index: usize, params: Vec<toml::Value>, outcome: CandidateOutcome, duration_ms: f64) -> Trial {
        let dir = if self.cfg.direction == Direction::Maximize { 1.0 } else { -1.0 };
        let mut trial = Trial {
            index,
            params,
            status: TrialStatus::Ok,
            objective: f64::NAN,
            score: PENALTY * 1e3,
            feasible: false,
            key_stats: [f64::NAN; 4],
            duration_ms,
            blocks: None,
            reason: String::new(),
        };
        match outcome {
            Err((status, why)) => (trial.status, trial.reason) = (status, why),
            Ok((stats, blocks)) => {
                trial.blocks = Some(blocks);
                let look = |n: &str| stat(&stats, n);
                trial.objective = look(&self.cfg.objective).unwrap_or(f64::NAN);
                let violation: f64 = self.constraints.iter().map(|c| c.violation(&look)).sum();
                trial.feasible = violation == 0.0;
                let obj = if trial.objective.is_nan() { -1e9 } else { dir * trial.objective };
                trial.score = if trial.feasible { obj } else { PENALTY - violation.min(1e11) };
                trial.key_stats = [stats.total_return, stats.sharpe, stats.max_drawdown, stats.trades as f64];
            }
        }
        trial
    }

    /// Count a trial read back (a resumed search, a rerun shard, an ask/tell replay) on the path
    /// it would have taken, so `run_paths` describes the whole search however it was run.
    fn count_told(&self, params: &[toml::Value]) {
        if let Ok(exp) = self.candidate(params) {
            self.count_path(&exp);
        }
    }

    /// Count a candidate on the path it takes (see [`RunPaths`]).
    fn count_path(&self, exp: &Experiment) {
        match (crate::engine::batch::fallback_reason(exp), self.batch) {
            (Some(why), _) => self.count_engine(why),
            (None, true) => self.count_batch(1),
            (None, false) => self.count_engine("batch path switched off"),
        }
    }

    fn count_batch(&self, n: usize) {
        if let Ok(mut m) = self.paths.lock() {
            m.batch += n;
        }
    }

    fn count_engine(&self, why: &'static str) {
        if let Ok(mut m) = self.paths.lock() {
            *m.engine.entry(why.to_string()).or_default() += 1;
        }
    }

    /// Run `exps` recording their equity curves, and hand each run to `f` with its position in
    /// `exps`, in order. Those the batch path covers run through it together, in groups whose
    /// curves stay within 16 MB together, each group shared out among the threads; the others
    /// run through the engine.
    pub(crate) fn for_each_curve(
        &self,
        mut exps: Vec<Experiment>,
        mut f: impl FnMut(usize, Result<(crate::engine::Prepared, crate::engine::RunResult)>) -> Result<()>,
    ) -> Result<()> {
        const BUDGET: usize = 16 << 20;
        let group = (BUDGET / (8 * self.md.len().max(1))).clamp(1, 64);
        let threads = rayon::current_num_threads().max(1);
        let mut at = 0;
        while !exps.is_empty() {
            let rest = exps.split_off(group.min(exps.len()));
            let g = std::mem::replace(&mut exps, rest);
            let len = g.len();
            let runs: Vec<Result<(crate::engine::Prepared, crate::engine::RunResult)>> = if self.batch
                && g.iter().all(|e| crate::engine::batch::fallback_reason(e).is_none())
            {
                let les: Vec<LoadedExperiment> = g.into_iter().map(|exp| LoadedExperiment { exp, file: self.le.file.clone() }).collect();
                les.par_chunks(len.div_ceil(threads))
                    .map(|c| {
                        crate::engine::batch::run_batch(c, &self.md, &self.cache, crate::engine::batch::TILE, crate::engine::Record::Equity)
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .flatten()
                    .collect()
            } else {
                g.into_par_iter().map(|e| self.run(e, crate::engine::Record::Equity)).collect()
            };
            for (k, run) in runs.into_iter().enumerate() {
                f(at + k, run)?;
            }
            at += len;
        }
        Ok(())
    }

    fn run_candidate(&self, exp: Experiment) -> Result<(Stats, [[f64; 3]; crate::metrics::BLOCKS])> {
        let (prep, res) = self.run(exp, crate::engine::Record::Stats)?;
        if let Some((bar, what)) = &res.fault {
            return Err(Error::Input(format!("bar {bar}: {what}")));
        }
        Ok((crate::engine::summarize(&prep, &res), res.stream.blocks()))
    }

    /// One run of an experiment over the study's data, recording what `record` asks:
    /// through the batch path when it covers the experiment, so no whole indicator line is
    /// kept in the shared cache; otherwise through the engine.
    fn run(&self, exp: Experiment, record: crate::engine::Record) -> Result<(crate::engine::Prepared, crate::engine::RunResult)> {
        let le = LoadedExperiment { exp, file: self.le.file.clone() };
        if self.batch && crate::engine::batch::fallback_reason(&le.exp).is_none() {
            let mut runs =
                crate::engine::batch::run_batch(std::slice::from_ref(&le), &self.md, &self.cache, crate::engine::batch::TILE, record);
            return runs.pop().expect("one run");
        }
        let prep = prepare(&le, self.md.clone(), &self.cache)?;
        let res = match record {
            crate::engine::Record::Stats => backtest_stats(&le.exp, &prep),
            crate::engine::Record::Equity => crate::engine::backtest_equity(&le.exp, &prep),
            crate::engine::Record::Full => crate::engine::backtest(&le.exp, &prep),
        };
        Ok((prep, res))
    }

    /// Evaluate candidates in parallel; results come back in candidate order. Candidates the
    /// batch path covers run through it together, in chunks (see [`crate::engine::batch`]);
    /// the others one by one through the engine.
    pub fn evaluate_batch(&self, first_index: usize, batch: Vec<Vec<toml::Value>>) -> Vec<Trial> {
        let mine = |i: usize| self.shard.is_none_or(|(s, n)| i % n == s);
        let batch: Vec<(usize, Vec<toml::Value>)> =
            batch.into_iter().enumerate().map(|(k, p)| (first_index + k, p)).filter(|(i, _)| mine(*i)).collect();
        if self.asking {
            return self.ask(batch);
        }
        self.evaluate_indexed(batch)
    }

    /// Replaying a search from its told results: the candidates already told come back from
    /// them; the first batch with any other is recorded as the next ask (placeholders stand in
    /// for its trials, and the sink stops the search before they are used).
    fn ask(&self, batch: Vec<(usize, Vec<toml::Value>)>) -> Vec<Trial> {
        let missing: Vec<(usize, Vec<toml::Value>)> =
            batch.iter().filter(|(_, p)| !self.done.contains_key(&params_key(p))).cloned().collect();
        if !missing.is_empty() {
            if let Ok(mut a) = self.asked.lock() {
                if a.is_empty() {
                    *a = missing;
                }
            }
        }
        batch.into_iter().map(|(i, p)| self.evaluate_cached(i, p)).collect()
    }

    fn evaluate_cached(&self, index: usize, params: Vec<toml::Value>) -> Trial {
        match self.done.get(&params_key(&params)) {
            Some(t) => {
                self.count_told(&params);
                Trial { index, ..t.clone() }
            }
            None => self.trial(index, params, Err((TrialStatus::Invalid, "not evaluated yet (asked)".into())), 0.0),
        }
    }

    /// Evaluate candidates with their indices (see [`Study::evaluate_batch`]).
    pub fn evaluate_indexed(&self, batch: Vec<(usize, Vec<toml::Value>)>) -> Vec<Trial> {
        if !self.batch || batch.len() < 2 {
            return batch.into_par_iter().map(|(i, p)| self.evaluate(i, p)).collect::<Vec<_>>();
        }
        let mut out: Vec<Option<Trial>> = vec![None; batch.len()];
        let (mut together, mut alone) = (Vec::new(), Vec::new());
        let indices: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
        enum Built {
            Done(Box<Trial>),
            Together(Vec<toml::Value>, Box<Experiment>),
            Alone(Vec<toml::Value>),
        }
        // The candidates' experiments (a parse of the experiment tree each) are built in parallel.
        let built: Vec<Built> = batch
            .into_par_iter()
            .map(|(i, p)| {
                if let Some(t) = self.done.get(&params_key(&p)) {
                    self.count_told(&p);
                    return Built::Done(Box::new(Trial { index: i, ..t.clone() }));
                }
                match self.candidate(&p) {
                    Err(why) => Built::Done(Box::new(self.trial(i, p, Err(why), 0.0))),
                    Ok(exp) if crate::engine::batch::fallback_reason(&exp).is_none() => Built::Together(p, Box::new(exp)),
                    Ok(_) => Built::Alone(p),
                }
            })
            .collect();
        for (k, b) in built.into_iter().enumerate() {
            match b {
                Built::Done(t) => out[k] = Some(*t),
                Built::Together(p, exp) => together.push((k, p, *exp)),
                Built::Alone(p) => alone.push((k, p)),
            }
        }
        // Chunks small enough for the threads to share the work evenly (eight per thread: the
        // last chunks of a call run while the other threads idle), large enough to share each
        // tile's indicator series among many candidates.
        let threads = rayon::current_num_threads().max(1);
        // Dealt out in turn, so neighbouring candidates (of similar cost in a grid) spread over
        // the chunks.
        // A candidate holds a tile of its signals per symbol: fewer per chunk with many symbols.
        let most = (4096 / self.md.symbols.len().max(1)).clamp(16, 2048);
        let count = together.len().div_ceil(together.len().div_ceil(threads * 8).clamp(16, most));
        let mut chunks: Vec<Vec<(usize, Vec<toml::Value>, Experiment)>> = (0..count).map(|_| Vec::new()).collect();
        for (i, c) in together.into_iter().enumerate() {
            chunks[i % count].push(c);
        }
        let done_together: Vec<Vec<(usize, Trial)>> = chunks
            .into_par_iter()
            .map(|chunk| {
                let start = std::time::Instant::now();
                // Each candidate's experiment moves into the run (no copy per candidate).
                let (keys, les): (Vec<(usize, Vec<toml::Value>)>, Vec<LoadedExperiment>) =
                    chunk.into_iter().map(|(k, p, exp)| ((k, p), LoadedExperiment { exp, file: self.le.file.clone() })).unzip();
                let runs =
                    crate::engine::batch::run_batch(&les, &self.md, &self.cache, crate::engine::batch::TILE, crate::engine::Record::Stats);
                drop(les);
                let ms = start.elapsed().as_secs_f64() * 1e3 / keys.len() as f64;
                keys.into_iter()
                    .zip(runs)
                    .map(|((k, p), run)| {
                        let outcome = run.map_err(|e| (TrialStatus::Invalid, e.to_string())).and_then(|(prep, res)| match &res.fault {
                            Some((bar, what)) => Err((TrialStatus::Invalid, format!("bar {bar}: {what}"))),
                            None => Ok((crate::engine::summarize(&prep, &res), res.stream.blocks())),
                        });
                        (k, self.trial(indices[k], p, outcome, ms))
                    })
                    .collect()
            })
            .collect();
        self.count_batch(done_together.iter().map(Vec::len).sum::<usize>());
        let done_alone: Vec<(usize, Trial)> = alone.into_par_iter().map(|(k, p)| (k, self.evaluate(indices[k], p))).collect();
        for (k, t) in done_together.into_iter().flatten().chain(done_alone) {
            out[k] = Some(t);
        }
        out.into_iter().map(|t| t.expect("every candidate evaluated")).collect()
    }
}

/// A candidate's statistics and per-block return sums, or why it did not run.
type CandidateOutcome = std::result::Result<(Stats, [[f64; 3]; crate::metrics::BLOCKS]), (TrialStatus, String)>;

/// How the candidates of a search run (in `optimize.json`): each candidate that could be built
/// is counted once on its path, whether it ran now or was read back from an earlier run, so a
/// resumed, sharded or ask/tell search counts as the search run in one go.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunPaths {
    /// Candidates run together through the batch path.
    pub batch: usize,
    /// Candidates run one by one through the engine, by reason (what the batch path does not
    /// cover).
    pub engine: BTreeMap<String, usize>,
}

pub(super) fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn params_key(p: &[toml::Value]) -> String {
    p.iter().map(value_text).collect::<Vec<_>>().join("\u{1f}")
}

/// Options of `tradelab optimize`.
#[derive(Debug, Clone, Default)]
pub struct OptimizeOptions {
    /// Run folder root (`reports/` by default).
    pub out_root: PathBuf,
    /// Continue this run folder (or the latest one of the experiment when empty).
    pub resume: Option<PathBuf>,
    /// Threads (None: rayon's default, which honours RAYON_NUM_THREADS).
    pub jobs: Option<usize>,
    /// No progress bar.
    pub quiet: bool,
}

/// What a search produced.
#[derive(Debug, Clone, Default)]
pub struct SearchResult {
    /// Every trial in order when the search ran without a trial log; with one, the trials are in
    /// the log only, so memory does not grow with the number of candidates.
    pub trials: Vec<Trial>,
    /// How many trials the search made.
    pub count: usize,
    /// The best trial (highest score; the earliest of equals); None when there was none.
    pub best: Option<Trial>,
}

/// Run the experiment's search over `md`, logging trials to `log` (if any).
pub fn search(study: &mut Study, log: Option<&mut TrialLog>, progress: &indicatif::ProgressBar) -> Result<SearchResult> {
    let seed = study.le.exp.experiment.seed;
    // A replay stops at its first unanswered batch.
    let stop = study.asking.then(|| study.asked.clone());
    let mut sink = Sink { stop, log, result: SearchResult::default(), best_objective: None, seed, progress };
    match study.cfg.method {
        Method::Grid => {
            let n = study.space.grid_size(study.cfg.grid_points);
            progress.set_length(n as u64);
            let mut i = 0;
            let mut next_index = 0;
            while i < n {
                // Large calls: the batch path shares each tile's indicators among a call's candidates.
                let end = (i + 16384).min(n);
                // Points breaking a rule are not part of the grid.
                let pts: Vec<Vec<toml::Value>> =
                    (i..end).map(|k| study.space.grid_point(k, study.cfg.grid_points)).filter(|p| study.broken_rule(p).is_none()).collect();
                let kept = pts.len();
                study.load_logged(next_index + kept)?;
                let got = study.evaluate_batch(next_index, pts);
                // A shard's share is every n-th candidate: the rest count as done here.
                progress.inc((end - i - got.len()) as u64);
                next_index += kept;
                sink.push(got)?;
                i = end;
            }
        }
        Method::Random => {
            let n = study.cfg.budget;
            progress.set_length(n as u64);
            let pts = latin_hypercube(n, study.space.dims.len(), &mut ChaCha8Rng::seed_from_u64(seed));
            // Large calls: the batch path shares each tile's indicators among a call's candidates.
            for (c, chunk) in pts.chunks(1024).enumerate() {
                let batch = chunk.iter().map(|u| study.space.decode(u)).collect();
                study.load_logged(c * 1024 + chunk.len())?;
                let got = study.evaluate_batch(c * 1024, batch);
                progress.inc((chunk.len() - got.len()) as u64);
                sink.push(got)?;
            }
        }
        Method::Genetic => genetic::run(study, &mut sink)?,
        Method::Bayesian => bayes::run(study, &mut sink)?,
    }
    Ok(sink.result)
}

impl SearchResult {
    /// Count `t` and keep it if it is the best so far (trials come in index order).
    fn tally(&mut self, t: &Trial) {
        self.count += 1;
        if self.best.as_ref().is_none_or(|b| t.score.total_cmp(&b.score).then(b.index.cmp(&t.index)).is_gt()) {
            self.best = Some(t.clone());
        }
    }
}

/// Write a search finished elsewhere (merged shards, told rounds) as the run folder the search
/// on one machine writes: a new folder under `out_root`, its fingerprint, the trial log,
/// `best.toml`, `optimize.json` and the report.
pub(crate) fn write_search(
    study: Study,
    trials: Vec<Trial>,
    fp: &resume::Fingerprint,
    out_root: &Path,
    start: std::time::Instant,
) -> Result<(PathBuf, Summary)> {
    write_search_with(study, fp, out_root, start, |log, seed| {
        log.append(&trials, seed)?;
        let mut r = SearchResult::default();
        trials.iter().for_each(|t| r.tally(t));
        Ok(r)
    })
}

/// As [`write_search`], with `fill` writing the trials into the log (and tallying them).
pub(crate) fn write_search_with(
    study: Study,
    fp: &resume::Fingerprint,
    out_root: &Path,
    start: std::time::Instant,
    fill: impl FnOnce(&mut TrialLog, u64) -> Result<SearchResult>,
) -> Result<(PathBuf, Summary)> {
    let dir = crate::report::new_run_dir(&out_root.join(&study.le.exp.experiment.name))?;
    fp.write(&dir)?;
    let (mut log, _) = TrialLog::open(&dir, &study.space, false)?;
    let r = fill(&mut log, study.le.exp.experiment.seed)?;
    drop(log);
    let summary = finish(&study, &r, &dir, start)?;
    drop((study, r));
    crate::data::release_freed_memory();
    crate::report::render_optimize(&dir)?;
    Ok((dir, summary))
}

/// Where evaluated trials go: the log (or, without one, the in-memory list), the running best
/// and the progress bar.
pub(crate) struct Sink<'a, 'b> {
    /// A replay's asked candidates: once any, the search stops (see [`rounds`]).
    stop: Option<Asked>,
    log: Option<&'a mut TrialLog>,
    result: SearchResult,
    best_objective: Option<f64>,
    seed: u64,
    pub(crate) progress: &'b indicatif::ProgressBar,
}

impl Sink<'_, '_> {
    pub(crate) fn push(&mut self, got: Vec<Trial>) -> Result<()> {
        if self.stop.as_ref().is_some_and(|s| s.lock().is_ok_and(|a| !a.is_empty())) {
            return Err(Error::Input("asked".into()));
        }
        if let Some(log) = self.log.as_deref_mut() {
            log.append(&got, self.seed)?;
        }
        self.progress.inc(got.len() as u64);
        for t in &got {
            self.result.tally(t);
            if t.feasible && self.best_objective.is_none_or(|b| t.objective.total_cmp(&b).is_gt()) {
                self.best_objective = Some(t.objective);
            }
        }
        if let Some(b) = self.best_objective {
            self.progress.set_message(format!("best {b:.4}"));
        }
        // Without a log to read them back from, every trial is kept in memory.
        if self.log.is_none() {
            self.result.trials.extend(got);
        }
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.result.count
    }
}

/// `n` points of a Latin hypercube in `[0, 1]^d`: each dimension's n strata used once, in a seeded
/// random order, at a random position within the stratum.
pub fn latin_hypercube(n: usize, d: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let mut pts = vec![vec![0.0; d]; n];
    for k in 0..d {
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.gen_range(0..=i));
        }
        for (i, p) in pts.iter_mut().enumerate() {
            p[k] = (perm[i] as f64 + rng.gen::<f64>()) / n as f64;
        }
    }
    pts
}

/// `tradelab optimize`: search, write `trials.csv`, `best.toml`, `optimize.json`.
pub fn run_optimize(le: &LoadedExperiment, paths: &[PathBuf], opts: &OptimizeOptions) -> Result<(PathBuf, Summary)> {
    let start = std::time::Instant::now();
    let (md, report) = crate::data::load(paths, &le.exp.data)?;
    for w in &report.warnings {
        tracing::warn!("{}: {}", w.file.display(), w.message);
    }
    tracing::info!("loaded {} bars x {} symbols in {:.2} s", md.len(), md.symbols.len(), start.elapsed().as_secs_f64());
    let mut study = Study::new(le, Arc::new(md))?;
    let root = opts.out_root.join(&le.exp.experiment.name);
    let dir = match &opts.resume {
        Some(d) if !d.as_os_str().is_empty() => d.clone(),
        Some(_) => latest_run(&root)?,
        None => crate::report::new_run_dir(&root)?,
    };
    let fp = resume::Fingerprint::of(le, paths)?;
    if opts.resume.is_some() {
        fp.check(&dir)?;
    } else {
        fp.write(&dir)?;
    }
    let mut log = study.resume_log(&dir, opts.resume.is_some())?;
    let progress = progress_bar(opts.quiet);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs.unwrap_or(0)).build().map_err(|e| Error::Internal(e.to_string()))?;
    let result = pool.install(|| search(&mut study, Some(&mut log), &progress))?;
    progress.finish_and_clear();
    tracing::info!("searched {} candidates by {:.2} s", result.count, start.elapsed().as_secs_f64());
    let summary = pool.install(|| finish(&study, &result, &dir, start))?;
    tracing::info!("summarized by {:.2} s", start.elapsed().as_secs_f64());
    // The indicator cache and the search's buffers are no longer needed: free them before drawing.
    drop((study, result));
    crate::data::release_freed_memory();
    crate::report::render_optimize(&dir)?;
    tracing::info!("drew the report by {:.2} s", start.elapsed().as_secs_f64());
    Ok((dir, summary))
}

fn latest_run(root: &Path) -> Result<PathBuf> {
    let none = || Error::Input(format!("--resume: no run with a trials.csv under {}", root.display()));
    let mut runs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { none() } else { Error::io(root, e) })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("trials.csv").exists())
        .collect();
    runs.sort();
    runs.pop().ok_or_else(none)
}

/// A progress bar on stderr (hidden when quiet).
pub fn progress_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} {elapsed_precise} [{bar:30}] {pos}/{len} trials  {per_sec}  eta {eta}  {msg}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}
