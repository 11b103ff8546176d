//! Market data: loading OHLCV bars (CSV, Parquet, Feather, freqtrade JSON) with polars,
//! validating them with errors that name file, line and rule, aligning several symbols on one
//! clock, resampling, and handing the engine one columnar [`MarketData`].
//!
//! Conventions: timestamps are bar **open** times in ms since the Unix epoch, UTC. Symbols are
//! small integer ids (their index in [`MarketData::symbols`]).

mod align;
mod read;
pub mod time;
mod write;

pub use align::{align, check_resample, count_gaps, infer_timeframe, resample, AlignPolicy};
pub use read::{read_file, read_text_table, symbol_from_path, ColumnNames, Format, TextTable};
pub use time::{Timeframe, TimestampUnit};
pub use write::{write_atomic, write_bars, CsvFile, OutFormat, Row};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One symbol's bars as columns. All vectors have the same length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bars {
    /// Opening prices.
    pub open: Vec<f64>,
    /// Highest prices.
    pub high: Vec<f64>,
    /// Lowest prices.
    pub low: Vec<f64>,
    /// Closing prices.
    pub close: Vec<f64>,
    /// Traded volume in units of the asset.
    pub volume: Vec<f64>,
    /// False where the bar was forward-filled by alignment: no trading happened, none may.
    pub tradable: Vec<bool>,
}

impl Bars {
    /// Number of bars.
    pub fn len(&self) -> usize {
        self.close.len()
    }

    /// Whether there are no bars.
    pub fn is_empty(&self) -> bool {
        self.close.is_empty()
    }

    /// Append one bar.
    pub fn push(&mut self, o: f64, h: f64, l: f64, c: f64, v: f64, tradable: bool) {
        self.open.push(o);
        self.high.push(h);
        self.low.push(l);
        self.close.push(c);
        self.volume.push(v);
        self.tradable.push(tradable);
    }

    /// A copy of bars `range`.
    pub fn slice(&self, r: std::ops::Range<usize>) -> Bars {
        Bars {
            open: self.open[r.clone()].to_vec(),
            high: self.high[r.clone()].to_vec(),
            low: self.low[r.clone()].to_vec(),
            close: self.close[r.clone()].to_vec(),
            volume: self.volume[r.clone()].to_vec(),
            tradable: self.tradable[r].to_vec(),
        }
    }
}

/// One symbol's bars with their own timestamps, before alignment.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolSeries {
    /// Symbol name.
    pub symbol: String,
    /// The file it came from.
    pub source: PathBuf,
    /// Bar open times, strictly increasing.
    pub ts: Vec<i64>,
    /// The bars.
    pub bars: Bars,
}

impl SymbolSeries {
    /// A copy of bars `range`.
    pub fn slice(&self, r: std::ops::Range<usize>) -> SymbolSeries {
        SymbolSeries { symbol: self.symbol.clone(), source: self.source.clone(), ts: self.ts[r.clone()].to_vec(), bars: self.bars.slice(r) }
    }
}

/// Aligned bars of every symbol on one clock: what the engine reads.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketData {
    /// Bar length.
    pub timeframe: Timeframe,
    /// Shared bar open times, strictly increasing.
    pub timestamps: Vec<i64>,
    /// Symbol names; a symbol's id is its index here.
    pub symbols: Vec<String>,
    /// Bars per symbol id, each as long as `timestamps`.
    pub bars: Vec<Bars>,
    /// Whether the market closes at weekends, as read from the whole files these bars were cut
    /// from (`data.start`..`end`), when they could tell; None: read from these bars alone.
    pub calendar: Option<bool>,
}

impl MarketData {
    /// Number of timestamps.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether there are no bars.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Bars per year, for annualizing (see [`time::bars_per_year`]); bars too few to tell their
    /// calendar (under two weeks of them) take the one of the files they were cut from.
    pub fn bars_per_year(&self) -> f64 {
        match (time::weekend_calendar(&self.timestamps, self.timeframe), self.calendar) {
            (None, Some(closed)) => time::bars_per_year_on(&self.timestamps, self.timeframe, closed),
            _ => time::bars_per_year(&self.timestamps, self.timeframe),
        }
    }

    /// The id of a symbol by name.
    pub fn symbol_id(&self, name: &str) -> Option<usize> {
        self.symbols.iter().position(|s| s == name)
    }

    /// A copy of the bars in `range` of the shared clock (for train/test windows).
    pub fn slice(&self, r: std::ops::Range<usize>) -> MarketData {
        MarketData {
            timeframe: self.timeframe,
            timestamps: self.timestamps[r.clone()].to_vec(),
            symbols: self.symbols.clone(),
            bars: self.bars.iter().map(|b| b.slice(r.clone())).collect(),
            calendar: self.calendar,
        }
    }
}

/// How to load bars: the `[data]` table of an experiment file minus its paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadOptions {
    /// One file or folder of bars (experiment files; relative to the experiment's folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Several files or folders.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathBuf>,
    /// File format; `auto` picks by extension (`.csv`, `.parquet`, `.feather`/`.arrow`, `.json`).
    pub format: Format,
    /// How timestamps are written; `auto` detects ISO text or epoch s/ms/us/ns.
    pub timestamp_unit: TimestampUnit,
    /// Column names in the files.
    pub columns: ColumnNames,
    /// Keep only these symbols (all when absent; an empty list in a file is refused, as it
    /// would read as "none" but mean "all").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
    /// The bars' timeframe; inferred (most common spacing) when absent.
    pub timeframe: Option<Timeframe>,
    /// Resample to this coarser timeframe after loading.
    pub resample: Option<Timeframe>,
    /// How symbols are put on one clock.
    pub align: AlignPolicy,
    /// First bar to keep (ISO-8601, inclusive).
    pub start: Option<String>,
    /// End of the kept range (ISO-8601, exclusive).
    pub end: Option<String>,
    /// Refuse a bar whose close is more than this many times above or below its open, or whose
    /// open is that far from the previous close (1000): a bad print or a unit mix-up. Highs and
    /// lows are not checked (real flash-crash wicks exist).
    pub max_price_jump: f64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            path: None,
            paths: Vec::new(),
            format: Format::Auto,
            timestamp_unit: TimestampUnit::Auto,
            columns: ColumnNames::default(),
            symbols: Vec::new(),
            timeframe: None,
            resample: None,
            align: AlignPolicy::Inner,
            start: None,
            end: None,
            max_price_jump: 1000.0,
        }
    }
}

/// A non-fatal finding while loading.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// File concerned.
    pub file: PathBuf,
    /// What was found.
    pub message: String,
}

/// What loading produced besides the data.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Gaps and other non-fatal findings.
    pub warnings: Vec<Warning>,
    /// Per symbol: (symbol, source file, bars read, missing bars within data.start .. data.end).
    pub per_symbol: Vec<(String, PathBuf, usize, usize)>,
}

/// Expand paths: a folder stands for its data files (non-recursive; names starting with `_` or
/// `.` are skipped, so label files such as `_regimes.csv` can sit beside the bars).
/// In a folder, files named freqtrade-style `PAIR-TF.ext` whose timeframe differs from
/// `timeframe` (when given) are skipped, so one folder can hold several timeframes.
pub fn expand_paths(paths: &[PathBuf], timeframe: Option<Timeframe>) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && Format::from_path(f).is_some())
                .filter(|f| {
                    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    !name.starts_with('_') && !name.starts_with('.')
                })
                .filter(|f| match (timeframe, freqtrade_timeframe(f)) {
                    (Some(want), Some(got)) => want == got,
                    _ => true,
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::data(p, None, "no-data-files", "folder holds no .csv, .parquet, .feather or .json files"));
            }
            out.extend(files);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(Error::io(p, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder")));
        }
    }
    Ok(out)
}

fn freqtrade_timeframe(p: &Path) -> Option<Timeframe> {
    p.file_stem()?.to_str()?.rsplit_once('-')?.1.parse().ok()
}

/// Read every symbol from `paths` (files or folders), validated, each in its own time order.
pub fn load_series(paths: &[PathBuf], opts: &LoadOptions) -> Result<Vec<SymbolSeries>> {
    let mut all: Vec<SymbolSeries> = Vec::new();
    for f in expand_paths(paths, opts.timeframe)? {
        let read = read_file(&f, opts)?;
        // The file's text is freed: hand it back before the next file is read.
        release_freed_memory();
        for s in read {
            if let Some(prev) = all.iter().find(|p| p.symbol == s.symbol) {
                return Err(Error::data(&f, None, "duplicate-symbol", format!("symbol {} is also in {}", s.symbol, prev.source.display())));
            }
            all.push(s);
        }
    }
    if !opts.symbols.is_empty() {
        for want in &opts.symbols {
            if !all.iter().any(|s| &s.symbol == want) {
                let have: Vec<&str> = all.iter().map(|s| s.symbol.as_str()).collect();
                return Err(Error::Input(format!("data.symbols: symbol {want} not found; the data has {}", have.join(", "))));
            }
        }
        all.retain(|s| opts.symbols.contains(&s.symbol));
        all.sort_by_key(|s| opts.symbols.iter().position(|w| w == &s.symbol));
    }
    Ok(all)
}

/// Load, validate, resample and align: the whole data pipeline.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Result<(MarketData, LoadReport)> {
    let mut series = load_series(paths, opts)?;
    let tf = match opts.timeframe {
        Some(tf) => tf,
        None => infer_timeframe(&series).ok_or_else(|| {
            let files: Vec<String> = series.iter().map(|s| format!("{} ({} bar)", s.source.display(), s.ts.len())).collect();
            Error::Input(format!("cannot infer the timeframe, every file has fewer than 2 bars: {}; set data.timeframe", files.join(", ")))
        })?,
    };
    let start = parse_bound(opts.start.as_deref(), "data.start")?;
    let end = parse_bound(opts.end.as_deref(), "data.end")?;
    let mut report = LoadReport::default();
    for s in &series {
        // The gaps of the bars the run may use (those in data.start .. data.end), on the calendar
        // of the whole file.
        let lo = start.map_or(0, |b| s.ts.partition_point(|&t| t < b));
        let hi = end.map_or(s.ts.len(), |b| s.ts.partition_point(|&t| t < b)).max(lo);
        let gaps = align::count_gaps_in(&s.ts[lo..hi], tf, time::closed_at_weekends(&s.ts, tf));
        if gaps.missing > 0 {
            report.warnings.push(Warning {
                file: s.source.clone(),
                message: format!(
                    "{}: {} missing {} of {tf} in {} {}{}",
                    s.symbol,
                    gaps.missing,
                    if gaps.missing == 1 { "bar" } else { "bars" },
                    gaps.gaps,
                    if gaps.gaps == 1 { "gap" } else { "gaps" },
                    if gaps.weekend_closures > 0 { " on weekdays (closed at weekends; those gaps not counted)" } else { "" }
                ),
            });
        }
        if gaps.irregular > 0 {
            report.warnings.push(Warning {
                file: s.source.clone(),
                message: format!("{}: {} bar spacings are not a multiple of {tf}", s.symbol, gaps.irregular),
            });
        }
        report.per_symbol.push((s.symbol.clone(), s.source.clone(), s.ts.len(), gaps.missing));
    }
    let tf = match opts.resample {
        Some(to) => {
            align::check_resample(tf, to).map_err(|m| Error::Input(format!("data.resample: {m}")))?;
            for s in series.iter_mut() {
                *s = resample(s, to);
            }
            to
        }
        None => tf,
    };
    // The calendar of the whole files, for a range too short to show it: with "inner" the clock
    // lacks weekends if any symbol does, with "ffill" only if all do.
    let calendars: Vec<Option<bool>> = series.iter().map(|s| time::weekend_calendar(&s.ts, tf)).collect();
    let calendar = match opts.align {
        AlignPolicy::Inner if calendars.contains(&Some(true)) => Some(true),
        AlignPolicy::Ffill if calendars.contains(&Some(false)) => Some(false),
        _ if calendars.iter().all(Option::is_some) => calendars.first().copied().flatten(),
        _ => None,
    };
    // The run's range, applied to each series before alignment, so that what alignment leaves
    // out or fills is counted within it (the same bars as slicing the aligned clock).
    if start.is_some() || end.is_some() {
        for s in series.iter_mut() {
            let span = format!("{} to {}", time::format_ts(s.ts[0]), time::format_ts(s.ts[s.ts.len() - 1]));
            let lo = start.map_or(0, |b| s.ts.partition_point(|&t| t < b));
            let hi = end.map_or(s.ts.len(), |b| s.ts.partition_point(|&t| t < b)).max(lo);
            if hi - lo < s.ts.len() {
                *s = s.slice(lo..hi);
            }
            if s.ts.is_empty() {
                return Err(Error::Input(format!(
                    "data.start {} .. data.end {}: {} has no bar in that range (its data runs from {span})",
                    opts.start.as_deref().unwrap_or("(none)"),
                    opts.end.as_deref().unwrap_or("(none)"),
                    s.symbol
                )));
            }
        }
    }
    let own: Vec<(PathBuf, usize, usize)> =
        series.iter().map(|s| (s.source.clone(), s.ts.len(), s.bars.tradable.iter().filter(|t| !**t).count())).collect();
    let mut md = align::align_owned(series, tf, opts.align)?;
    md.calendar = calendar;
    if md.is_empty() {
        return Err(Error::Input(format!("the symbols share no bar time (align = {:?}): nothing to run on", opts.align).to_lowercase()));
    }
    // What the common clock did to each symbol: its bars left out (another symbol lacks that time,
    // or, with ffill, before the latest first bar) and, with ffill, the bars filled in.
    let policy = format!("{:?}", opts.align).to_lowercase();
    for ((sym, b), (file, n_own, own_untradable)) in md.symbols.iter().zip(&md.bars).zip(own) {
        let filled = b.tradable.iter().filter(|t| !**t).count().saturating_sub(own_untradable);
        let dropped = n_own.saturating_sub(md.len() - filled);
        if dropped > 0 {
            report.warnings.push(Warning {
                file: file.clone(),
                message: format!(
                    "{sym}: {dropped} of its {n_own} bars left out by data.align = \"{policy}\" (times the other symbols lack{}); the run's bars are {} to {}",
                    if opts.align == AlignPolicy::Ffill { ", or before the latest first bar" } else { "" },
                    time::format_ts(md.timestamps[0]),
                    time::format_ts(md.timestamps[md.len() - 1])
                ),
            });
        }
        if filled > 0 {
            report.warnings.push(Warning {
                file,
                message: format!("{sym}: {filled} bars filled in at the previous close by data.align = \"{policy}\" (not tradable)"),
            });
        }
    }
    release_freed_memory();
    Ok((md, report))
}

/// Give freed memory back to the system (after loading: the CSV reader's text, the unaligned
/// series; after a search: its candidates' buffers): glibc's allocator keeps it otherwise, and a
/// run then holds it to the end.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no live allocation moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn parse_bound(s: Option<&str>, key: &str) -> Result<Option<i64>> {
    s.map(|s| {
        time::parse_timestamp(s, TimestampUnit::Iso).ok_or_else(|| Error::Input(format!("{key}: '{s}' is not an ISO-8601 date or time")))
    })
    .transpose()
}

/// Load from a single path with default options (tests and tools).
pub fn load_path(path: impl AsRef<Path>) -> Result<(MarketData, LoadReport)> {
    load(&[path.as_ref().to_path_buf()], &LoadOptions::default())
}
