//! The summary of a finished search (`optimize.json`, `best.toml`, `top_equity.csv`), computed
//! from its trial log on disk in passes (one row, or one chunk of block sums, in memory at a
//! time): the best trial re-run, the deflated Sharpe ratio over every trial tried, the effective
//! number of independent trials, the probability of backtest overfitting, and the top curves.

use super::{trials, walk, RunPaths, SearchResult, Study, Trial, TrialStatus};
use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::metrics::Stats;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Summary written to `optimize.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Search method.
    pub method: String,
    /// Objective and direction.
    pub objective: String,
    /// Maximize or minimize.
    pub direction: String,
    /// Trials evaluated.
    pub trials: usize,
    /// Trials that satisfied every constraint.
    pub feasible: usize,
    /// Best trial index.
    pub best_trial: usize,
    /// Its parameters.
    pub best_params: BTreeMap<String, toml::Value>,
    /// Its objective.
    pub best_objective: f64,
    /// Its full statistics (re-run).
    pub best_stats: Stats,
    /// Deflated Sharpe ratio of the best trial (the full formula, with its returns' skewness
    /// and kurtosis, over every trial tried); `deflation` has its inputs.
    pub deflated_sharpe: f64,
    /// What the deflated Sharpe ratio was computed from.
    pub deflation: walk::Deflation,
    /// How many of the trials were in effect independent (for reading the deflation: a grid of
    /// neighbouring parameters is far fewer independent tries than trials).
    pub effective_trials: Option<EffectiveTrials>,
    /// Probability of backtest overfitting by combinatorially symmetric cross-validation over
    /// the trials' returns in 10 blocks of bars (Sharpe ratio as the measure); absent for fewer
    /// than 4 trials.
    pub pbo: Option<f64>,
    /// Distinct indicator series computed whole (shared by the candidates run through the
    /// engine; the batch path makes its series tile by tile and keeps none).
    pub indicators_computed: usize,
    /// How many candidates ran through the batch path, and how many through the engine alone
    /// and why.
    pub run_paths: RunPaths,
    /// Wall time in seconds (not part of the determinism guarantee).
    pub seconds: f64,
}

/// What the summary needs from the trial log, gathered in passes over `trials.csv` (one row in
/// memory at a time).
struct LogScan {
    trials: usize,
    feasible: usize,
    /// Which trials ran, by index (one byte per trial).
    ok: Vec<bool>,
    ok_count: usize,
    /// Sum and count of the finite per-bar Sharpe ratios.
    sharpe_sum: f64,
    sharpe_n: usize,
    /// The best feasible trials, best first.
    top: Vec<Trial>,
}

/// A search's best trial, which must have run: a search where every point broke a rule or
/// every candidate was invalid has no answer, and says why instead of choosing one.
pub(crate) fn best_that_ran(r: &SearchResult) -> Result<&Trial> {
    let Some(best) = r.best.as_ref() else {
        return Err(Error::Input("no candidate to run: every point of the space breaks a rule in [optimize].rules".into()));
    };
    if best.status != TrialStatus::Ok {
        return Err(Error::Input(format!(
            "no candidate could be run: all {} trials were refused by the rules or invalid (e.g. trial {}: {} {}); see trials.csv",
            r.count,
            best.index,
            best.status.as_str(),
            best.reason
        )));
    }
    Ok(best)
}

/// Write best.toml and optimize.json for a finished search whose trials are in `dir`'s log.
pub(crate) fn finish(study: &Study, r: &SearchResult, dir: &Path, start: std::time::Instant) -> Result<Summary> {
    const TOP: usize = 5;
    let best = best_that_ran(r)?;
    let exp = study.candidate(&best.params).map_err(|(_, m)| Error::Internal(format!("best trial cannot be rebuilt: {m}")))?;
    let path = dir.join("best.toml");
    crate::data::write_atomic(&path, exp.to_toml().as_bytes())?;
    let per_year = crate::engine::periods_per_year(&exp, &study.md, &study.cache);
    let sharpe = |t: &Trial| Some(t.key_stats[1] / per_year.sqrt()).filter(|s| s.is_finite() && t.status == TrialStatus::Ok);
    let mut scan = LogScan { trials: 0, feasible: 0, ok: Vec::new(), ok_count: 0, sharpe_sum: 0.0, sharpe_n: 0, top: Vec::new() };
    trials::for_each_trial(dir, &study.space, |t| {
        scan.trials += 1;
        scan.feasible += usize::from(t.feasible);
        let ok = t.status == TrialStatus::Ok;
        if scan.ok.len() <= t.index {
            scan.ok.resize(t.index + 1, false);
        }
        scan.ok[t.index] = ok;
        scan.ok_count += usize::from(ok);
        if let Some(s) = sharpe(&t) {
            scan.sharpe_sum += s;
            scan.sharpe_n += 1;
        }
        if ok && t.feasible && t.score.is_finite() {
            let at = scan.top.partition_point(|u| u.score.total_cmp(&t.score).then(t.index.cmp(&u.index)).is_gt());
            if at < TOP {
                scan.top.insert(at, t);
                scan.top.truncate(TOP);
            }
        }
        Ok(())
    })?;
    // Second pass: the spread of the Sharpe ratios about their mean, and the trials sampled for
    // the effective number of trials.
    let picked = effective_sample(scan.ok_count);
    let (mut ss, mut seen, mut sample) = (0.0, 0usize, Vec::with_capacity(picked.len()));
    let mean = scan.sharpe_sum / scan.sharpe_n.max(1) as f64;
    trials::for_each_trial(dir, &study.space, |t| {
        if let Some(s) = sharpe(&t) {
            ss += (s - mean).powi(2);
        }
        if t.status == TrialStatus::Ok {
            if picked.binary_search(&seen).is_ok() {
                sample.push(t);
            }
            seen += 1;
        }
        Ok(())
    })?;
    let var = if scan.sharpe_n > 1 { ss / (scan.sharpe_n - 1) as f64 } else { f64::NAN };
    // The re-runs, together: the best trial (its statistics and returns), the trials sampled
    // for the effective number of trials (their returns, summed in stretches) and the top
    // trials (their curves).
    let rebuild =
        |t: &Trial| study.candidate(&t.params).map_err(|(_, m)| Error::Internal(format!("trial {} cannot be rebuilt: {m}", t.index)));
    let sampled = if sample.len() < 2 { Vec::new() } else { sample.iter().map(rebuild).collect::<Result<Vec<_>>>()? };
    let top: Vec<(usize, Experiment)> = scan.top.iter().filter_map(|t| Some((t.index, study.candidate(&t.params).ok()?))).collect();
    let (n_sampled, top_index): (usize, Vec<usize>) = (sampled.len(), top.iter().map(|(i, _)| *i).collect());
    let cash: Vec<f64> = std::iter::once(&exp).chain(&sampled).map(|e| e.portfolio.initial_cash).collect();
    let runs: Vec<Experiment> = std::iter::once(exp).chain(sampled).chain(top.into_iter().map(|(_, e)| e)).collect();
    let per = study.md.len().div_ceil(MAX_POINTS).max(1);
    let (mut best_stats, mut skew_kurt, mut series, mut curves) = (None, (f64::NAN, f64::NAN), Vec::new(), Vec::new());
    // The overfitting statistic reads the block sums while the re-runs run.
    let (ran, pbo) = rayon::join(
        || {
            study.for_each_curve(runs, |k, run| {
                let (prep, res) = run?;
                if k == 0 {
                    if let Some((bar, what)) = &res.fault {
                        return Err(Error::Input(format!("bar {bar}: {what}")));
                    }
                    best_stats = Some(crate::engine::summarize(&prep, &res));
                    skew_kurt = walk::skew_kurtosis(&returns(cash[0], &res.equity));
                } else if k <= n_sampled {
                    series.push(returns(cash[k], &res.equity).chunks(per).map(|c| c.iter().sum()).collect());
                } else {
                    curves.push((top_index[k - 1 - n_sampled], res.equity));
                }
                Ok(())
            })
        },
        || pbo_of_log(study, dir, &scan.ok, scan.ok_count),
    );
    ran?;
    let pbo = pbo?;
    let best_stats = best_stats.ok_or_else(|| Error::Internal("the best trial was not re-run".into()))?;
    let (skew, kurt) = skew_kurt;
    let deflation = walk::deflated_sharpe(best.key_stats[1] / per_year.sqrt(), skew, kurt, best_stats.bars, var, scan.trials);
    let summary = Summary {
        method: format!("{:?}", study.cfg.method).to_lowercase(),
        objective: study.cfg.objective.clone(),
        direction: format!("{:?}", study.cfg.direction).to_lowercase(),
        trials: scan.trials,
        feasible: scan.feasible,
        best_trial: best.index,
        best_params: study.space.paths.iter().cloned().zip(best.params.iter().cloned()).collect(),
        best_objective: best.objective,
        deflated_sharpe: deflation.deflated_sharpe,
        deflation,
        effective_trials: effective_trials(&series, per, scan.trials),
        best_stats,
        pbo,
        indicators_computed: study.cache.len(),
        run_paths: study.paths.lock().map(|p| p.clone()).unwrap_or_default(),
        seconds: start.elapsed().as_secs_f64(),
    };
    let path = dir.join("optimize.json");
    let json = serde_json::to_string_pretty(&summary).map_err(|e| Error::Internal(e.to_string()))?;
    crate::data::write_atomic(&path, (json + "\n").as_bytes())?;
    write_top_equity(study, &curves, dir)?;
    Ok(summary)
}

/// PBO over the block sums in `dir/trial_blocks.csv` of the trials that ran (`ok`), streamed
/// twice in chunks; None below 4 such trials. A trial that ran but has no block sums there (a
/// run interrupted between the two files, or made before they were kept) is run again for them.
fn pbo_of_log(study: &Study, dir: &Path, ok: &[bool], ok_count: usize) -> Result<Option<f64>> {
    const CHUNK: usize = 1 << 15;
    if ok_count < 4 {
        return Ok(None);
    }
    let mut has = vec![false; ok.len()];
    let mut p = walk::Pbo::<{ crate::metrics::BLOCKS }>::new();
    // A trial's sums may be there twice (written again after a kill between the two files):
    // each trial counts once.
    let fresh = |rows: &[(usize, trials::Blocks)], has: &mut [bool]| -> Vec<(usize, trials::Blocks)> {
        rows.iter()
            .filter(|(i, _)| {
                let take = ok.get(*i).copied().unwrap_or(false) && !has[*i];
                if take {
                    has[*i] = true;
                }
                take
            })
            .copied()
            .collect()
    };
    trials::for_each_blocks(dir, CHUNK, |rows| {
        p.find_winners(&fresh(rows, &mut has));
        Ok(())
    })?;
    let missing: Vec<usize> = (0..ok.len()).filter(|&i| ok[i] && !has[i]).collect();
    let mut rerun: Vec<(usize, trials::Blocks)> = Vec::new();
    if !missing.is_empty() {
        let mut params = Vec::new();
        trials::for_each_trial(dir, &study.space, |t| {
            if missing.binary_search(&t.index).is_ok() {
                params.push((t.index, t.params));
            }
            Ok(())
        })?;
        let got: Vec<Option<(usize, trials::Blocks)>> = params
            .into_par_iter()
            .map(|(i, p)| study.candidate(&p).ok().and_then(|e| study.run_candidate(e).ok()).map(|x| (i, x.1)))
            .collect();
        match got.into_iter().collect::<Option<Vec<_>>>() {
            Some(g) => rerun = g,
            None => return Ok(None),
        }
        p.find_winners(&rerun);
    }
    has.iter_mut().for_each(|h| *h = false);
    trials::for_each_blocks(dir, CHUNK, |rows| {
        p.rank_winners(&fresh(rows, &mut has));
        Ok(())
    })?;
    p.rank_winners(&rerun);
    Ok(Some(p.value()))
}

/// An estimate of how many independent trials a search amounted to.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EffectiveTrials {
    /// `rho + (1 - rho) * N`, between 1 and N: N when the trials are uncorrelated, 1 when they
    /// are one trial repeated.
    pub estimate: f64,
    /// Mean pairwise correlation `rho` of the sampled trials' returns.
    pub mean_correlation: f64,
    /// Trials sampled (evenly by trial index, up to 64), re-run to get their returns.
    pub sampled: usize,
    /// Bars summed into each return before correlating (1 up to 20,000 bars; longer runs are
    /// cut into 20,000 stretches so memory stays bounded).
    pub bars_per_return: usize,
}

/// Positions among the trials that ran of those sampled for [`effective_trials`]: up to 64,
/// spread evenly.
fn effective_sample(ok: usize) -> Vec<usize> {
    let k = ok.min(64);
    (0..k).map(|i| i * ok / k).collect()
}

/// Bars summed into each return before correlating: runs longer than this many bars are
/// cut into this many stretches, so memory stays bounded.
const MAX_POINTS: usize = 20_000;

/// The per-bar returns of an equity curve starting from `cash` (to each bar's close).
fn returns(cash: f64, equity: &[f64]) -> Vec<f64> {
    let mut prev = cash;
    equity
        .iter()
        .map(|e| {
            let r = e / prev - 1.0;
            prev = *e;
            r
        })
        .collect()
}

/// The effective number of independent trials, by the average-correlation approximation
/// `N_eff = rho + (1 - rho) N` over the returns (summed in stretches of `per` bars) of the
/// sampled trials (up to 64 spread evenly over the search, see [`effective_sample`]; trials
/// whose returns never vary are left out). None with fewer than 2 such trials.
fn effective_trials(series: &[Vec<f64>], per: usize, trials: usize) -> Option<EffectiveTrials> {
    if series.len() < 2 {
        return None;
    }
    let (rho, sampled) = mean_correlation(series, 1)?;
    let big_n = trials as f64;
    Some(EffectiveTrials { estimate: (rho + (1.0 - rho) * big_n).clamp(1.0, big_n), mean_correlation: rho, sampled, bars_per_return: per })
}

/// Mean pairwise Pearson correlation of return series, each first summed in stretches of `per`
/// values; series that never vary are left out. Returns (mean, series used), None below 2.
fn mean_correlation(series: &[Vec<f64>], per: usize) -> Option<(f64, usize)> {
    let mut cols: Vec<Vec<f64>> = Vec::with_capacity(series.len());
    for s in series {
        // Summed in stretches, then centred and scaled to unit length.
        let mut x: Vec<f64> = s.chunks(per).map(|c| c.iter().sum()).collect();
        let m = x.iter().sum::<f64>() / x.len().max(1) as f64;
        x.iter_mut().for_each(|v| *v -= m);
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            x.iter_mut().for_each(|v| *v /= norm);
            cols.push(x);
        }
    }
    if cols.len() < 2 {
        return None;
    }
    // Each pair's product in parallel; summed after, in pair order (the same figure whatever
    // the threads).
    let pairs: Vec<(usize, usize)> = (0..cols.len()).flat_map(|i| (i + 1..cols.len()).map(move |j| (i, j))).collect();
    let dots: Vec<f64> = pairs.par_iter().map(|&(i, j)| cols[i].iter().zip(&cols[j]).map(|(a, b)| a * b).sum::<f64>()).collect();
    let sum = dots.iter().fold(0.0, |s, d| s + d);
    Some((sum / pairs.len() as f64, cols.len()))
}

/// `top_equity.csv`: the equity curves of the best feasible trials (best first, re-run with
/// their curves recorded), for the report's overlay; columns `trial_<index>`.
fn write_top_equity(study: &Study, curves: &[(usize, Vec<f64>)], dir: &Path) -> Result<()> {
    let path = dir.join("top_equity.csv");
    if curves.is_empty() {
        // No feasible trial: nothing to overlay (and nothing stale left from a resumed run).
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let head = std::iter::once("timestamp".to_string()).chain(curves.iter().map(|(i, _)| format!("trial_{i}")));
    let mut w = crate::data::CsvFile::create(&path, head)?;
    let ts = &study.md.timestamps;
    w.par_rows(ts.len(), |b, row| {
        row.field(crate::data::time::format_ts(ts[b]));
        for (_, c) in curves {
            row.field(c[b]);
        }
    })?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(x: f64) -> f64 {
        (x * 1e12).round() / 1e12
    }

    #[test]
    fn mean_correlation_of_series_worked_by_hand() {
        // a = (1, -1, 2, -2) and b = (1, 1, -1, -1) have mean 0 and sum of products
        // 1 - 1 - 2 + 2 = 0: uncorrelated. a with itself 1, with -a -1.
        let a = vec![1.0, -1.0, 2.0, -2.0];
        let neg: Vec<f64> = a.iter().map(|v| -v).collect();
        let b = vec![1.0, 1.0, -1.0, -1.0];
        assert_eq!(mean_correlation(&[a.clone(), a.clone()], 1).map(|(r, n)| (round(r), n)), Some((1.0, 2)));
        assert_eq!(mean_correlation(&[a.clone(), neg.clone(), a.clone()], 1).map(|(r, n)| (round(r), n)), Some((round(-1.0 / 3.0), 3)));
        assert_eq!(mean_correlation(&[a.clone(), b.clone()], 1).map(|(r, _)| r), Some(0.0));
        // A flat series is left out; summed in pairs of bars, a becomes (0, 0): flat too.
        assert_eq!(mean_correlation(&[a.clone(), vec![0.0; 4]], 1), None);
        assert_eq!(mean_correlation(&[a, b], 2), None);
    }
}
