//! Judging a search honestly: walk-forward evaluation (optimize on each train window, apply the
//! choice to the following test window, stitch the out-of-sample equity) and the deflated Sharpe
//! ratio (Bailey and López de Prado, 2014).
//!
//! Windows: with W windows and train ratio R, the bars are cut into a train stretch of R test
//! lengths followed by W test windows (the last takes the remainder). A window's train range is
//! the R test lengths before its test window (rolling) or everything before it (anchored). The
//! chosen parameters are backtested from the first bar to the end of the test window (decisions
//! only ever see the past, and indicators are warm) and judged on the test window's returns only.

use super::{progress_bar, search, stat, Study};
use crate::data::time::format_ts;
use crate::data::MarketData;
use crate::engine::{backtest, prepare};
use crate::error::{Error, Result};
use crate::experiment::LoadedExperiment;
use crate::metrics::{from_equity, Stats};
use statrs::distribution::{ContinuousCDF, Normal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The deflated Sharpe ratio of a search's best trial and what went into it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Deflation {
    /// The probability that the best trial's true Sharpe is above zero, allowing for having
    /// picked it out of `trials_tried` and for its returns' skewness and kurtosis.
    pub deflated_sharpe: f64,
    /// The best trial's Sharpe per bar (mean excess return over standard deviation, not
    /// annualized).
    pub sharpe_per_bar: f64,
    /// Skewness of the best trial's per-bar returns.
    pub skewness: f64,
    /// Kurtosis (not excess: 3 for normal returns) of the best trial's per-bar returns.
    pub kurtosis: f64,
    /// Number of returns `T`.
    pub returns: usize,
    /// Number of trials tried `N` (every trial run, whatever its outcome).
    pub trials_tried: usize,
    /// Variance of the per-bar Sharpes of the trials that have one.
    pub trial_sharpe_variance: f64,
    /// The expected maximum of `N` per-bar Sharpes with that variance when no trial has skill.
    pub expected_max_sharpe: f64,
}

/// Deflated Sharpe ratio (Bailey and López de Prado, 2014): with `sr` the best trial's Sharpe
/// per bar over `t` returns of skewness `skew` and kurtosis `kurt`, `n` trials tried whose
/// Sharpes have variance `var`, the expected maximum Sharpe under the null is
/// `SR0 = sqrt(var) * ((1 - g) * z(1 - 1/N) + g * z(1 - 1/(N e)))` (g the Euler-Mascheroni
/// constant) and `DSR = Phi((sr - SR0) * sqrt(T - 1) / sqrt(1 - skew * sr + (kurt - 1) / 4 * sr^2))`.
/// NaN when it cannot be computed (fewer than 2 trials or 3 returns, or a non-finite input).
pub fn deflated_sharpe(sr: f64, skew: f64, kurt: f64, t: usize, var: f64, n: usize) -> Deflation {
    let mut d = Deflation {
        deflated_sharpe: f64::NAN,
        sharpe_per_bar: sr,
        skewness: skew,
        kurtosis: kurt,
        returns: t,
        trials_tried: n,
        trial_sharpe_variance: var,
        expected_max_sharpe: f64::NAN,
    };
    let Ok(norm) = Normal::new(0.0, 1.0) else { return d };
    if n < 2 || t < 3 || !(sr.is_finite() && skew.is_finite() && kurt.is_finite() && var.is_finite()) {
        return d;
    }
    let g = 0.577_215_664_901_532_9;
    let nf = n as f64;
    d.expected_max_sharpe =
        var.sqrt() * ((1.0 - g) * norm.inverse_cdf(1.0 - 1.0 / nf) + g * norm.inverse_cdf(1.0 - 1.0 / (nf * std::f64::consts::E)));
    let v = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr;
    if v > 0.0 {
        d.deflated_sharpe = norm.cdf((sr - d.expected_max_sharpe) * (t as f64 - 1.0).sqrt() / v.sqrt());
    }
    d
}

/// Skewness and kurtosis (not excess) of a sample, by its central moments `m3 / m2^1.5` and
/// `m4 / m2^2`; NaN for fewer than 2 values or no variance.
pub fn skew_kurtosis(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    if x.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let m = x.iter().sum::<f64>() / n;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for v in x {
        let d = v - m;
        m2 += d * d;
        m3 += d * d * d;
        m4 += d * d * d * d;
    }
    let (m2, m3, m4) = (m2 / n, m3 / n, m4 / n);
    if m2 <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    (m3 / m2.powf(1.5), m4 / (m2 * m2))
}

fn block_sharpe(b: &[[f64; 3]], set: &[usize]) -> f64 {
    let (mut s, mut s2, mut n) = (0.0, 0.0, 0.0);
    for &k in set {
        s += b[k][0];
        s2 += b[k][1];
        n += b[k][2];
    }
    if n < 2.0 {
        return f64::NEG_INFINITY;
    }
    let var = (s2 - s * s / n) / (n - 1.0);
    if var > 0.0 {
        s / n / var.sqrt()
    } else {
        f64::NEG_INFINITY
    }
}

/// Probability of backtest overfitting (Bailey, Borwein, López de Prado and Zhu), by
/// combinatorially symmetric cross-validation: the bars are cut into S blocks; for every way of
/// choosing S/2 blocks as in-sample, the trial with the best in-sample Sharpe is ranked among
/// all trials on the other blocks; with relative rank w in (0, 1), the logit ln(w / (1 - w)) is
/// at most 0 when it fell in the bottom half. PBO is the share of splits where that happened.
/// `trials[i][k]` = (sum of returns, sum of squares, count) of trial i over block k.
pub fn pbo<const S: usize>(trials: &[[[f64; 3]; S]]) -> f64 {
    let rows: Vec<(usize, [[f64; 3]; S])> = trials.iter().copied().enumerate().collect();
    let mut p = Pbo::<S>::new();
    p.find_winners(&rows);
    p.rank_winners(&rows);
    p.value()
}

/// [`pbo`] over trials streamed in chunks, in two passes (so memory does not grow with the
/// trials): every chunk to [`Pbo::find_winners`], then every chunk again to
/// [`Pbo::rank_winners`]. Each row is (trial index, block sums); chunks may come in any order
/// (ties go to the lowest index), but every trial exactly once per pass.
pub struct Pbo<const S: usize> {
    /// Per split: in-sample blocks, out-of-sample blocks, the in-sample winner (Sharpe, index,
    /// out-of-sample Sharpe) and the trials below and equal to it out of sample.
    splits: Vec<Split>,
    trials: usize,
}

struct Split {
    is: Vec<usize>,
    oos: Vec<usize>,
    winner: Option<(f64, usize, f64)>,
    below: usize,
    equal: usize,
}

impl<const S: usize> Pbo<S> {
    /// Every split of the S blocks into two halves.
    pub fn new() -> Self {
        let splits = (0u32..(1 << S))
            .filter(|mask| mask.count_ones() as usize == S / 2)
            .map(|mask| Split {
                is: (0..S).filter(|k| mask & (1 << k) != 0).collect(),
                oos: (0..S).filter(|k| mask & (1 << k) == 0).collect(),
                winner: None,
                below: 0,
                equal: 0,
            })
            .collect();
        Pbo { splits, trials: 0 }
    }

    /// Pass 1: the best in-sample trial of each split so far.
    pub fn find_winners(&mut self, rows: &[(usize, [[f64; 3]; S])]) {
        use rayon::prelude::*;
        self.trials += rows.len();
        self.splits.par_iter_mut().for_each(|sp| {
            for (i, b) in rows {
                let v = block_sharpe(b, &sp.is);
                let better = sp.winner.is_none_or(|(w, wi, _)| v.total_cmp(&w).then(wi.cmp(i)).is_gt());
                if better {
                    sp.winner = Some((v, *i, block_sharpe(b, &sp.oos)));
                }
            }
        });
    }

    /// Pass 2: count the trials below and equal to each split's winner out of sample.
    pub fn rank_winners(&mut self, rows: &[(usize, [[f64; 3]; S])]) {
        use rayon::prelude::*;
        self.splits.par_iter_mut().for_each(|sp| {
            let Some((_, _, v)) = sp.winner else { return };
            for (_, b) in rows {
                let o = block_sharpe(b, &sp.oos);
                sp.below += usize::from(o < v);
                sp.equal += usize::from(o == v);
            }
        });
    }

    /// The share of splits whose winner ranked in the bottom half out of sample.
    pub fn value(&self) -> f64 {
        let n = self.trials as f64;
        let overfit = self
            .splits
            .iter()
            .filter(|sp| {
                // Rank 1 = worst out of sample; ties count half (the winner ties with itself).
                let rank = sp.below as f64 + (sp.equal as f64 + 1.0) / 2.0;
                let w = rank / (n + 1.0);
                (w / (1.0 - w)).ln() <= 0.0
            })
            .count();
        overfit as f64 / self.splits.len().max(1) as f64
    }
}

impl<const S: usize> Default for Pbo<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// The (train, test) bar ranges of every window.
pub fn windows(n: usize, count: usize, train_ratio: f64, anchored: bool) -> Result<Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>> {
    let test = (n as f64 / (count as f64 + train_ratio)).floor() as usize;
    let train = (test as f64 * train_ratio).floor() as usize;
    if test < 2 || train < 2 {
        return Err(Error::Input(format!("walk-forward: {n} bars are too few for {count} windows with train ratio {train_ratio}")));
    }
    Ok((0..count)
        .map(|k| {
            let ts = train + k * test;
            let te = if k + 1 == count { n } else { ts + test };
            let tr = if anchored { 0..ts } else { ts - train..ts };
            (tr, ts..te)
        })
        .collect())
}

/// One walk-forward window's outcome.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Train range (first, last bar time).
    pub train: (String, String),
    /// Test range.
    pub test: (String, String),
    /// Parameters chosen on the train window.
    pub params: std::collections::BTreeMap<String, toml::Value>,
    /// The best trial's objective in sample.
    pub in_sample: f64,
    /// The chosen parameters' objective on the test window.
    pub out_of_sample: f64,
    /// The experiment's own parameters' objective on the test window.
    pub default_out_of_sample: f64,
}

/// Summary of a walk-forward run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WalkForward {
    /// Objective judged.
    pub objective: String,
    /// Per window.
    pub windows: Vec<Window>,
    /// Statistics of the stitched out-of-sample equity of the optimized parameters.
    pub stitched: Stats,
    /// The same for the experiment's own parameters.
    pub stitched_default: Stats,
    /// Stitched objective, optimized minus default.
    pub improvement: f64,
}

/// The test window's bar returns, and what was prepared for it (its model predictions, if any,
/// go into the walk-forward's model report).
fn test_returns(
    le: &LoadedExperiment,
    upto: &Arc<MarketData>,
    cache: &Arc<crate::signals::IndicatorCache>,
    test: &std::ops::Range<usize>,
) -> Result<(Vec<f64>, crate::engine::Prepared)> {
    let prep = prepare(le, upto.clone(), cache)?;
    let r = backtest(&le.exp, &prep);
    let eq = &r.equity;
    let rets = (test.start..test.end)
        .map(|t| if t == 0 { eq[0] / le.exp.portfolio.initial_cash - 1.0 } else { eq[t] / eq[t - 1] - 1.0 })
        .collect();
    Ok((rets, prep))
}

fn chain(start: f64, rets: &[f64]) -> Vec<f64> {
    let mut e = start;
    rets.iter()
        .map(|r| {
            e *= 1.0 + r;
            e
        })
        .collect()
}

/// A window's outcome with its test returns (optimized and default), exactly: what stitching
/// needs (a sharded walk-forward keeps it as `window_K/window.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WindowRun {
    /// Its number, from 0.
    pub window: usize,
    /// Its outcome.
    pub outcome: Window,
    /// The chosen parameters' test-window bar returns.
    pub optimized: Vec<f64>,
    /// The experiment's own parameters' test-window bar returns.
    pub default: Vec<f64>,
}

/// `tradelab walk-forward`: windows, a search per train window, out-of-sample judgement,
/// stitched equity. Writes `walk_forward.json`, `walk_forward.csv`, `oos_equity.csv`, each
/// window's `window_K/trials.csv`, and with `[[signals.models]]` the chosen parameters' model
/// predictions on the test windows (`model_signals.csv`, `model.json`) into `dir`.
pub fn run_walk_forward(le: &LoadedExperiment, md: Arc<MarketData>, dir: &Path, jobs: Option<usize>, quiet: bool) -> Result<WalkForward> {
    let (cfg, wins) = plan(le, &md)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build().map_err(|e| Error::Internal(e.to_string()))?;
    let mut runs = Vec::new();
    let mut model_parts = Vec::new();
    for k in 0..wins.len() {
        let (run, prep) = run_window(le, &md, &cfg, &wins, k, dir, &pool, quiet)?;
        if !prep.models.is_empty() {
            model_parts.push((prep, wins[k].1.clone()));
        }
        runs.push(run);
    }
    if !model_parts.is_empty() {
        // The chosen parameters' model predictions on each test window, stitched.
        let parts: Vec<_> = model_parts.iter().map(|(p, r)| (p, r.clone())).collect();
        crate::report::write_models(dir, &parts)?;
    }
    stitch(le, &md, &cfg, &wins, runs, dir)
}

type Windows = Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>;

/// The search settings and the (train, test) windows of a walk-forward over `md`.
fn plan(le: &LoadedExperiment, md: &MarketData) -> Result<(crate::experiment::OptimizeConfig, Windows)> {
    let cfg = le.exp.optimize.clone().ok_or_else(|| Error::Config {
        file: le.file.clone(),
        key: "optimize".into(),
        msg: "missing: walk-forward needs an [optimize] table".into(),
    })?;
    let w = &cfg.walk_forward;
    let wins = windows(md.len(), w.windows, w.train_ratio, w.anchored)?;
    Ok((cfg, wins))
}

/// Window k: the search on its train part (into `dir/window_k`), then the chosen and the
/// default parameters on its test part.
#[allow(clippy::too_many_arguments)]
fn run_window(
    le: &LoadedExperiment,
    md: &Arc<MarketData>,
    cfg: &crate::experiment::OptimizeConfig,
    wins: &Windows,
    k: usize,
    dir: &Path,
    pool: &rayon::ThreadPool,
    quiet: bool,
) -> Result<(WindowRun, crate::engine::Prepared)> {
    let (train, test) = &wins[k];
    let per_year = le.exp.metrics.periods_per_year.unwrap_or_else(|| md.bars_per_year());
    let init = le.exp.portfolio.initial_cash;
    let judge = |rets: &[f64]| -> f64 {
        let s = from_equity(&chain(init, rets), init, per_year, le.exp.metrics.risk_free);
        stat(&s, &cfg.objective).unwrap_or(f64::NAN)
    };
    let wdir = dir.join(format!("window_{k}"));
    std::fs::create_dir_all(&wdir).map_err(|e| Error::io(&wdir, e))?;
    let mut study = Study::new(le, Arc::new(md.slice(train.clone())))?;
    // The window is judged in and out of sample on the whole market's calendar (a short
    // window of a market closed at weekends could not tell so by itself).
    study.cache.shared(crate::engine::PER_YEAR.into(), || md.bars_per_year());
    let (mut log, _) = super::TrialLog::open(&wdir, &study.space, false)?;
    let pb = progress_bar(quiet);
    pb.set_prefix(format!("window {}/{}", k + 1, wins.len()));
    let res = pool.install(|| search(&mut study, Some(&mut log), &pb))?;
    pb.finish_and_clear();
    // A window whose candidates all failed has chosen nothing: judging some default in its
    // place would report an optimization that never happened.
    let best = super::summary::best_that_ran(&res).map_err(|e| match e {
        Error::Input(m) => Error::Input(format!("window {k} (train bars {}..{}): {m}", train.start, train.end)),
        e => e,
    })?;
    let chosen = study.candidate(&best.params).map_err(|(_, m)| Error::Internal(m))?;
    let path = wdir.join("best.toml");
    crate::data::write_atomic(&path, chosen.to_toml().as_bytes())?;
    let chosen = LoadedExperiment { exp: chosen, file: le.file.clone() };
    // The data up to the test window's end, and its own indicator cache (a cache belongs to
    // one market), shared by the two test runs.
    let upto = Arc::new(md.slice(0..test.end));
    let cache = Arc::default();
    let (opt, prep) = test_returns(&chosen, &upto, &cache, test)?;
    let (def, _) = test_returns(&study.le, &upto, &cache, test)?;
    let outcome = Window {
        train: (format_ts(md.timestamps[train.start]), format_ts(md.timestamps[train.end - 1])),
        test: (format_ts(md.timestamps[test.start]), format_ts(md.timestamps[test.end - 1])),
        params: study.space.paths.iter().cloned().zip(best.params.iter().cloned()).collect(),
        in_sample: best.objective,
        out_of_sample: judge(&opt),
        default_out_of_sample: judge(&def),
    };
    Ok((WindowRun { window: k, outcome, optimized: opt, default: def }, prep))
}

/// Stitch the windows' test returns (in window order) and write `oos_equity.csv`,
/// `walk_forward.csv` and `walk_forward.json` into `dir`.
fn stitch(
    le: &LoadedExperiment,
    md: &MarketData,
    cfg: &crate::experiment::OptimizeConfig,
    wins: &Windows,
    runs: Vec<WindowRun>,
    dir: &Path,
) -> Result<WalkForward> {
    let per_year = le.exp.metrics.periods_per_year.unwrap_or_else(|| md.bars_per_year());
    let init = le.exp.portfolio.initial_cash;
    let (mut all_opt, mut all_def, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for r in runs {
        all_opt.extend(r.optimized);
        all_def.extend(r.default);
        out.push(r.outcome);
    }
    let eq_opt = chain(init, &all_opt);
    let eq_def = chain(init, &all_def);
    let stitched = from_equity(&eq_opt, init, per_year, le.exp.metrics.risk_free);
    let stitched_default = from_equity(&eq_def, init, per_year, le.exp.metrics.risk_free);
    let improvement = stat(&stitched, &cfg.objective).unwrap_or(f64::NAN) - stat(&stitched_default, &cfg.objective).unwrap_or(f64::NAN);
    let first_test = wins[0].1.start;
    let path = dir.join("oos_equity.csv");
    let mut w = crate::data::CsvFile::create(&path, ["timestamp", "optimized", "default"])?;
    for (i, (a, b)) in eq_opt.iter().zip(&eq_def).enumerate() {
        w.row(&[&format_ts(md.timestamps[first_test + i]), a, b])?;
    }
    w.finish()?;
    let path = dir.join("walk_forward.csv");
    let head =
        ["window", "train_start", "train_end", "test_start", "test_end", "in_sample", "out_of_sample", "default_out_of_sample", "params"];
    let mut w = crate::data::CsvFile::create(&path, head)?;
    for (k, x) in out.iter().enumerate() {
        let params: Vec<String> = x.params.iter().map(|(p, v)| format!("{p}={v}")).collect();
        let params = params.join("; ");
        w.row(&[&k, &x.train.0, &x.train.1, &x.test.0, &x.test.1, &x.in_sample, &x.out_of_sample, &x.default_out_of_sample, &params])?;
    }
    w.finish()?;
    let wf = WalkForward { objective: cfg.objective.clone(), windows: out, stitched, stitched_default, improvement };
    let path = dir.join("walk_forward.json");
    let json = serde_json::to_string_pretty(&wf).map_err(|e| Error::Internal(e.to_string()))? + "\n";
    crate::data::write_atomic(&path, json.as_bytes())?;
    Ok(wf)
}

/// Run the windows `i`, `i + n`, ... of the experiment's walk-forward (shard `i` of `n`) into
/// `shard_dir(root, i, n)`: each window's folder as the whole walk-forward writes it, plus its
/// `window.json`; a window already there (a requeued shard) is not run again. Models' test
/// predictions are not kept by shards.
pub fn run_walk_shard(
    le: &LoadedExperiment,
    paths: &[PathBuf],
    root: &Path,
    (i, n): (usize, usize),
    jobs: Option<usize>,
    quiet: bool,
) -> Result<(PathBuf, super::shard::ShardDone)> {
    let (md, _) = crate::data::load(paths, &le.exp.data)?;
    let md = Arc::new(md);
    let (cfg, wins) = plan(le, &md)?;
    let dir = super::shard::prepare_shard_dir(le, paths, root, (i, n))?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build().map_err(|e| Error::Internal(e.to_string()))?;
    let mut count = 0;
    for k in (i..wins.len()).step_by(n) {
        let wjson = dir.join(format!("window_{k}")).join("window.json");
        if !wjson.exists() {
            let (run, _) = run_window(le, &md, &cfg, &wins, k, &dir, &pool, quiet)?;
            let json = serde_json::to_string(&run).map_err(|e| Error::Internal(e.to_string()))?;
            crate::data::write_atomic(&wjson, (json + "\n").as_bytes())?;
        }
        count += 1;
    }
    let done =
        super::shard::ShardDone { shard: i, of: n, trials: count, run_paths: Default::default(), walk_forward_windows: Some(wins.len()) };
    super::shard::finish_shard(&dir, &done)?;
    Ok((dir, done))
}

/// Stitch a sharded walk-forward's windows (read from `window_K/window.json` in the shard
/// folders) into `dir`, which already holds their copied window folders.
pub(crate) fn stitch_shards(le: &LoadedExperiment, window_dirs: &[PathBuf], dir: &Path) -> Result<WalkForward> {
    let (md, _) = crate::data::load(&le.data_paths(), &le.exp.data)?;
    let (cfg, wins) = plan(le, &md)?;
    let mut runs = Vec::new();
    for (k, wd) in window_dirs.iter().enumerate() {
        let p = wd.join("window.json");
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let run: WindowRun = serde_json::from_str(&text).map_err(|e| Error::data(&p, None, "bad-json", e.to_string()))?;
        if run.window != k {
            return Err(Error::Input(format!("{}: holds window {}, expected {k}", p.display(), run.window)));
        }
        runs.push(run);
    }
    if runs.len() != wins.len() {
        return Err(Error::Input(format!("{} of the walk-forward's {} windows found", runs.len(), wins.len())));
    }
    stitch(le, &md, &cfg, &wins, runs, dir)
}

/// Load an experiment's data and run the walk-forward into a new run folder under `out_root`.
pub fn walk_forward_file(
    le: &LoadedExperiment,
    paths: &[PathBuf],
    out_root: &Path,
    jobs: Option<usize>,
    quiet: bool,
) -> Result<(PathBuf, WalkForward)> {
    let (md, report) = crate::data::load(paths, &le.exp.data)?;
    for w in &report.warnings {
        tracing::warn!("{}: {}", w.file.display(), w.message);
    }
    let dir = crate::report::new_run_dir(&out_root.join(format!("{}_walk_forward", le.exp.experiment.name)))?;
    let wf = run_walk_forward(le, Arc::new(md), &dir, jobs, quiet)?;
    crate::report::render_walk(&dir)?;
    Ok((dir, wf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflated_sharpe_of_the_paper_s_example() {
        // Bailey and López de Prado (2014), the numerical example: annualized SR 2.5 over 5
        // years of daily returns (T = 1250, 250 a year), skewness -3, kurtosis 10, N = 100
        // trials whose annualized Sharpes have variance 0.5. The paper finds DSR = 0.9004.
        let d = deflated_sharpe(2.5 / 250f64.sqrt(), -3.0, 10.0, 1250, 0.5 / 250.0, 100);
        assert!((d.deflated_sharpe - 0.9004).abs() < 5e-5, "{d:?}");
    }

    #[test]
    fn deflated_sharpe_by_formula() {
        // Two trials with Sharpes of variance 0.005; N = 2: z(0.5) = 0, z(1 - 1/(2e)).
        let norm = Normal::new(0.0, 1.0).unwrap();
        let z = norm.inverse_cdf(1.0 - 1.0 / (2.0 * std::f64::consts::E));
        let sr0 = 0.005f64.sqrt() * 0.577_215_664_901_532_9 * z;
        // Normal returns (skew 0, kurtosis 3): the standard error is sqrt((1 + SR^2/2) / (T-1)).
        let se = ((1.0 + 0.005) / 99.0f64).sqrt();
        let d = deflated_sharpe(0.1, 0.0, 3.0, 100, 0.005, 2);
        assert!((d.expected_max_sharpe - sr0).abs() < 1e-15);
        assert!((d.deflated_sharpe - norm.cdf((0.1 - sr0) / se)).abs() < 1e-12);
        // Fat tails and negative skew widen the error: the same Sharpe is less certain.
        let fat = deflated_sharpe(0.1, -1.0, 12.0, 100, 0.005, 2);
        let se = ((1.0 + 0.1 + 11.0 / 4.0 * 0.01) / 99.0f64).sqrt();
        assert!((fat.deflated_sharpe - norm.cdf((0.1 - sr0) / se)).abs() < 1e-12);
        assert!(fat.deflated_sharpe < d.deflated_sharpe);
        // More trials deflate more.
        assert!(deflated_sharpe(0.1, 0.0, 3.0, 100, 0.005, 100).deflated_sharpe < d.deflated_sharpe);
    }

    #[test]
    fn moments_by_hand() {
        // 0, 0, 0, 4: mean 1, deviations -1, -1, -1, 3; m2 = 3, m3 = 6, m4 = 21.
        let (s, k) = skew_kurtosis(&[0.0, 0.0, 0.0, 4.0]);
        assert!((s - 6.0 / 3f64.powf(1.5)).abs() < 1e-12);
        assert!((k - 21.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn pbo_of_a_small_case_by_hand() {
        // Four blocks of two returns each, m + 0.01 and m - 0.01. A earns m = 0.03 in blocks
        // 0 and 1 and -0.01 in 2 and 3, B the reverse, C 0.012 everywhere. Sharpes (ddof 1):
        // A or B on its two good blocks 0.03 / 0.011547 = 2.598, on its bad ones -0.866; on one
        // of each 0.01 / 0.025820 = 0.387; C on any two 0.012 / 0.011547 = 1.039.
        // Splits {0,1} and {2,3}: A (or B) wins in sample and is last of three out of sample,
        // w = 1/4, logit < 0. The four mixed splits: C wins and is first out of sample, w = 3/4.
        // PBO = 2 / 6.
        let blk = |m: f64| [2.0 * m, (m + 0.01f64).powi(2) + (m - 0.01f64).powi(2), 2.0];
        let a = [blk(0.03), blk(0.03), blk(-0.01), blk(-0.01)];
        let b = [blk(-0.01), blk(-0.01), blk(0.03), blk(0.03)];
        let c = [blk(0.012); 4];
        assert!((pbo(&[a, b, c]) - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn pbo_of_a_persistent_and_of_a_reversing_winner() {
        // Trial 0 is best in every block: the in-sample winner is also best out of sample.
        let mk = |f: &dyn Fn(usize) -> f64| -> [[f64; 3]; crate::metrics::BLOCKS] {
            std::array::from_fn(|k| {
                let m = f(k);
                // 100 returns with mean m and variance 1e-4: sum, sum of squares, count.
                [100.0 * m, 100.0 * (1e-4 + m * m), 100.0]
            })
        };
        let good = mk(&|_| 0.002);
        let mid = mk(&|_| 0.0);
        let bad = mk(&|_| -0.002);
        assert_eq!(pbo(&[good, mid, bad, mid]), 0.0);
        // Trial 0 swings +/- with distinct sizes and sums to zero; trial 1 mirrors it. The
        // in-sample winner always holds the other half's losses: it ranks last out of sample.
        // No five of these sum to zero (the closest is 0.1), so no split is a tie.
        let sizes = [1.1, 2.3, 3.7, 4.1, 5.3, -1.7, -2.9, -3.1, -4.3, -4.5];
        let a = mk(&|k| 0.001 * sizes[k]);
        let b = mk(&|k| -0.001 * sizes[k]);
        let flat = mk(&|_| 0.0);
        assert_eq!(pbo(&[a, b, flat]), 1.0);
    }

    /// PBO as the paper states it, every trial in memory (the form `pbo` had before streaming).
    fn pbo_whole<const S: usize>(trials: &[[[f64; 3]; S]]) -> f64 {
        let n = trials.len();
        let (mut total, mut overfit) = (0usize, 0usize);
        for mask in 0u32..(1 << S) {
            if mask.count_ones() as usize != S / 2 {
                continue;
            }
            let is: Vec<usize> = (0..S).filter(|k| mask & (1 << k) != 0).collect();
            let oos: Vec<usize> = (0..S).filter(|k| mask & (1 << k) == 0).collect();
            let best = (0..n)
                .max_by(|&a, &b| block_sharpe(&trials[a], &is).total_cmp(&block_sharpe(&trials[b], &is)).then(b.cmp(&a)))
                .unwrap_or(0);
            let v = block_sharpe(&trials[best], &oos);
            let below = (0..n).filter(|&j| block_sharpe(&trials[j], &oos) < v).count() as f64;
            let equal = (0..n).filter(|&j| block_sharpe(&trials[j], &oos) == v).count() as f64;
            let w = (below + (equal + 1.0) / 2.0) / (n as f64 + 1.0);
            total += 1;
            overfit += usize::from((w / (1.0 - w)).ln() <= 0.0);
        }
        overfit as f64 / total.max(1) as f64
    }

    #[test]
    fn pbo_streamed_in_shuffled_chunks_equals_pbo_over_all_trials_at_once() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for case in 0..20 {
            let n = rng.gen_range(4..300);
            // Each block's sum one of three values: distinct trials often tie in sample and
            // differ out of sample, so which of equals wins matters.
            let trials: Vec<[[f64; 3]; crate::metrics::BLOCKS]> =
                (0..n).map(|_| std::array::from_fn(|_| [[-0.5, 0.0, 0.5][rng.gen_range(0..3)], 2.0, 50.0])).collect();
            let mut rows: Vec<(usize, _)> = trials.iter().copied().enumerate().collect();
            for i in (1..rows.len()).rev() {
                rows.swap(i, rng.gen_range(0..=i));
            }
            let chunk = rng.gen_range(1..40);
            let mut p = Pbo::new();
            rows.chunks(chunk).for_each(|c| p.find_winners(c));
            rows.chunks(chunk).rev().for_each(|c| p.rank_winners(c));
            assert_eq!(p.value(), pbo_whole(&trials), "case {case}: {n} trials in chunks of {chunk}");
        }
    }

    #[test]
    fn window_ranges() {
        // 100 bars, 2 windows, ratio 3: test 20, train 60.
        let w = windows(100, 2, 3.0, false).unwrap();
        assert_eq!(w, vec![(0..60, 60..80), (20..80, 80..100)]);
        let a = windows(100, 2, 3.0, true).unwrap();
        assert_eq!(a[1], (0..80, 80..100));
        assert!(windows(5, 4, 3.0, false).is_err());
    }
}
