//! A search spread over a cluster: shards and their merge. Shard `i` of `n` evaluates the
//! candidates whose index is `i` modulo `n` (neighbours in a grid cost alike, so interleaving
//! balances the shards) into its own folder `shard-I-of-N` under a shared folder: the trial
//! log (`trials.csv`, `trial_blocks.csv`: every number the merge needs, exactly), the search's
//! `fingerprint.json` and `experiment.toml`, and, once done, `shard.json`. A shard run again
//! (a requeued job) resumes its own log, so running it twice is harmless.
//!
//! The merge checks that the shards are of one search (the same fingerprint: settings and the
//! data's bytes, not paths, which differ between nodes), that each of `0..n` is there once and
//! finished, and that together they hold every candidate; then it writes one run folder as the
//! single-machine search writes it: `trials.csv` in candidate order, `best.toml`,
//! `optimize.json` (deflated Sharpe, PBO over every trial's block sums) and the report.

use super::trials::{BlocksReader, TrialReader};
use super::{resume::Fingerprint, RunPaths, SearchResult, Study, TrialLog};
use crate::error::{Error, Result};
use crate::experiment::{Experiment, LoadedExperiment, Method};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a finished shard records (`shard.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShardDone {
    /// This shard's number, from 0.
    pub shard: usize,
    /// Shards in all.
    pub of: usize,
    /// Trials it evaluated.
    pub trials: usize,
    /// How its candidates were run.
    pub run_paths: RunPaths,
    /// For a walk-forward's shard: the walk-forward's windows in all (its `trials` then counts
    /// the windows this shard ran).
    #[serde(default)]
    pub walk_forward_windows: Option<usize>,
}

/// Parse `I/N` (0 <= I < N).
pub fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("--shard {s}: expected I/N with 0 <= I < N, e.g. 0/8");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The folder of shard `i` of `n` under `root`.
pub fn shard_dir(root: &Path, i: usize, n: usize) -> PathBuf {
    root.join(format!("shard-{i}-of-{n}"))
}

/// Run shard `i` of `n` of the experiment's search into `shard_dir(root, i, n)`, resuming what
/// an earlier run of the same shard left there. Genetic and Bayesian searches choose each
/// candidate from the results before it, so they cannot be cut into independent shards.
pub fn run_shard(
    le: &LoadedExperiment,
    paths: &[PathBuf],
    root: &Path,
    (i, n): (usize, usize),
    jobs: Option<usize>,
    quiet: bool,
) -> Result<(PathBuf, ShardDone)> {
    let method = le.exp.optimize.as_ref().map(|o| o.method);
    if matches!(method, Some(Method::Genetic | Method::Bayesian)) {
        return Err(Error::Config {
            file: le.file.clone(),
            key: "optimize.method".into(),
            msg: "--shard splits grid and random searches; a genetic or Bayesian search picks each candidate from the results before it"
                .into(),
        });
    }
    let (md, report) = crate::data::load(paths, &le.exp.data)?;
    for w in &report.warnings {
        tracing::warn!("{}: {}", w.file.display(), w.message);
    }
    let mut study = Study::new(le, Arc::new(md))?;
    study.shard = Some((i, n));
    let dir = prepare_shard_dir(le, paths, root, (i, n))?;
    let again = dir.join("trials.csv").exists();
    let mut log = study.resume_log(&dir, again)?;
    let progress = super::progress_bar(quiet);
    progress.set_prefix(format!("shard {i}/{n}"));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build().map_err(|e| Error::Internal(e.to_string()))?;
    let result = pool.install(|| super::search(&mut study, Some(&mut log), &progress))?;
    progress.finish_and_clear();
    let done = ShardDone {
        shard: i,
        of: n,
        trials: result.count,
        run_paths: study.paths.lock().map(|p| p.clone()).unwrap_or_default(),
        walk_forward_windows: None,
    };
    finish_shard(&dir, &done)?;
    Ok((dir, done))
}

/// Make (or, for a shard run again, check) `shard_dir(root, i, n)`: the search's fingerprint
/// and the experiment as run; the shard counts as unfinished until [`finish_shard`].
pub(crate) fn prepare_shard_dir(le: &LoadedExperiment, paths: &[PathBuf], root: &Path, (i, n): (usize, usize)) -> Result<PathBuf> {
    let dir = shard_dir(root, i, n);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let fp = Fingerprint::of(le, paths)?;
    if dir.join("fingerprint.json").exists() {
        fp.check(&dir)?;
    } else {
        fp.write(&dir)?;
    }
    // The search as run, for the merge (which has no other input); data given on the command
    // line instead of the file's replaces the file's.
    let mut exp = le.with_absolute_paths();
    if paths != le.data_paths().as_slice() {
        exp.data.path = None;
        exp.data.paths = paths.iter().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())).collect();
    }
    crate::data::write_atomic(&dir.join("experiment.toml"), exp.to_toml().as_bytes())?;
    let _ = std::fs::remove_file(dir.join("shard.json"));
    Ok(dir)
}

/// Mark a shard finished (`shard.json`, written atomically).
pub(crate) fn finish_shard(dir: &Path, done: &ShardDone) -> Result<()> {
    let json = serde_json::to_string_pretty(done).map_err(|e| Error::Internal(e.to_string()))?;
    crate::data::write_atomic(&dir.join("shard.json"), (json + "\n").as_bytes())
}

/// A shard folder found under the given paths: (folder, shard, of).
fn find_shards(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, usize, usize)>> {
    let parse = |p: &Path| -> Option<(usize, usize)> {
        let name = p.file_name()?.to_str()?;
        let rest = name.strip_prefix("shard-")?;
        let (i, n) = rest.split_once("-of-")?;
        Some((i.parse().ok()?, n.parse().ok()?))
    };
    let mut out = Vec::new();
    for d in dirs {
        if let Some((i, n)) = parse(d) {
            out.push((d.clone(), i, n));
            continue;
        }
        let entries = std::fs::read_dir(d).map_err(|e| Error::io(d, e))?;
        let mut found: Vec<(PathBuf, usize, usize)> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter_map(|p| parse(&p).map(|(i, n)| (p, i, n))).collect();
        if found.is_empty() {
            return Err(Error::Input(format!("{}: not a shard folder (shard-I-of-N) and holds none", d.display())));
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// `tradelab merge --status`: one line per shard (finished, or started and not finished), and
/// the shards not found.
pub fn status(dirs: &[PathBuf]) -> Result<Vec<String>> {
    let shards = find_shards(dirs)?;
    let mut lines = Vec::new();
    let mut of = std::collections::BTreeSet::new();
    for (d, i, n) in &shards {
        of.insert(*n);
        let state = match std::fs::read_to_string(d.join("shard.json")) {
            Ok(t) => match serde_json::from_str::<ShardDone>(&t) {
                Ok(s) if s.walk_forward_windows.is_some() => format!("finished, {} walk-forward windows", s.trials),
                Ok(s) => format!("finished, {} trials", s.trials),
                Err(_) => "shard.json unreadable".into(),
            },
            Err(_) => {
                let rows = std::fs::read_to_string(d.join("trials.csv")).map(|t| t.lines().count().saturating_sub(1)).unwrap_or(0);
                format!("not finished ({rows} trials logged)")
            }
        };
        lines.push(format!("shard {i}/{n}: {state}  {}", d.display()));
    }
    for n in of {
        let have: Vec<usize> = shards.iter().filter(|s| s.2 == n).map(|s| s.1).collect();
        let missing: Vec<String> = (0..n).filter(|i| !have.contains(i)).map(|i| i.to_string()).collect();
        if !missing.is_empty() {
            lines.push(format!("missing of {n}: {}", missing.join(", ")));
        }
    }
    Ok(lines)
}

/// `tradelab merge DIR...`: check the shards and write their search as one run folder under
/// `out_root/<experiment name>/`. Returns the folder and its summary.
pub fn merge(dirs: &[PathBuf], out_root: &Path) -> Result<(PathBuf, Merged)> {
    let start = std::time::Instant::now();
    let shards = find_shards(dirs)?;
    let n = shards[0].2;
    if let Some(s) = shards.iter().find(|s| s.2 != n) {
        return Err(Error::Input(format!(
            "{} is shard {} of {}, but {} is of {n}: shards of different splits",
            s.0.display(),
            s.1,
            s.2,
            shards[0].0.display()
        )));
    }
    for i in 0..n {
        let with: Vec<&(PathBuf, usize, usize)> = shards.iter().filter(|s| s.1 == i).collect();
        if with.len() > 1 {
            let names: Vec<String> = with.iter().map(|s| s.0.display().to_string()).collect();
            return Err(Error::Input(format!("shard {i}/{n} is given twice: {}", names.join(", "))));
        }
    }
    let missing: Vec<String> = (0..n).filter(|i| !shards.iter().any(|s| s.1 == *i)).map(|i| format!("{i}/{n}")).collect();
    if !missing.is_empty() {
        return Err(Error::Input(format!(
            "missing shard(s) {} (found {} of {n} under the given folders)",
            missing.join(", "),
            shards.len()
        )));
    }
    let mut fps = Vec::new();
    let mut counts = RunPaths::default();
    let mut walk = None;
    for (d, i, _) in &shards {
        let t = std::fs::read_to_string(d.join("shard.json"))
            .map_err(|_| Error::Input(format!("shard {i}/{n} ({}) has not finished: no shard.json; run it (again) first", d.display())))?;
        let done: ShardDone = serde_json::from_str(&t).map_err(|e| Error::data(d.join("shard.json"), None, "bad-json", e.to_string()))?;
        walk = walk.or(done.walk_forward_windows);
        counts.batch += done.run_paths.batch;
        for (k, v) in done.run_paths.engine {
            *counts.engine.entry(k).or_default() += v;
        }
        let fp_path = d.join("fingerprint.json");
        let t = std::fs::read_to_string(&fp_path).map_err(|e| Error::io(&fp_path, e))?;
        let fp: Fingerprint = serde_json::from_str(&t).map_err(|e| Error::data(&fp_path, None, "bad-json", e.to_string()))?;
        fps.push(fp);
    }
    for ((d, i, _), fp) in shards.iter().zip(&fps).skip(1) {
        if fp.fingerprint != fps[0].fingerprint {
            return Err(Error::Input(format!(
                "shard {i}/{n} ({}) is of another search than shard {}/{n} ({}): their fingerprints differ (settings or data)",
                d.display(),
                shards[0].1,
                shards[0].0.display()
            )));
        }
    }
    // The search as the shards ran it; its data must still be what they read.
    let file = shards[0].0.join("experiment.toml");
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let le = LoadedExperiment { exp: Experiment::from_toml(&text, &file)?, file: file.clone() };
    let paths = le.data_paths();
    let fp = Fingerprint::of(&le, &paths)?;
    if fp.fingerprint != fps[0].fingerprint {
        return Err(Error::Input(format!(
            "the data the shards read has changed since (fingerprint of {} now differs from the shards')",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(windows) = walk {
        return merge_walk(&le, &shards, windows, out_root);
    }
    let (md, _) = crate::data::load(&paths, &le.exp.data)?;
    let study = Study::new(&le, Arc::new(md))?;
    if let Ok(mut p) = study.paths.lock() {
        *p = counts;
    }
    let dirs: Vec<PathBuf> = shards.iter().map(|s| s.0.clone()).collect();
    let space = study.space.clone();
    let (dir, summary) = super::write_search_with(study, &fp, out_root, start, |log, seed| merge_logs(&dirs, &space, log, seed))?;
    Ok((dir, Merged::Search(summary)))
}

/// Merge the shards' trial logs (each in trial order) into `log` in trial order, one trial per
/// shard in memory at a time, each with its block sums from its shard; every candidate must come
/// exactly once.
fn merge_logs(dirs: &[PathBuf], space: &super::Space, log: &mut TrialLog, seed: u64) -> Result<SearchResult> {
    const BATCH: usize = 4096;
    let mut trials = dirs.iter().map(|d| TrialReader::open(d, space)).collect::<Result<Vec<_>>>()?;
    let mut blocks = dirs.iter().map(|d| BlocksReader::open(d)).collect::<Result<Vec<_>>>()?;
    let mut heads = trials.iter_mut().map(TrialReader::next_trial).collect::<Result<Vec<_>>>()?;
    let mut block_heads = blocks.iter_mut().map(BlocksReader::next_row).collect::<Result<Vec<_>>>()?;
    let mut r = SearchResult::default();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(k) = (0..heads.len()).filter(|&k| heads[k].is_some()).min_by_key(|&k| heads[k].as_ref().map_or(0, |t| t.index)) {
        let Some(mut t) = heads[k].take() else { break };
        heads[k] = trials[k].next_trial()?;
        if t.index != r.count {
            let k = r.count.min(t.index);
            return Err(Error::Input(format!("the shards' trials skip or repeat candidate {k} (after {} trials in order)", r.count)));
        }
        // A shard's block sums come in its trials' order; a row written again after a kill
        // between the two files comes later and is passed over.
        while block_heads[k].as_ref().is_some_and(|(i, _)| *i < t.index) {
            block_heads[k] = blocks[k].next_row()?;
        }
        if let Some((i, b)) = block_heads[k] {
            if i == t.index {
                t.blocks = Some(b);
            }
        }
        r.tally(&t);
        batch.push(t);
        if batch.len() == BATCH {
            log.append(&batch, seed)?;
            batch.clear();
        }
    }
    log.append(&batch, seed)?;
    Ok(r)
}

/// What a merge produced.
#[derive(Debug, Clone)]
pub enum Merged {
    /// A search's summary (`optimize.json`).
    Search(super::Summary),
    /// A walk-forward's (`walk_forward.json`).
    WalkForward(super::walk::WalkForward),
}

/// Merge a sharded walk-forward: every window's folder copied from the shard that ran it (its
/// `window.json` left behind), then the windows stitched as one machine stitches them.
fn merge_walk(le: &LoadedExperiment, shards: &[(PathBuf, usize, usize)], windows: usize, out_root: &Path) -> Result<(PathBuf, Merged)> {
    let dir = crate::report::new_run_dir(&out_root.join(format!("{}_walk_forward", le.exp.experiment.name)))?;
    let mut window_dirs = Vec::new();
    for k in 0..windows {
        let from = shards.iter().map(|s| s.0.join(format!("window_{k}"))).find(|w| w.join("window.json").exists());
        let from = from.ok_or_else(|| Error::Input(format!("window {k} of {windows} is in no shard (its shard has not finished it)")))?;
        let to = dir.join(format!("window_{k}"));
        std::fs::create_dir_all(&to).map_err(|e| Error::io(&to, e))?;
        for e in std::fs::read_dir(&from).map_err(|e| Error::io(&from, e))? {
            let p = e.map_err(|e| Error::io(&from, e))?.path();
            if p.is_file() && p.file_name().is_some_and(|n| n != "window.json") {
                let dest = to.join(p.file_name().unwrap_or_default());
                std::fs::copy(&p, &dest).map_err(|e| Error::io(&dest, e))?;
            }
        }
        window_dirs.push(from);
    }
    let wf = super::walk::stitch_shards(le, &window_dirs, &dir)?;
    crate::report::render_walk(&dir)?;
    Ok((dir, Merged::WalkForward(wf)))
}
