//! The `tradelab` command line: a thin layer over the library. [`main`] runs it; a program that
//! registers its own strategies ([`crate::signals::register`]) calls it to get the whole CLI.

use crate::data::{self, LoadOptions, OutFormat, Timeframe};
use crate::experiment::{Experiment, LoadedExperiment};
use crate::synth::{self, SynthConfig, SynthSymbol};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "tradelab", version, about = "Deterministic backtesting and parameter optimization for trading strategies")]
struct Cli {
    /// More logging (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one backtest and write its report folder.
    Run(RunArgs),
    /// Search the experiment's [optimize] space in parallel; writes trials.csv, best.toml, optimize.json.
    Optimize(OptimizeArgs),
    /// Optimize on rolling (or anchored) train windows, judge each choice on the next test window.
    WalkForward {
        #[command(flatten)]
        run: RunArgs,
        /// Threads (default: all cores, or RAYON_NUM_THREADS).
        #[arg(short, long)]
        jobs: Option<usize>,
        /// Run only windows I, I+N, ... into `shard-I-of-N` under `--out`; `tradelab merge`
        /// stitches the shards.
        #[arg(long, value_name = "I/N", value_parser = crate::optimize::shard::parse_shard)]
        shard: Option<(usize, usize)>,
    },
    /// Inspect, convert, resample or generate bar data.
    #[command(subcommand)]
    Data(DataCmd),
    /// Work with experiment files.
    #[command(subcommand)]
    Experiment(ExperimentCmd),
    /// Redraw the charts, index.html and summary.md of saved run, optimize or walk-forward folders.
    Report {
        /// Folders written by run, optimize or walk-forward.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Optimization folders: draw the objective map over these two parameters (PATH,PATH).
        #[arg(long, value_delimiter = ',', value_name = "PARAM,PARAM")]
        map: Vec<String>,
    },
    /// Put several runs side by side (stats table, overlaid equity and drawdown), or several
    /// optimizations (results table, best-so-far curves).
    Compare {
        /// Run folders, or optimization folders.
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
        /// Output folder (default: reports/compare/NNNN).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Market-regime detection.
    #[command(subcommand)]
    Regime(RegimeCmd),
    /// Evaluate a round's candidates (`optimize --ask`), or shard I of N of them.
    Evaluate {
        /// The round's `candidates.json`.
        candidates: PathBuf,
        /// Evaluate only candidates I, I+N, ... of the file.
        #[arg(long, value_name = "I/N", value_parser = crate::optimize::shard::parse_shard)]
        shard: Option<(usize, usize)>,
        /// Threads (default: all cores, or SLURM_CPUS_PER_TASK, or RAYON_NUM_THREADS).
        #[arg(short, long)]
        jobs: Option<usize>,
    },
    /// Merge the shards of a search (`optimize --shard I/N --out DIR`) into one run folder, as
    /// the search on one machine writes it; or list which shards are finished.
    Merge {
        /// Shard folders (`shard-I-of-N`), or folders holding them.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Only list finished, unfinished and missing shards.
        #[arg(long)]
        status: bool,
        /// Put the run folder under DIR instead of `reports/`.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Statistics of an equity curve CSV (`timestamp,equity`).
    Stats {
        /// The CSV file.
        file: PathBuf,
        /// Periods per year (default: from the timestamps: 365-day years if the curve has
        /// weekend points, else 252 trading days of a typical day's points).
        #[arg(long)]
        periods_per_year: Option<f64>,
        /// Annual risk-free rate subtracted in Sharpe and Sortino, per period `rate / N` (0.04
        /// for 4%), as `metrics.risk_free`.
        #[arg(long, default_value_t = 0.0)]
        risk_free: f64,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Experiment file (TOML).
    file: PathBuf,
    /// Put the run folder under DIR instead of `reports/`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Use these bar files or folders instead of the experiment's data (same symbols).
    #[arg(long, value_name = "PATH")]
    data: Vec<PathBuf>,
    /// Override a field: `--set risk.stop_loss=0.03` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Args)]
struct OptimizeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Continue an interrupted search: its run folder, or the latest one when no DIR is given.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    resume: Option<Option<PathBuf>>,
    /// Threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Evaluate only shard I of N of a grid or random search (candidates I, I+N, ...) into
    /// `shard-I-of-N` under `--out`; `tradelab merge` joins the shards.
    #[arg(long, value_name = "I/N", value_parser = crate::optimize::shard::parse_shard)]
    shard: Option<(usize, usize)>,
    /// Search in rounds for a cluster: replay the search from what DIR has been told and write
    /// the next round's candidates (`DIR/round-K/candidates.json`), or, when all are told, the
    /// run folder (under `--out`).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["shard", "tell", "resume"])]
    ask: Option<PathBuf>,
    /// Read the last asked round's evaluated shards back into DIR.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["shard", "ask", "resume"])]
    tell: Option<PathBuf>,
}

#[derive(Args)]
struct LoadArgs {
    /// Bar files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The data's timeframe (default: inferred).
    #[arg(long)]
    timeframe: Option<Timeframe>,
    /// How timestamps are written: auto, iso, s, ms, us, ns.
    #[arg(long, default_value = "auto")]
    timestamp_unit: String,
}

impl LoadArgs {
    fn options(&self) -> anyhow::Result<LoadOptions> {
        let unit = toml::Value::String(self.timestamp_unit.clone()).try_into().map_err(|_| {
            crate::Error::Input(format!("--timestamp-unit: '{}' is not one of auto, iso, s, ms, us, ns", self.timestamp_unit))
        })?;
        Ok(LoadOptions { timeframe: self.timeframe, timestamp_unit: unit, ..LoadOptions::default() })
    }
}

#[derive(Subcommand)]
enum RegimeCmd {
    /// Score the detector against true labels: on bar files with a `_regimes.csv` beside them, or
    /// (without PATH) on fresh synthetic markets for each mean regime length. On bar files
    /// without true labels, report how steady the labels are (changes, run lengths).
    Eval {
        /// Bar files or a folder, with a `_regimes.csv` beside them (as `data synth` writes) or not.
        paths: Vec<PathBuf>,
        /// Take the detector settings from this experiment's [regime].
        #[arg(long, value_name = "FILE")]
        experiment: Option<PathBuf>,
        /// Change a detector setting, e.g. `--set detector="pf"` or `--set trend_t=1.5`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Mean regime lengths in bars for the synthetic markets.
        #[arg(long, value_delimiter = ',', default_value = "25,50,100,200,300,500")]
        regime_bars: Vec<f64>,
        /// Bars per synthetic market.
        #[arg(long, default_value_t = 17_520)]
        bars: usize,
        /// Synthetic markets (seeds 1..=N) per regime length.
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// The synthetic markets' shared GARCH(1,1) as ALPHA,BETA (default 0.05,0.93, as
        /// `data synth`); `0,0` for none.
        #[arg(long, value_delimiter = ',', value_name = "ALPHA,BETA")]
        garch: Vec<f64>,
        /// Synthetic markets without market-wide jumps.
        #[arg(long)]
        no_jumps: bool,
    },
}

#[derive(Subcommand)]
enum DataCmd {
    /// Symbols, bar counts, time range, timeframe, gaps and price range of bar files.
    Inspect(LoadArgs),
    /// Resample bars to a coarser timeframe.
    Resample {
        #[command(flatten)]
        load: LoadArgs,
        /// Target timeframe, e.g. 4h or 1d.
        #[arg(long)]
        to: Timeframe,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: OutFormat,
    },
    /// Convert bars between CSV, Parquet and freqtrade's layouts.
    Convert {
        #[command(flatten)]
        load: LoadArgs,
        /// Output format.
        #[arg(long, value_enum)]
        to: OutFormat,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a seeded synthetic multi-asset market with its true regime labels.
    Synth(SynthArgs),
}

#[derive(Args)]
struct SynthArgs {
    /// Output folder.
    #[arg(long, default_value = "data/synth")]
    out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of bars.
    #[arg(long, default_value_t = 17_520)]
    bars: usize,
    /// Bar length.
    #[arg(long, default_value = "1h")]
    timeframe: Timeframe,
    /// First bar's open time.
    #[arg(long, default_value = "2023-01-01T00:00:00Z")]
    start: String,
    /// Symbols as NAME:PRICE:VOL_MULT (default BTC:30000:1,ETH:2000:1.25,SOL:25:1.8,BNB:300:1.1).
    #[arg(long, value_delimiter = ',')]
    symbols: Vec<String>,
    /// Mean regime duration in bars.
    #[arg(long, default_value_t = 300.0)]
    regime_bars: f64,
    /// Correlation between symbols' shocks.
    #[arg(long, default_value_t = 0.7)]
    correlation: f64,
    /// Student-t degrees of freedom (tails).
    #[arg(long, default_value_t = 4)]
    tail_dof: u32,
    /// Turn market-wide jumps off.
    #[arg(long)]
    no_jumps: bool,
    /// Shared GARCH(1,1) of the volatility as ALPHA,BETA (default 0.05,0.93); `0,0` for none.
    #[arg(long, value_delimiter = ',', value_name = "ALPHA,BETA")]
    garch: Vec<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "parquet")]
    format: OutFormat,
}

#[derive(Subcommand)]
enum ExperimentCmd {
    /// Validate an experiment file and print it with every default filled in.
    Check {
        /// Experiment file.
        file: PathBuf,
        /// Override a field: `--set risk.stop_loss=0.03` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

/// `println!` that ends the program quietly when stdout is closed (`tradelab ... | head`)
/// instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// Run the `tradelab` command line on this process's arguments: parse them, do the work, print
/// errors, and return the exit code (0 done, 2 bad input, 1 anything else).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.quiet {
        tracing::Level::ERROR
    } else {
        match cli.verbose {
            0 => tracing::Level::WARN,
            1 => tracing::Level::INFO,
            _ => tracing::Level::DEBUG,
        }
    };
    tracing_subscriber::fmt().with_max_level(level).with_target(false).without_time().with_writer(std::io::stderr).try_init().ok();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let input = e.downcast_ref::<crate::Error>().is_some_and(|e| e.is_input_error());
            ExitCode::from(if input { 2 } else { 1 })
        }
    }
}

/// Every check of an experiment: the schema's (done on load), the signal and regime sections'
/// ([`crate::engine::check`]) and the search's ([`crate::optimize::check_config`]).
fn check_all(exp: &Experiment, file: &std::path::Path) -> crate::Result<()> {
    crate::engine::check(exp, file)?;
    if let Some(o) = &exp.optimize {
        crate::optimize::check_config(exp, o).map_err(|(key, msg)| crate::Error::Config { file: file.to_path_buf(), key, msg })?;
    }
    Ok(())
}

/// Load an experiment file, check it whole, and apply `--set` overrides, each checked again.
/// Threads: as asked, else the CPUs a Slurm job step was given (`SLURM_CPUS_PER_TASK`), else
/// rayon's default (the CPUs this process may use, container limits included).
fn jobs_or_scheduler(jobs: Option<usize>) -> Option<usize> {
    jobs.or_else(|| std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.trim().parse().ok()).filter(|n: &usize| *n > 0))
}

fn load(file: &std::path::Path, sets: &[String]) -> anyhow::Result<LoadedExperiment> {
    let mut le = Experiment::load(file)?;
    check_all(&le.exp, file)?;
    le.exp = apply_sets(le.exp, sets, file)?;
    Ok(le)
}

fn apply_sets(mut exp: Experiment, sets: &[String], file: &std::path::Path) -> anyhow::Result<Experiment> {
    for s in sets {
        let (k, v) = s.split_once('=').ok_or_else(|| crate::Error::Input(format!("--set {s}: expected KEY=VALUE")))?;
        // Errors name the --set argument: the file's lines have nothing to do with it.
        let set_err = |e: crate::Error| match e {
            crate::Error::Config { key, msg, .. } => {
                let msg = msg.rsplit_once(" (line ").map_or(msg.as_str(), |(m, _)| m).to_string();
                crate::Error::Input(format!("--set {s}: {}{msg}", if key.is_empty() { String::new() } else { format!("{key}: ") }))
            }
            other => other,
        };
        exp = exp.with_override(k.trim(), v.trim(), file).map_err(set_err)?;
        check_all(&exp, file).map_err(set_err)?;
    }
    Ok(exp)
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let quiet = cli.quiet;
    match cli.cmd {
        Cmd::Run(a) => {
            let le = load(&a.file, &a.sets)?;
            let paths = if a.data.is_empty() { le.data_paths() } else { a.data.clone() };
            let opts = crate::runner::RunOptions { out_root: a.out.unwrap_or_else(|| PathBuf::from("reports")), quiet };
            let out = crate::runner::run_experiment(&le, &paths, &opts)?;
            if !quiet {
                outln!("{}", out.summary);
                outln!("wrote {}", out.dir.display());
            }
        }
        Cmd::Optimize(a) if a.shard.is_some() => {
            let le = load(&a.run.file, &a.run.sets)?;
            let paths = if a.run.data.is_empty() { le.data_paths() } else { a.run.data.clone() };
            let root =
                a.run.out.ok_or_else(|| crate::Error::Input("--shard needs --out DIR: the folder every shard writes into".into()))?;
            let (dir, done) =
                crate::optimize::shard::run_shard(&le, &paths, &root, a.shard.unwrap_or((0, 1)), jobs_or_scheduler(a.jobs), quiet)?;
            if !quiet {
                outln!("shard {}/{}: {} trials in {}", done.shard, done.of, done.trials, dir.display());
            }
        }
        Cmd::Optimize(a) if a.ask.is_some() || a.tell.is_some() => {
            let le = load(&a.run.file, &a.run.sets)?;
            let paths = if a.run.data.is_empty() { le.data_paths() } else { a.run.data.clone() };
            if let Some(dir) = &a.tell {
                let (k, n) = crate::optimize::rounds::tell(&le, &paths, dir)?;
                if !quiet {
                    outln!("round {k}: {n} trials told");
                }
            } else if let Some(dir) = &a.ask {
                let out = a.run.out.unwrap_or_else(|| PathBuf::from("reports"));
                match crate::optimize::rounds::ask(&le, &paths, dir, &out)? {
                    crate::optimize::rounds::Asked::Round { round, candidates, path } => {
                        if !quiet {
                            outln!("round {round}: {candidates} candidates in {}", path.display());
                        }
                    }
                    crate::optimize::rounds::Asked::Finished(dir, s) => {
                        if !quiet {
                            outln!(
                                "search finished: {} trials; best trial {}: {} = {:.6}",
                                s.trials,
                                s.best_trial,
                                s.objective,
                                s.best_objective
                            );
                            outln!("run folder: {}", dir.display());
                        }
                    }
                }
            }
        }
        Cmd::Evaluate { candidates, shard, jobs } => {
            let (dir, done) = crate::optimize::rounds::evaluate(&candidates, shard.unwrap_or((0, 1)), jobs_or_scheduler(jobs), quiet)?;
            if !quiet {
                outln!("{} candidates evaluated into {}", done.trials, dir.display());
            }
        }
        Cmd::Merge { dirs, status, out } => {
            if status {
                for line in crate::optimize::shard::status(&dirs)? {
                    outln!("{line}");
                }
            } else {
                let (dir, m) = crate::optimize::shard::merge(&dirs, &out.unwrap_or_else(|| PathBuf::from("reports")))?;
                if !quiet {
                    match m {
                        crate::optimize::shard::Merged::Search(s) => outln!(
                            "{} trials ({} feasible); {} {}: {} = {:.6}",
                            s.trials,
                            s.feasible,
                            best_label(s.feasible),
                            s.best_trial,
                            s.objective,
                            s.best_objective
                        ),
                        crate::optimize::shard::Merged::WalkForward(wf) => {
                            outln!("{} windows; stitched {} improvement {:.6}", wf.windows.len(), wf.objective, wf.improvement)
                        }
                    }
                    outln!("run folder: {}", dir.display());
                }
            }
        }
        Cmd::Optimize(a) => {
            let le = load(&a.run.file, &a.run.sets)?;
            let paths = if a.run.data.is_empty() { le.data_paths() } else { a.run.data.clone() };
            let opts = crate::optimize::OptimizeOptions {
                out_root: a.run.out.unwrap_or_else(|| PathBuf::from("reports")),
                resume: a.resume.map(Option::unwrap_or_default),
                jobs: jobs_or_scheduler(a.jobs),
                quiet,
            };
            let (dir, s) = crate::optimize::run_optimize(&le, &paths, &opts)?;
            if !quiet {
                outln!(
                    "{} trials ({} feasible) in {:.2} s; {} {}: {} = {:.6}",
                    s.trials,
                    s.feasible,
                    s.seconds,
                    best_label(s.feasible),
                    s.best_trial,
                    s.objective,
                    s.best_objective
                );
                for (k, v) in &s.best_params {
                    outln!("  {k} = {v}");
                }
                outln!("{}", crate::metrics::table(&s.best_stats));
                outln!(
                    "deflated sharpe {:.3} (over {} trials tried; about {} independent), probability of backtest overfitting {}",
                    s.deflated_sharpe,
                    s.trials,
                    s.effective_trials.map_or("n/a".to_string(), |e| format!("{:.0}", e.estimate)),
                    s.pbo.map_or("n/a".to_string(), |p| format!("{p:.3}"))
                );
                outln!("wrote {}", dir.display());
            }
        }
        Cmd::WalkForward { run, jobs, shard: Some(shard) } => {
            let le = load(&run.file, &run.sets)?;
            let paths = if run.data.is_empty() { le.data_paths() } else { run.data.clone() };
            let root = run.out.ok_or_else(|| crate::Error::Input("--shard needs --out DIR: the folder every shard writes into".into()))?;
            let (dir, done) = crate::optimize::walk::run_walk_shard(&le, &paths, &root, shard, jobs_or_scheduler(jobs), quiet)?;
            if !quiet {
                outln!("shard {}/{}: {} windows in {}", done.shard, done.of, done.trials, dir.display());
            }
        }
        Cmd::WalkForward { run, jobs, shard: None } => {
            let le = load(&run.file, &run.sets)?;
            let paths = if run.data.is_empty() { le.data_paths() } else { run.data.clone() };
            let out = run.out.unwrap_or_else(|| PathBuf::from("reports"));
            let (dir, wf) = crate::optimize::walk::walk_forward_file(&le, &paths, &out, jobs_or_scheduler(jobs), quiet)?;
            if !quiet {
                outln!("{:<8}{:<44}{:>12}{:>14}{:>14}", "window", "test", "in sample", "out of sample", "defaults oos");
                for (k, w) in wf.windows.iter().enumerate() {
                    outln!(
                        "{k:<8}{:<44}{:>12.4}{:>14.4}{:>14.4}",
                        format!("{} .. {}", w.test.0, w.test.1),
                        w.in_sample,
                        w.out_of_sample,
                        w.default_out_of_sample
                    );
                }
                let (a, b) =
                    (crate::optimize::stat(&wf.stitched, &wf.objective), crate::optimize::stat(&wf.stitched_default, &wf.objective));
                outln!(
                    "stitched out-of-sample {}: optimized {:.4}, defaults {:.4} (improvement {:+.4})",
                    wf.objective,
                    a.unwrap_or(f64::NAN),
                    b.unwrap_or(f64::NAN),
                    wf.improvement
                );
                outln!("wrote {}", dir.display());
            }
        }
        Cmd::Data(DataCmd::Inspect(a)) => inspect(&a)?,
        Cmd::Data(DataCmd::Resample { load, to, out, format }) => {
            let opts = load.options()?;
            let series = data::load_series(&load.paths, &opts)?;
            let from = match opts.timeframe {
                Some(tf) => tf,
                None => data::infer_timeframe(&series)
                    .ok_or_else(|| crate::Error::Input("cannot infer the timeframe: pass --timeframe".into()))?,
            };
            data::check_resample(from, to).map_err(|m| crate::Error::Input(format!("--to: {m}")))?;
            std::fs::create_dir_all(&out).map_err(|e| crate::Error::io(&out, e))?;
            for s in &series {
                let r = data::resample(s, to);
                let f = data::write_bars(&r, &out, format, to)?;
                if !quiet {
                    outln!("{}: {} bars -> {} bars of {to}: {}", s.symbol, s.ts.len(), r.ts.len(), f.display());
                }
            }
        }
        Cmd::Data(DataCmd::Convert { load, to, out }) => {
            let opts = load.options()?;
            let series = data::load_series(&load.paths, &opts)?;
            let tf = match opts.timeframe {
                Some(tf) => tf,
                None => data::infer_timeframe(&series)
                    .ok_or_else(|| crate::Error::Input("cannot infer the timeframe: pass --timeframe".into()))?,
            };
            std::fs::create_dir_all(&out).map_err(|e| crate::Error::io(&out, e))?;
            for s in &series {
                let f = data::write_bars(s, &out, to, tf)?;
                if !quiet {
                    outln!("{}: {} bars -> {}", s.symbol, s.ts.len(), f.display());
                }
            }
        }
        Cmd::Data(DataCmd::Synth(a)) => {
            let mut cfg = SynthConfig {
                seed: a.seed,
                bars: a.bars,
                timeframe: a.timeframe,
                start: data::time::parse_timestamp(&a.start, data::TimestampUnit::Iso)
                    .ok_or_else(|| crate::Error::Input(format!("--start: '{}' is not an ISO-8601 time", a.start)))?,
                mean_regime_bars: a.regime_bars,
                correlation: a.correlation,
                tail_dof: a.tail_dof,
                ..SynthConfig::default()
            };
            if a.no_jumps {
                cfg.jump_prob = 0.0;
            }
            if let Some(g) = garch_arg(&a.garch)? {
                cfg.garch = g;
            }
            if !a.symbols.is_empty() {
                cfg.symbols = a.symbols.iter().map(|s| parse_synth_symbol(s)).collect::<anyhow::Result<_>>()?;
            }
            let m = cfg.generate()?;
            let files = synth::write_market(&m, &cfg, &a.out, a.format)?;
            if !quiet {
                for f in files {
                    outln!("wrote {}", f.display());
                }
            }
        }
        Cmd::Experiment(ExperimentCmd::Check { file, sets }) => {
            let exp = load(&file, &sets)?.exp;
            outln!("{}", exp.to_toml().trim_end());
            if let Some(rg) = &exp.regime {
                // Printed as a TOML comment, so the output stays a valid experiment file.
                outln!(
                    "\n# regime labels: high_vol when the {} detector's volatility state is its highest; otherwise bull / bear when the\n\
                     # t-statistic of the mean log return over trend_window = {} bars is above {} / below -{} (for confirm_bars = {} bars),\n\
                     # else sideways. Since 2026-12-03 bull and bear follow the trend; before, they were the detector's middle\n\
                     # volatility states, so [regime.overrides.bull] / [regime.overrides.bear] written then now act on other bars.",
                    serde_json::to_value(rg.detector).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                    rg.trend_window,
                    rg.trend_t,
                    rg.trend_t,
                    rg.confirm_bars
                );
            }
        }
        Cmd::Report { dirs, map } => {
            if !map.is_empty() && map.len() != 2 {
                return Err(crate::Error::Input(format!("--map: expected two parameters as PARAM,PARAM, got {}", map.join(","))).into());
            }
            let map = (map.len() == 2).then(|| (map[0].as_str(), map[1].as_str()));
            for d in &dirs {
                let names = crate::report::render(d, map)?;
                if !quiet {
                    outln!("{}: {} charts, index.html, summary.md", d.display(), names.len());
                }
            }
        }
        Cmd::Compare { dirs, out } => {
            let out = match out {
                Some(o) => o,
                None => crate::report::new_run_dir(std::path::Path::new("reports/compare"))?,
            };
            crate::report::compare(&dirs, &out)?;
            if !quiet {
                outln!("wrote {}", out.join("index.html").display());
            }
        }
        Cmd::Regime(RegimeCmd::Eval { paths, experiment, sets, regime_bars, bars, seeds, garch, no_jumps }) => {
            let mut market = SynthConfig { bars, ..SynthConfig::default() };
            if let Some(g) = garch_arg(&garch)? {
                market.garch = g;
            }
            if no_jumps {
                market.jump_prob = 0.0;
            }
            regime_eval(&paths, experiment.as_deref(), &sets, &regime_bars, &market, seeds)?;
        }
        Cmd::Stats { file, periods_per_year, risk_free } => {
            let stats = crate::metrics::stats_from_equity_file(&file, periods_per_year, risk_free)?;
            outln!("{}", serde_json::to_string_pretty(&stats).context("serializing stats")?);
        }
    }
    Ok(())
}

/// `--garch ALPHA,BETA`: none given is the generator's default.
fn garch_arg(v: &[f64]) -> anyhow::Result<Option<(f64, f64)>> {
    match v {
        [] => Ok(None),
        [a, b] => Ok(Some((*a, *b))),
        _ => Err(crate::Error::Input(format!("--garch: expected ALPHA,BETA (two numbers), got {} value(s)", v.len())).into()),
    }
}

fn parse_synth_symbol(s: &str) -> anyhow::Result<SynthSymbol> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || crate::Error::Input(format!("--symbols: '{s}' is not NAME:PRICE:VOL_MULT"));
    if parts.len() != 3 {
        return Err(bad().into());
    }
    let price: f64 = parts[1].parse().map_err(|_| bad())?;
    let vol_mult: f64 = parts[2].parse().map_err(|_| bad())?;
    if !(price > 0.0 && vol_mult > 0.0) {
        return Err(bad().into());
    }
    Ok(SynthSymbol { name: parts[0].to_string(), price, vol_mult, notional_per_bar: 10e6 })
}

fn inspect(a: &LoadArgs) -> anyhow::Result<()> {
    let opts = a.options()?;
    let series = data::load_series(&a.paths, &opts)?;
    let tf = opts.timeframe.or_else(|| data::infer_timeframe(&series));
    outln!("{:<12} {:>8} {:<22} {:<22} {:>5} {:>8} {:>14} {:>14}  file", "symbol", "bars", "first", "last", "tf", "missing", "low", "high");
    for s in &series {
        let own_tf = data::infer_timeframe(std::slice::from_ref(s)).or(tf);
        let missing = own_tf.map(|tf| data::count_gaps(&s.ts, tf).missing.to_string()).unwrap_or_else(|| "-".into());
        let lo = s.bars.low.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = s.bars.high.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        outln!(
            "{:<12} {:>8} {:<22} {:<22} {:>5} {:>8} {:>14} {:>14}  {}",
            s.symbol,
            s.ts.len(),
            data::time::format_ts(s.ts[0]),
            data::time::format_ts(*s.ts.last().unwrap_or(&0)),
            own_tf.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            missing,
            format!("{lo:.6}"),
            format!("{hi:.6}"),
            s.source.display()
        );
    }
    Ok(())
}

fn regime_eval(
    paths: &[PathBuf],
    experiment: Option<&std::path::Path>,
    sets: &[String],
    regime_bars: &[f64],
    market: &SynthConfig,
    seeds: u64,
) -> anyhow::Result<()> {
    use crate::regime;
    use rayon::prelude::*;
    let mut cfg = match experiment {
        Some(f) => load(f, &[])?.exp.regime.unwrap_or_default(),
        None => Default::default(),
    };
    for s in sets {
        let (k, v) = s.split_once('=').ok_or_else(|| crate::Error::Input(format!("--set {s}: expected KEY=VALUE")))?;
        let mut root = toml::Value::try_from(&cfg).context("serializing [regime]")?;
        let value = toml::from_str::<toml::Table>(&format!("v = {}", v.trim()))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(v.trim().to_string()));
        crate::experiment::set_path(&mut root, k.trim(), value).map_err(|m| crate::Error::Input(format!("--set {s}: {m}")))?;
        cfg = root.try_into().map_err(|e| crate::Error::Input(format!("--set {s}: {e}")))?;
    }
    if !(0.0..1.0).contains(&cfg.switch_margin) {
        return Err(crate::Error::Input(format!("--set switch_margin: must be in [0, 1), not {}", cfg.switch_margin)).into());
    }
    let names = crate::regime::REGIMES;
    let pct = |x: f64| if x.is_nan() { "     -".to_string() } else { format!("{:>6.1}", 100.0 * x) };
    if !paths.is_empty() {
        let (md, _) = data::load(paths, &LoadOptions::default())?;
        let dir = if paths[0].is_dir() { paths[0].clone() } else { paths[0].parent().map(PathBuf::from).unwrap_or_default() };
        let file = dir.join("_regimes.csv");
        let labels = regime::detect(&cfg, &md).label;
        let steady = |what: &str, s: &regime::Stability| {
            format!(
                "{what}: {} label changes over {} bars, median label {} bars, longest {}; {}",
                s.changes,
                labels.len(),
                s.median_run,
                s.longest_run,
                names.iter().zip(s.share).map(|(n, x)| format!("{n} {}%", pct(x).trim())).collect::<Vec<_>>().join("  ")
            )
        };
        if !file.exists() {
            // Real data has no true labels: how steady the labels are is what can be judged.
            outln!("no {} beside the bars, so no true labels to score against", file.display());
            outln!("{}", steady("detected", &regime::stability(&labels)));
            return Ok(());
        }
        let (ts, truth) = regime::read_labels(&file)?;
        if ts != md.timestamps {
            return Err(crate::Error::Input(format!("{}: its timestamps are not the bars' timestamps", file.display())).into());
        }
        let a = regime::accuracy(&truth, &labels);
        outln!("balanced accuracy {:.1}%  (plain {:.1}%)", 100.0 * a.balanced, 100.0 * a.plain);
        outln!("{}", steady("detected", &regime::stability(&labels)));
        outln!("{}", steady("truth   ", &regime::stability(&truth)));
        outln!("recall  {}", names.iter().zip(a.recall).map(|(n, r)| format!("{n} {}%", pct(r).trim())).collect::<Vec<_>>().join("  "));
        outln!("confusion (rows: truth, columns: detected, in {} order)", names.join("/"));
        for (n, row) in names.iter().zip(a.confusion) {
            outln!("  {n:<9}{}", row.iter().map(|c| format!("{c:>8}")).collect::<String>());
        }
        return Ok(());
    }
    let jobs: Vec<(f64, u64)> = regime_bars.iter().flat_map(|d| (1..=seeds).map(move |s| (*d, s))).collect();
    let results: Vec<crate::Result<synth::SynthScore>> = jobs
        .par_iter()
        .map(|(d, s)| {
            let r = synth::evaluate_detector(&cfg, &SynthConfig { seed: *s, mean_regime_bars: *d, ..market.clone() });
            if let Ok(sc) = &r {
                tracing::info!(
                    regime_bars = d,
                    seed = s,
                    balanced = sc.all.balanced,
                    after_warmup = sc.after_warmup.balanced,
                    second_half = sc.second_half.balanced,
                    "regime eval"
                );
            }
            r
        })
        .collect();
    outln!(
        "{:>12} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>14} {:>12} {:>8}",
        "regime bars",
        "balanced",
        "worst",
        "bull",
        "bear",
        "sideways",
        "high_vol",
        "after warm-up",
        "second half",
        "changes"
    );
    for (i, d) in regime_bars.iter().enumerate() {
        let scores: Vec<&synth::SynthScore> = results[i * seeds as usize..(i + 1) * seeds as usize]
            .iter()
            .map(|r| r.as_ref().map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<anyhow::Result<_>>()?;
        // Means over the seeds, of the seeds where the figure exists (a regime may never occur).
        let mean = |f: &dyn Fn(&synth::SynthScore) -> f64| {
            let v: Vec<f64> = scores.iter().map(|s| f(s)).filter(|x| !x.is_nan()).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let worst = scores.iter().map(|s| s.all.balanced).fold(f64::INFINITY, f64::min);
        outln!(
            "{:>12} {:>8}% {:>8}% {:>6}% {:>6}% {:>8}% {:>8}% {:>13}% {:>11}% {:>7.1}x",
            d,
            pct(mean(&|s| s.all.balanced)).trim(),
            pct(worst).trim(),
            pct(mean(&|s| s.all.recall[0])).trim(),
            pct(mean(&|s| s.all.recall[1])).trim(),
            pct(mean(&|s| s.all.recall[2])).trim(),
            pct(mean(&|s| s.all.recall[3])).trim(),
            pct(mean(&|s| s.after_warmup.balanced)).trim(),
            pct(mean(&|s| s.second_half.balanced)).trim(),
            mean(&|s| if s.truth.changes == 0 { f64::NAN } else { s.stability.changes as f64 / s.truth.changes as f64 })
        );
    }
    Ok(())
}

/// How a search's best trial is named: with no trial meeting the constraints it is only the
/// nearest miss (the smallest violation), and says so.
fn best_label(feasible: usize) -> &'static str {
    if feasible == 0 {
        "no trial met the constraints; the nearest miss is trial"
    } else {
        "best trial"
    }
}
