//! Adaptive searches (genetic, Bayesian; grid and random too) in rounds, for a cluster:
//! `optimize FILE --ask DIR` replays the search from the seed with every result told so far
//! standing in for its evaluation, and stops at the first batch (a generation, a Bayesian
//! batch) holding candidates not yet told: those are written as `DIR/round-K/candidates.json`.
//! `evaluate DIR/round-K/candidates.json --shard I/N` evaluates a share of them (any number of
//! processes, as a job array), `optimize FILE --tell DIR` reads the round's shards back into
//! `DIR/told/`, and the next `--ask` goes on from there. When the replay reaches the end of the
//! budget with every candidate told, `--ask` writes the run folder.
//!
//! The state between rounds is the told trials alone: the search is a pure function of the
//! seed and the results, so replaying it with the same results (the GA's population and random
//! draws included) reaches the same next candidates, and the final trials equal a
//! single-machine run's (for Bayesian search, one with the same batch size).

use super::{resume::Fingerprint, shard, Study, Trial, TrialLog};
use crate::error::{Error, Result};
use crate::experiment::{Experiment, LoadedExperiment};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One asked candidate (`candidates.json` holds a list of them).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    /// Its trial number in the search.
    pub index: usize,
    /// Its values, by parameter path.
    pub params: BTreeMap<String, toml::Value>,
}

/// What `--ask` did.
#[derive(Debug, Clone)]
pub enum Asked {
    /// Round `round` asks for `candidates` (in `path`).
    Round {
        /// Round number, from 0.
        round: usize,
        /// Candidates asked.
        candidates: usize,
        /// The candidates file.
        path: PathBuf,
    },
    /// Every candidate was told: the search's run folder.
    Finished(PathBuf, Box<super::Summary>),
}

fn round_dir(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("round-{k}"))
}

/// Rounds so far: (number, told).
fn rounds(dir: &Path) -> Vec<(usize, bool)> {
    (0..)
        .map(|k| round_dir(dir, k))
        .take_while(|d| d.join("candidates.json").exists())
        .enumerate()
        .map(|(k, d)| (k, d.join("told").exists()))
        .collect()
}

fn told(dir: &Path, study: &Study) -> Result<Vec<Trial>> {
    let t = dir.join("told");
    std::fs::create_dir_all(&t).map_err(|e| Error::io(&t, e))?;
    Ok(TrialLog::open(&t, &study.space, true)?.1)
}

/// `tradelab optimize FILE --ask DIR`: the next round's candidates, or, with every candidate
/// told, the finished search's run folder under `out_root`.
pub fn ask(le: &LoadedExperiment, paths: &[PathBuf], dir: &Path, out_root: &Path) -> Result<Asked> {
    let start = std::time::Instant::now();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let fp = Fingerprint::of(le, paths)?;
    if dir.join("fingerprint.json").exists() {
        fp.check(dir)?;
    } else {
        fp.write(dir)?;
        let exp = le.with_absolute_paths();
        crate::data::write_atomic(&dir.join("experiment.toml"), exp.to_toml().as_bytes())?;
    }
    let done = rounds(dir);
    if let Some((k, false)) = done.last() {
        return Err(Error::Input(format!(
            "round {k} ({}) is asked and not told yet: evaluate it, then `--tell {}`",
            round_dir(dir, *k).display(),
            dir.display()
        )));
    }
    let (md, _) = crate::data::load(paths, &le.exp.data)?;
    let mut study = Study::new(le, Arc::new(md))?;
    study.done = told(dir, &study)?.into_iter().map(|t| (super::params_key(&t.params), t)).collect();
    study.asking = true;
    let progress = indicatif::ProgressBar::hidden();
    let result = super::search(&mut study, None, &progress);
    let asked = std::mem::take(&mut *study.asked.lock().map_err(|_| Error::Internal("asked list poisoned".into()))?);
    if !asked.is_empty() {
        let k = done.len();
        let rd = round_dir(dir, k);
        std::fs::create_dir_all(&rd).map_err(|e| Error::io(&rd, e))?;
        let list: Vec<Candidate> =
            asked.into_iter().map(|(index, p)| Candidate { index, params: study.space.paths.iter().cloned().zip(p).collect() }).collect();
        let path = rd.join("candidates.json");
        let json = serde_json::to_string_pretty(&list).map_err(|e| Error::Internal(e.to_string()))?;
        crate::data::write_atomic(&path, (json + "\n").as_bytes())?;
        return Ok(Asked::Round { round: k, candidates: list.len(), path });
    }
    let r = result?;
    let (out, summary) = super::write_search(study, r.trials, &fp, out_root, start)?;
    Ok(Asked::Finished(out, Box::new(summary)))
}

/// `tradelab evaluate CANDIDATES [--shard I/N]`: evaluate the candidates in positions I, I+N, ...
/// of a round's file into `round-K/shard-I-of-N` (resuming what a killed run left).
pub fn evaluate(candidates: &Path, (i, n): (usize, usize), jobs: Option<usize>, quiet: bool) -> Result<(PathBuf, shard::ShardDone)> {
    let rd = candidates.parent().unwrap_or(Path::new("."));
    let dir = rd.parent().unwrap_or(Path::new("."));
    let file = dir.join("experiment.toml");
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let le = LoadedExperiment { exp: Experiment::from_toml(&text, &file)?, file: file.clone() };
    let text = std::fs::read_to_string(candidates).map_err(|e| Error::io(candidates, e))?;
    let list: Vec<Candidate> = serde_json::from_str(&text).map_err(|e| Error::data(candidates, None, "bad-json", e.to_string()))?;
    let (md, _) = crate::data::load(&le.data_paths(), &le.exp.data)?;
    let mut study = Study::new(&le, Arc::new(md))?;
    let out = shard::shard_dir(rd, i, n);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let _ = std::fs::remove_file(out.join("shard.json"));
    let again = out.join("trials.csv").exists();
    let (mut log, done) = TrialLog::open(&out, &study.space, again)?;
    study.done = done.into_iter().map(|t| (super::params_key(&t.params), t)).collect();
    let mut mine = Vec::new();
    for (p, c) in list.iter().enumerate().filter(|(p, _)| p % n == i) {
        let params = study
            .space
            .paths
            .iter()
            .map(|k| {
                c.params.get(k).cloned().ok_or_else(|| Error::data(candidates, None, "missing-parameter", format!("candidate {p}: no {k}")))
            })
            .collect::<Result<Vec<_>>>()?;
        mine.push((c.index, params));
    }
    let progress = super::progress_bar(quiet);
    progress.set_length(mine.len() as u64);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build().map_err(|e| Error::Internal(e.to_string()))?;
    let trials = pool.install(|| study.evaluate_indexed(mine));
    progress.finish_and_clear();
    log.append(&trials, le.exp.experiment.seed)?;
    let done = shard::ShardDone {
        shard: i,
        of: n,
        trials: trials.len(),
        run_paths: study.paths.lock().map(|p| p.clone()).unwrap_or_default(),
        walk_forward_windows: None,
    };
    shard::finish_shard(&out, &done)?;
    Ok((out, done))
}

/// `tradelab optimize FILE --tell DIR`: read the last asked round's shards back (every one
/// finished, every candidate once) into `DIR/told`. Returns (round, trials told).
pub fn tell(le: &LoadedExperiment, paths: &[PathBuf], dir: &Path) -> Result<(usize, usize)> {
    Fingerprint::of(le, paths)?.check(dir)?;
    let Some(&(k, false)) = rounds(dir).last() else {
        return Err(Error::Input(format!("{}: no round waits to be told (ask one with --ask)", dir.display())));
    };
    let rd = round_dir(dir, k);
    let path = rd.join("candidates.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let list: Vec<Candidate> = serde_json::from_str(&text).map_err(|e| Error::data(&path, None, "bad-json", e.to_string()))?;
    let shards: Vec<PathBuf> = std::fs::read_dir(&rd)
        .map_err(|e| Error::io(&rd, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("shard-")))
        .collect();
    if shards.is_empty() {
        return Err(Error::Input(format!("round {k}: no shard evaluated yet (tradelab evaluate {})", path.display())));
    }
    let (md, _) = crate::data::load(paths, &le.exp.data)?;
    let study = Study::new(le, Arc::new(md))?;
    let mut got: BTreeMap<usize, Trial> = BTreeMap::new();
    for s in &shards {
        if !s.join("shard.json").exists() {
            return Err(Error::Input(format!("round {k}: {} has not finished", s.display())));
        }
        for t in TrialLog::open(s, &study.space, true)?.1 {
            if got.insert(t.index, t).is_some() {
                return Err(Error::Input(format!("round {k}: a candidate is in two shards ({})", s.display())));
            }
        }
    }
    let missing: Vec<String> = list.iter().filter(|c| !got.contains_key(&c.index)).map(|c| c.index.to_string()).collect();
    if !missing.is_empty() {
        return Err(Error::Input(format!(
            "round {k}: candidate(s) {} not evaluated: a shard is missing ({} shard folder(s) found)",
            missing.join(", "),
            shards.len()
        )));
    }
    let t = dir.join("told");
    std::fs::create_dir_all(&t).map_err(|e| Error::io(&t, e))?;
    let (mut log, before) = TrialLog::open(&t, &study.space, true)?;
    // The told log is a cache by parameter values: its rows are numbered in the order told (a
    // generation's candidates are numbered within it).
    let trials: Vec<Trial> = got.into_values().enumerate().map(|(k, t)| Trial { index: before.len() + k, ..t }).collect();
    log.append(&trials, le.exp.experiment.seed)?;
    crate::data::write_atomic(&rd.join("told"), format!("{}\n", trials.len()).as_bytes())?;
    Ok((k, trials.len()))
}
