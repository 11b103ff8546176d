//! Reading bar files into validated per-symbol series. Numbers are parsed here rather than by
//! polars' type inference so that every bad value is reported with its line.

use super::time::{epoch_to_ms, parse_timestamp, Timeframe, TimestampUnit};
use super::{Bars, LoadOptions, SymbolSeries};
use crate::error::{Error, Loc, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File formats the loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// By extension.
    #[default]
    Auto,
    /// Comma-separated text with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC / Feather v2 (freqtrade's `.feather`).
    Feather,
    /// freqtrade's JSON candles: `[[ms, open, high, low, close, volume], ...]`.
    FreqtradeJson,
}

impl Format {
    /// The format a file name implies, if any.
    pub fn from_path(p: &Path) -> Option<Format> {
        let ext = p.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" | "txt" => Format::Csv,
            "parquet" | "pq" => Format::Parquet,
            "feather" | "arrow" | "ipc" => Format::Feather,
            "json" => Format::FreqtradeJson,
            _ => return None,
        })
    }
}

/// Column names in bar files. Matching ignores case; when `timestamp` is left at its default,
/// `date`, `time`, `datetime` and `open_time` are accepted too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColumnNames {
    /// Bar open time.
    pub timestamp: String,
    /// Open price.
    pub open: String,
    /// High price.
    pub high: String,
    /// Low price.
    pub low: String,
    /// Close price.
    pub close: String,
    /// Volume.
    pub volume: String,
    /// Symbol, for long files holding several symbols; absent means one symbol per file.
    pub symbol: String,
}

impl Default for ColumnNames {
    fn default() -> Self {
        ColumnNames {
            timestamp: "timestamp".into(),
            open: "open".into(),
            high: "high".into(),
            low: "low".into(),
            close: "close".into(),
            volume: "volume".into(),
            symbol: "symbol".into(),
        }
    }
}

/// The symbol a file name stands for: the stem, with freqtrade's `BASE_QUOTE-TF` spelled
/// `BASE/QUOTE` (so `BTC_USDT-1h.json` is `BTC/USDT`).
pub fn symbol_from_path(p: &Path) -> String {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_string();
    if let Some((pair, tf)) = stem.rsplit_once('-') {
        if tf.parse::<Timeframe>().is_ok() {
            return pair.replacen('_', "/", 1);
        }
    }
    stem
}

/// A column as read, before numbers are checked.
enum RawCol {
    /// Text as polars holds it (no copy per cell: a million-row file stays near its own size).
    Text(StringChunked),
    Num(Vec<Option<f64>>),
    /// Datetime already typed by the file, in ms.
    TimeMs(Vec<Option<i64>>),
}

impl RawCol {
    fn len(&self) -> usize {
        match self {
            RawCol::Text(v) => v.len(),
            RawCol::Num(v) => v.len(),
            RawCol::TimeMs(v) => v.len(),
        }
    }
}

struct Table {
    file: PathBuf,
    text: bool,
    names: Vec<String>,
    cols: Vec<RawCol>,
    /// Rows as read (columns may be let go once converted).
    rows: usize,
}

impl Table {
    fn loc(&self, row: usize) -> Loc {
        if self.text {
            Loc::Line(row + 2)
        } else {
            Loc::Row(row + 1)
        }
    }

    fn find(&self, want: &str, aliases: &[&str]) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(want))
            .or_else(|| self.names.iter().position(|n| aliases.iter().any(|a| n.eq_ignore_ascii_case(a))))
    }

    fn n_rows(&self) -> usize {
        self.rows
    }
}

fn polars_err(file: &Path, e: PolarsError) -> Error {
    Error::data(file, None, "unreadable-file", e.to_string())
}

fn series_to_raw(file: &Path, s: &Series) -> Result<RawCol> {
    let err = |e| polars_err(file, e);
    Ok(match s.dtype() {
        DataType::String => RawCol::Text(s.str().map_err(err)?.clone()),
        DataType::Datetime(unit, _) => {
            let div = match unit {
                TimeUnit::Nanoseconds => 1_000_000,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Milliseconds => 1,
            };
            let phys = s.cast(&DataType::Int64).map_err(err)?;
            RawCol::TimeMs(phys.i64().map_err(err)?.iter().map(|v| v.map(|x| x.div_euclid(div))).collect())
        }
        DataType::Date => {
            let phys = s.cast(&DataType::Int32).map_err(err)?;
            RawCol::TimeMs(phys.i32().map_err(err)?.iter().map(|v| v.map(|d| d as i64 * super::time::DAY_MS)).collect())
        }
        dt if dt.is_primitive_numeric() => {
            let f = s.cast(&DataType::Float64).map_err(err)?;
            RawCol::Num(f.f64().map_err(err)?.iter().collect())
        }
        other => {
            return Err(Error::data(
                file,
                None,
                "unsupported-column-type",
                format!("column {} has type {other}; expected numbers, text or datetimes", s.name()),
            ))
        }
    })
}

fn read_table(file: &Path, format: Format) -> Result<Table> {
    let format = match format {
        Format::Auto => Format::from_path(file).ok_or_else(|| {
            Error::data(file, None, "unknown-format", "extension is not .csv, .parquet, .feather/.arrow or .json; set data.format")
        })?,
        f => f,
    };
    if format == Format::FreqtradeJson {
        return read_freqtrade_json(file);
    }
    let df = match format {
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(file.to_path_buf()))
            .and_then(|r| r.finish()),
        Format::Parquet => std::fs::File::open(file).map_err(|e| Error::io(file, e)).map(|f| ParquetReader::new(f).finish())?,
        Format::Feather => std::fs::File::open(file).map_err(|e| Error::io(file, e)).map(|f| IpcReader::new(f).finish())?,
        Format::Auto | Format::FreqtradeJson => unreachable!("resolved above"),
    }
    .map_err(|e| polars_err(file, e))?;
    let mut names = Vec::new();
    let mut cols = Vec::new();
    for c in df.columns() {
        names.push(c.name().to_string());
        cols.push(series_to_raw(file, c.as_materialized_series())?);
    }
    let rows = cols.first().map_or(0, RawCol::len);
    Ok(Table { file: file.to_path_buf(), text: format == Format::Csv, names, cols, rows })
}

fn read_freqtrade_json(file: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(&text).map_err(|e| {
        Error::data(file, None, "bad-json", format!("expected freqtrade candles [[ms, open, high, low, close, volume], ...]: {e}"))
    })?;
    let names: Vec<String> = ["timestamp", "open", "high", "low", "close", "volume"].iter().map(|s| s.to_string()).collect();
    let mut cols: Vec<Vec<Option<f64>>> = (0..6).map(|_| Vec::with_capacity(rows.len())).collect();
    for (i, row) in rows.iter().enumerate() {
        if row.len() != 6 {
            // Seven or more fields is some other layout: which field is the volume cannot be known.
            let rule = if row.len() < 6 { "missing-field" } else { "extra-field" };
            return Err(Error::data(
                file,
                Some(Loc::Row(i + 1)),
                rule,
                format!("candle has {} fields, expected 6 ([ms, open, high, low, close, volume])", row.len()),
            ));
        }
        for (j, v) in row.iter().take(6).enumerate() {
            let x = match v {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            };
            if x.is_none() {
                return Err(Error::data(file, Some(Loc::Row(i + 1)), "unparsable-number", format!("{}: '{v}' is not a number", names[j])));
            }
            cols[j].push(x);
        }
    }
    // freqtrade's candles are stamped in epoch milliseconds by definition.
    let mut cols: Vec<RawCol> = cols.into_iter().map(RawCol::Num).collect();
    if let RawCol::Num(ts) = &cols[0] {
        cols[0] = RawCol::TimeMs(ts.iter().map(|v| v.map(|x| x as i64)).collect());
    }
    let rows = cols.first().map_or(0, RawCol::len);
    Ok(Table { file: file.to_path_buf(), text: false, names, cols, rows })
}

fn numbers(t: &Table, idx: usize) -> Result<Vec<f64>> {
    let name = &t.names[idx];
    let bad = |row: usize, rule: &'static str, what: String| Error::data(&t.file, Some(t.loc(row)), rule, format!("column {name}: {what}"));
    let mut out = Vec::with_capacity(t.n_rows());
    match &t.cols[idx] {
        RawCol::Text(v) => {
            for (i, s) in v.iter().enumerate() {
                let s = s.map(str::trim).unwrap_or("");
                if s.is_empty() {
                    return Err(bad(i, "missing-value", "empty, expected a number".into()));
                }
                let x: f64 = s.parse().map_err(|_| bad(i, "unparsable-number", format!("'{s}' is not a number")))?;
                out.push(x);
            }
        }
        RawCol::Num(v) => {
            for (i, x) in v.iter().enumerate() {
                out.push(x.ok_or_else(|| bad(i, "missing-value", "null, expected a number".into()))?);
            }
        }
        RawCol::TimeMs(_) => {
            return Err(Error::data(&t.file, None, "wrong-column-type", format!("column {name} holds datetimes, expected numbers")))
        }
    }
    for (i, x) in out.iter().enumerate() {
        if !x.is_finite() {
            return Err(bad(i, "non-finite", format!("{x} is not a finite number")));
        }
    }
    Ok(out)
}

fn timestamps(t: &Table, idx: usize, unit: TimestampUnit) -> Result<Vec<i64>> {
    let name = &t.names[idx];
    let bad = |row: usize, what: String| Error::data(&t.file, Some(t.loc(row)), "unparsable-timestamp", format!("column {name}: {what}"));
    let n = t.n_rows();
    let mut out = Vec::with_capacity(n);
    match &t.cols[idx] {
        RawCol::Text(v) => {
            for (i, s) in v.iter().enumerate() {
                let s = s.unwrap_or("");
                out.push(parse_timestamp(s, unit).ok_or_else(|| bad(i, format!("'{s}' is not an ISO-8601 time or epoch number")))?);
            }
        }
        RawCol::Num(v) => {
            for (i, x) in v.iter().enumerate() {
                let ms = x.and_then(|x| epoch_to_ms(x, unit));
                out.push(ms.ok_or_else(|| bad(i, format!("{x:?} is not an epoch time")))?);
            }
        }
        RawCol::TimeMs(v) => {
            for (i, x) in v.iter().enumerate() {
                out.push(x.ok_or_else(|| bad(i, "null time".into()))?);
            }
        }
    }
    Ok(out)
}

/// Read one file into validated series (one per symbol). Rules, each reported with the file,
/// the line (CSV, header = line 1) or row (binary formats), and the rule's name:
/// `missing-column`, `missing-value`, `unparsable-number`, `unparsable-timestamp`, `non-finite`,
/// `non-positive-price`, `high-below-open-close`, `low-above-open-close`, `high-below-low`,
/// `negative-volume`, `price-jump` (a bar's close over `max_price_jump` times away from its open,
/// or its open that far from the previous close), `duplicate-timestamp`, `decreasing-timestamp`.
pub fn read_file(file: &Path, opts: &LoadOptions) -> Result<Vec<SymbolSeries>> {
    let mut t = read_table(file, opts.format)?;
    // The CSV reader renames a repeated header `x` to `x_duplicated_N`: which column was meant
    // cannot be known.
    for (i, n) in t.names.iter().enumerate() {
        let base = n.split_once("_duplicated_").map_or(n.as_str(), |(b, _)| b);
        if base != n || t.names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
            return Err(Error::data(file, Some(Loc::Line(1)), "duplicate-column", format!("column '{base}' appears more than once")));
        }
    }
    let c = &opts.columns;
    let ts_aliases: &[&str] = if c.timestamp == "timestamp" { &["date", "time", "datetime", "open_time"] } else { &[] };
    let mut idx = [0usize; 6];
    for (k, (key, want, aliases)) in [
        ("timestamp", &c.timestamp, ts_aliases),
        ("open", &c.open, &[][..]),
        ("high", &c.high, &[]),
        ("low", &c.low, &[]),
        ("close", &c.close, &[]),
        ("volume", &c.volume, &[]),
    ]
    .into_iter()
    .enumerate()
    {
        idx[k] = t.find(want, aliases).ok_or_else(|| {
            Error::data(
                file,
                None,
                "missing-column",
                format!("no {key} column named '{want}' (set data.columns.{key}); the file has: {}", t.names.join(", ")),
            )
        })?;
    }
    // Each column's text is let go once it is read as numbers (unless read again, or the symbol
    // column): a long file then holds its text and its numbers side by side for one column only.
    let keep = t.find(&c.symbol, &[]);
    let release = |t: &mut Table, k: usize| {
        if !idx[k + 1..].contains(&idx[k]) && keep != Some(idx[k]) {
            t.cols[idx[k]] = RawCol::Num(Vec::new());
        }
    };
    let ts = timestamps(&t, idx[0], opts.timestamp_unit)?;
    release(&mut t, 0);
    // Epoch numbers read in too large a unit land in January 1970, where no bar data lives.
    const Y1980_MS: i64 = 315_532_800_000;
    if let Some(first) = ts.iter().position(|&x| x < Y1980_MS).filter(|_| opts.timestamp_unit != TimestampUnit::Auto) {
        return Err(Error::data(
            file,
            Some(t.loc(first)),
            "timestamp-unit",
            format!(
                "read with data.timestamp_unit = \"{}\" this is {}, before 1980: the numbers are likely in a smaller unit (or leave the unit to auto)",
                format!("{:?}", opts.timestamp_unit).to_lowercase(),
                super::time::format_ts(ts[first])
            ),
        ));
    }
    let o = numbers(&t, idx[1])?;
    release(&mut t, 1);
    let h = numbers(&t, idx[2])?;
    release(&mut t, 2);
    let l = numbers(&t, idx[3])?;
    release(&mut t, 3);
    let cl = numbers(&t, idx[4])?;
    release(&mut t, 4);
    let v = numbers(&t, idx[5])?;
    release(&mut t, 5);

    // Group rows by symbol (file order kept within each symbol).
    let groups: Vec<(String, Vec<usize>)> = match t.find(&c.symbol, &[]) {
        Some(si) => {
            let RawCol::Text(sym) = &t.cols[si] else {
                return Err(Error::data(file, None, "wrong-column-type", format!("column {} must hold text symbols", c.symbol)));
            };
            let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
            for (i, s) in sym.iter().enumerate() {
                let s = s
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| Error::data(file, Some(t.loc(i)), "missing-value", format!("column {}: empty symbol", c.symbol)))?;
                match groups.iter_mut().find(|g| g.0 == s) {
                    Some(g) => g.1.push(i),
                    None => groups.push((s.to_string(), vec![i])),
                }
            }
            groups
        }
        None => vec![(symbol_from_path(file), (0..t.n_rows()).collect())],
    };

    let mut out = Vec::with_capacity(groups.len());
    for (symbol, rows) in groups {
        // Symbol names go into CSV headers and rows of every run folder.
        if symbol.contains([',', '"', '\n', '\r']) {
            let at = rows.first().map(|&i| t.loc(i));
            return Err(Error::data(file, at, "bad-symbol", format!("symbol '{symbol}' holds a comma, quote or line break")));
        }
        let mut s = SymbolSeries { symbol, source: file.to_path_buf(), ts: Vec::with_capacity(rows.len()), bars: Bars::default() };
        let mut prev: Option<usize> = None;
        for &i in &rows {
            let at = Some(t.loc(i));
            let bad = |rule: &'static str, detail: String| Error::data(file, at, rule, detail);
            for (name, p) in [("open", o[i]), ("high", h[i]), ("low", l[i]), ("close", cl[i])] {
                if p <= 0.0 {
                    return Err(bad("non-positive-price", format!("{name} is {p}, prices must be > 0")));
                }
            }
            if h[i] < l[i] {
                return Err(bad("high-below-low", format!("high {} < low {}", h[i], l[i])));
            }
            if h[i] < o[i].max(cl[i]) {
                return Err(bad("high-below-open-close", format!("high {} < max(open {}, close {})", h[i], o[i], cl[i])));
            }
            if l[i] > o[i].min(cl[i]) {
                return Err(bad("low-above-open-close", format!("low {} > min(open {}, close {})", l[i], o[i], cl[i])));
            }
            if v[i] < 0.0 {
                return Err(bad("negative-volume", format!("volume is {}", v[i])));
            }
            // An open or close this far from its neighbour is a bad print or a unit mix-up, and
            // poisons every running sum and fill after it. Wicks are left alone: exchanges do
            // print flash crashes (Binance's daily LINKUSDT has a low of 0.0001 under a 3.85 high).
            let jump = opts.max_price_jump;
            if o[i].max(cl[i]) / o[i].min(cl[i]) > jump {
                return Err(bad(
                    "price-jump",
                    format!("close {} is over {jump} times away from open {} (data.max_price_jump)", cl[i], o[i]),
                ));
            }
            if let Some(p) = prev {
                let (a, b) = (cl[p], o[i]);
                if a.max(b) / a.min(b) > jump {
                    return Err(bad(
                        "price-jump",
                        format!("open {b} is over {jump} times away from the close {a} of {} (data.max_price_jump)", t.loc(p)),
                    ));
                }
            }
            if let Some(p) = prev {
                if ts[i] == ts[p] {
                    return Err(bad("duplicate-timestamp", format!("{} repeats {}", super::time::format_ts(ts[i]), t.loc(p))));
                }
                if ts[i] < ts[p] {
                    return Err(bad(
                        "decreasing-timestamp",
                        format!("{} is before {} at {}", super::time::format_ts(ts[i]), super::time::format_ts(ts[p]), t.loc(p)),
                    ));
                }
            }
            prev = Some(i);
            s.ts.push(ts[i]);
            s.bars.push(o[i], h[i], l[i], cl[i], v[i], true);
        }
        out.push(s);
    }
    if out.iter().all(|s| s.ts.is_empty()) {
        return Err(Error::data(file, None, "empty-file", "no bars"));
    }
    Ok(out)
}

/// Any table (CSV or Parquet/Feather) as text cells, for files other than bars (signal files).
#[derive(Debug, Clone)]
pub struct TextTable {
    /// Whether lines (text file) or rows (binary) locate cells.
    pub text: bool,
    /// Column names.
    pub names: Vec<String>,
    /// Cells, row by row; nulls are empty strings.
    pub rows: Vec<Vec<String>>,
}

impl TextTable {
    /// Location of data row `r` (0-based).
    pub fn loc(&self, r: usize) -> Loc {
        if self.text {
            Loc::Line(r + 2)
        } else {
            Loc::Row(r + 1)
        }
    }
}

/// Read a CSV, Parquet or Feather file as text cells.
pub fn read_text_table(file: &Path) -> Result<TextTable> {
    let t = read_table(file, Format::Auto)?;
    let n = t.n_rows();
    let mut rows = vec![Vec::with_capacity(t.cols.len()); n];
    for col in &t.cols {
        for (r, row) in rows.iter_mut().enumerate() {
            row.push(match col {
                RawCol::Text(v) => v.get(r).unwrap_or_default().to_string(),
                RawCol::Num(v) => v[r].map(|x| x.to_string()).unwrap_or_default(),
                RawCol::TimeMs(v) => v[r].map(super::time::format_ts).unwrap_or_default(),
            });
        }
    }
    Ok(TextTable { text: t.text, names: t.names, rows })
}
