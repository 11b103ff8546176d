//! `tradelab run`: one experiment end to end. Load its data, prepare, backtest with every bar
//! recorded, summarize, and write the run folder (above the engine and the report).

use crate::engine::{backtest, prepare};
use crate::error::Result;
use crate::experiment::{Experiment, LoadedExperiment};
use crate::signals::IndicatorCache;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where and how `run_experiment` writes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Folder under which `<name>/<run-id>/` is made.
    pub out_root: PathBuf,
    /// No progress output.
    pub quiet: bool,
}

/// What `run_experiment` produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The run folder.
    pub dir: PathBuf,
    /// A short stats table for the terminal.
    pub summary: String,
    /// The statistics.
    pub stats: crate::metrics::Stats,
}

/// Load data, prepare, run, and write the run folder.
pub fn run_experiment(le: &LoadedExperiment, paths: &[PathBuf], opts: &RunOptions) -> Result<RunOutput> {
    let (md, report) = crate::data::load(paths, &le.exp.data)?;
    for w in &report.warnings {
        tracing::warn!("{}: {}", w.file.display(), w.message);
    }
    let md = Arc::new(md);
    let cache = std::sync::Arc::new(IndicatorCache::default());
    let prep = prepare(le, md.clone(), &cache)?;
    let res = backtest(&le.exp, &prep);
    if let Some((bar, what)) = &res.fault {
        return Err(crate::Error::Input(format!(
            "bar {} ({}): {what}; prices this small or large cannot be traded in floating point. Check the data's units",
            bar,
            crate::data::time::format_ts(md.timestamps[*bar])
        )));
    }
    if let Some((bar, eq)) = res.ruin {
        tracing::warn!("{}", crate::engine::ruin_message(&md, bar, eq));
    }
    let mut stats = crate::engine::summarize(&prep, &res);
    stats.warnings.splice(0..0, report.warnings.iter().map(|w| format!("{}: {}", w.file.display(), w.message)));
    // With the generator's true labels beside the data, score the detector.
    if let (Some(rg), Some(st)) = (&prep.regime, stats.regime.as_mut()) {
        let dir = paths.first().map(|p| if p.is_dir() { p.clone() } else { p.parent().map(PathBuf::from).unwrap_or_default() });
        if let Some(file) = dir.map(|d| d.join("_regimes.csv")).filter(|f| f.exists()) {
            match crate::regime::read_labels(&file) {
                Ok((ts, truth)) if ts == md.timestamps => {
                    st.regime_balanced_accuracy = Some(crate::regime::accuracy(&truth, &rg.labels.label).balanced)
                }
                Ok(_) => tracing::warn!("{}: timestamps differ from the bars'; no regime accuracy", file.display()),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }
    crate::metrics::explain_undefined(&mut stats);
    let dir = crate::report::new_run_dir(&opts.out_root.join(&le.exp.experiment.name))?;
    // The copy in the run folder has absolute paths, so it re-runs from there.
    let mut resolved = le.with_absolute_paths();
    if paths != le.data_paths().as_slice() {
        resolved.data.path = None;
        resolved.data.paths = paths.iter().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())).collect();
    }
    crate::report::write_run(&dir, &resolved, &prep, &res, &stats)?;
    // Drawn from the files just written, as `tradelab report` would.
    crate::report::render_run(&dir)?;
    Ok(RunOutput { summary: crate::metrics::table(&stats), dir, stats })
}

/// Load an experiment file and run it on its own data (tests and tools).
pub fn run_file(file: &Path, out_root: &Path) -> Result<RunOutput> {
    let le = Experiment::load(file)?;
    let paths = le.data_paths();
    run_experiment(&le, &paths, &RunOptions { out_root: out_root.to_path_buf(), quiet: true })
}
