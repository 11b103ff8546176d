//! Writing bars: CSV, Parquet, Feather and freqtrade's layouts (`PAIR-TF.json`/`.feather`).

use super::time::format_ts;
use super::{SymbolSeries, Timeframe};
use crate::error::{Error, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Output layouts for [`write_bars`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OutFormat {
    /// `SYMBOL.csv`, ISO-8601 timestamps.
    Csv,
    /// `SYMBOL.parquet`, timestamp as a UTC datetime in ms, zstd-compressed.
    Parquet,
    /// freqtrade's JSON layout: `BASE_QUOTE-TF.json` holding `[[ms, o, h, l, c, v], ...]`.
    FreqtradeJson,
    /// freqtrade's Feather layout: `BASE_QUOTE-TF.feather` with columns `date, open, high, low, close, volume`.
    FreqtradeFeather,
}

/// A symbol as a file-name stem (`BTC/USDT` becomes `BTC_USDT`).
pub fn file_stem(symbol: &str) -> String {
    symbol.replace(['/', '\\', ':'], "_")
}

fn frame(s: &SymbolSeries, ts_name: &str) -> PolarsResult<DataFrame> {
    let b = &s.bars;
    let ts = Int64Chunked::from_vec(ts_name.into(), s.ts.clone()).into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    DataFrame::new(
        s.ts.len(),
        vec![
            ts.into_series().into(),
            Series::new("open".into(), &b.open).into(),
            Series::new("high".into(), &b.high).into(),
            Series::new("low".into(), &b.low).into(),
            Series::new("close".into(), &b.close).into(),
            Series::new("volume".into(), &b.volume).into(),
        ],
    )
}

/// Write one series into folder `dir` in `format`; returns the file written.
pub fn write_bars(s: &SymbolSeries, dir: &Path, format: OutFormat, tf: Timeframe) -> Result<PathBuf> {
    let stem = file_stem(&s.symbol);
    let path = match format {
        OutFormat::Csv => dir.join(format!("{stem}.csv")),
        OutFormat::Parquet => dir.join(format!("{stem}.parquet")),
        OutFormat::FreqtradeJson => dir.join(format!("{stem}-{tf}.json")),
        OutFormat::FreqtradeFeather => dir.join(format!("{stem}-{tf}.feather")),
    };
    let b = &s.bars;
    if format == OutFormat::Csv {
        let mut c = CsvFile::create(&path, ["timestamp", "open", "high", "low", "close", "volume"])?;
        for i in 0..s.ts.len() {
            c.row(&[&format_ts(s.ts[i]), &b.open[i], &b.high[i], &b.low[i], &b.close[i], &b.volume[i]])?;
        }
        c.finish()?;
        return Ok(path);
    }
    let io = |e| Error::io(&path, e);
    let internal = |e: PolarsError| Error::Internal(format!("{}: {e}", path.display()));
    let file = std::fs::File::create(&path).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    match format {
        // Written through the csv crate above.
        OutFormat::Csv => {}
        OutFormat::FreqtradeJson => {
            write!(w, "[").map_err(io)?;
            for i in 0..s.ts.len() {
                let sep = if i == 0 { "" } else { "," };
                write!(w, "{sep}[{},{:?},{:?},{:?},{:?},{:?}]", s.ts[i], b.open[i], b.high[i], b.low[i], b.close[i], b.volume[i])
                    .map_err(io)?;
            }
            write!(w, "]").map_err(io)?;
        }
        OutFormat::Parquet => {
            let mut df = frame(s, "timestamp").map_err(internal)?;
            ParquetWriter::new(&mut w)
                .with_compression(ParquetCompression::Zstd(None))
                .set_parallel(false)
                .finish(&mut df)
                .map_err(internal)?;
        }
        OutFormat::FreqtradeFeather => {
            let mut df = frame(s, "date").map_err(internal)?;
            IpcWriter::new(&mut w).finish(&mut df).map_err(internal)?;
        }
    }
    w.flush().map_err(io)?;
    Ok(path)
}

/// The temporary file beside `path` that an atomic write fills before renaming it over `path`.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Write a whole file so that readers only ever see the old or the new contents: into a
/// temporary file beside it, flushed to disk, then renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    let io = |p: &Path, e| Error::io(p, e);
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// One row being written by [`CsvFile::par_rows`].
pub struct Row {
    w: csv::Writer<Vec<u8>>,
    buf: String,
    err: Option<csv::Error>,
}

impl Row {
    /// Append one field, as `Display` writes it.
    pub fn field(&mut self, v: impl std::fmt::Display) {
        use std::fmt::Write as _;
        self.buf.clear();
        let _ = write!(self.buf, "{v}");
        if let Err(e) = self.w.write_field(&self.buf) {
            self.err.get_or_insert(e);
        }
    }
}

/// A CSV file written through the `csv` crate (quoting and escaping every field) into a
/// temporary file beside its path and renamed over it by [`CsvFile::finish`], so a reader sees
/// the old file or the whole new one, never half of it.
pub struct CsvFile {
    path: PathBuf,
    tmp: PathBuf,
    /// Taken out only while [`CsvFile::par_rows`] writes past it.
    w: Option<csv::Writer<std::io::BufWriter<std::fs::File>>>,
    buf: String,
}

impl CsvFile {
    /// Start `path` with its header row.
    pub fn create<S: AsRef<str>>(path: &Path, header: impl IntoIterator<Item = S>) -> Result<CsvFile> {
        let tmp = temp_beside(path);
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let w = csv::WriterBuilder::new().flexible(false).from_writer(std::io::BufWriter::new(file));
        let mut f = CsvFile { path: path.to_path_buf(), tmp, w: Some(w), buf: String::new() };
        for h in header {
            f.field(h.as_ref())?;
        }
        f.end()?;
        Ok(f)
    }

    fn err(&self, e: csv::Error) -> Error {
        Error::io(&self.path, e.into())
    }

    /// Append one field to the current row, as `Display` writes it.
    pub fn field(&mut self, v: impl std::fmt::Display) -> Result<()> {
        use std::fmt::Write as _;
        self.buf.clear();
        let _ = write!(self.buf, "{v}");
        let buf = std::mem::take(&mut self.buf);
        let r = self.writer()?.write_field(&buf);
        self.buf = buf;
        r.map_err(|e| self.err(e))
    }

    fn writer(&mut self) -> Result<&mut csv::Writer<std::io::BufWriter<std::fs::File>>> {
        self.w.as_mut().ok_or_else(|| Self::broken(&self.tmp))
    }

    /// The writer, taken out (for [`par_rows`](Self::par_rows) and [`finish`](Self::finish)).
    fn take_writer(&mut self) -> Result<csv::Writer<std::io::BufWriter<std::fs::File>>> {
        self.w.take().ok_or_else(|| Self::broken(&self.tmp))
    }

    /// A write failed part-way through `par_rows` and the writer was not put back.
    fn broken(tmp: &Path) -> Error {
        Error::io(tmp, std::io::Error::other("an earlier write failed"))
    }

    /// Append rows `0..n`, each written by `row` into a [`Row`]: the rows are formatted in
    /// parallel, in chunks, then written in order (the same bytes as one field at a time); a
    /// few chunks per thread are in memory at once.
    pub fn par_rows(&mut self, n: usize, row: impl Fn(usize, &mut Row) + Sync) -> Result<()> {
        const CHUNK: usize = 4096;
        let step = CHUNK * 2 * rayon::current_num_threads().max(1);
        for start in (0..n).step_by(step) {
            self.par_rows_in(start..(start + step).min(n), CHUNK, &row)?;
        }
        Ok(())
    }

    fn par_rows_in(&mut self, rows: std::ops::Range<usize>, chunk: usize, row: &(impl Fn(usize, &mut Row) + Sync)) -> Result<()> {
        use rayon::prelude::*;
        let parts: Vec<std::result::Result<Vec<u8>, csv::Error>> = (0..rows.len().div_ceil(chunk))
            .into_par_iter()
            .map(|k| {
                let mut r = Row { w: csv::WriterBuilder::new().flexible(false).from_writer(Vec::new()), buf: String::new(), err: None };
                for i in rows.start + k * chunk..(rows.start + (k + 1) * chunk).min(rows.end) {
                    row(i, &mut r);
                    if let Err(e) = r.w.write_record(None::<&[u8]>) {
                        r.err.get_or_insert(e);
                    }
                }
                match r.err {
                    Some(e) => Err(e),
                    None => r.w.into_inner().map_err(|e| csv::Error::from(e.into_error())),
                }
            })
            .collect();
        let w = self.take_writer()?;
        let mut file = w.into_inner().map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        let written = parts.into_iter().try_for_each(|part| match part {
            Ok(bytes) => file.write_all(&bytes).map_err(|e| Error::io(&self.tmp, e)),
            Err(e) => Err(self.err(e)),
        });
        self.w = Some(csv::WriterBuilder::new().flexible(false).from_writer(file));
        written
    }

    /// End the current row.
    pub fn end(&mut self) -> Result<()> {
        let r = self.writer()?.write_record(None::<&[u8]>);
        r.map_err(|e| self.err(e))
    }

    /// Write one whole row.
    pub fn row(&mut self, fields: &[&dyn std::fmt::Display]) -> Result<()> {
        for f in fields {
            self.field(f)?;
        }
        self.end()
    }

    /// Flush and move the file into place.
    pub fn finish(mut self) -> Result<()> {
        let mut w = self.take_writer()?;
        w.flush().map_err(|e| Error::io(&self.tmp, e))?;
        drop(w);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}
