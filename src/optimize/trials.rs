//! The trial log of a search: `trials.csv` (one row per finished trial) and `trial_blocks.csv`
//! (the per-block return sums behind PBO), written through the `csv` crate, append-only and
//! flushed per batch; on resume a torn last line is cut off in place and every other row is read
//! back or named as an error, so no finished trial is lost or silently dropped. The readers
//! stream both files back a row at a time (for the summary and for merging shards).

use super::{value_text, Dim, Space, Trial, TrialStatus};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Appends trials to `trials.csv` as they are evaluated.
pub struct TrialLog {
    file: Option<csv::Writer<std::fs::File>>,
    blocks: Option<csv::Writer<std::fs::File>>,
    path: PathBuf,
    /// Which trials are already in the file (read back when resuming), by index: not written
    /// again.
    present: Vec<bool>,
    /// Fault injection for the kill tests: `TRADELAB_FAULT=blocks:K` aborts the process right
    /// after trial K's block sums are written (before its row), `row:K` after its row, `torn:K`
    /// halfway through writing its row. Unset in normal use.
    fault: Option<(String, usize)>,
}

impl TrialLog {
    fn fault_at(&self, step: &str, index: usize) -> bool {
        self.fault.as_ref().is_some_and(|(s, k)| s == step && *k == index)
    }
}

/// The complete records of an append-only CSV file, with their line numbers; a last line left
/// unfinished by a kill is cut off the file in place (truncated, never rewritten).
fn read_appended(path: &Path) -> Result<Vec<(usize, csv::StringRecord)>> {
    let io = |e| Error::io(path, e);
    let bytes = std::fs::read(path).map_err(io)?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut rd = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&bytes[..complete]);
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rd.position().line() as usize;
        match rd.read_record(&mut rec) {
            Ok(true) => out.push((line, rec.clone())),
            Ok(false) => break,
            Err(e) => return Err(Error::data(path, Some(crate::error::Loc::Line(line)), "bad-row", e.to_string())),
        }
    }
    if complete < bytes.len() {
        let f = std::fs::OpenOptions::new().write(true).open(path).map_err(io)?;
        f.set_len(complete as u64).map_err(io)?;
        tracing::warn!("{}: cut off a last line left unfinished by an interrupted run", path.display());
    }
    Ok(out)
}

/// The fault point of `TRADELAB_FAULT` (`step:trial`), if set (see [`TrialLog`]).
fn fault_from_env() -> Option<(String, usize)> {
    std::env::var("TRADELAB_FAULT").ok().and_then(|v| v.split_once(':').and_then(|(s, k)| Some((s.to_string(), k.parse().ok()?))))
}

fn header_mismatch(path: &Path, header: &[String]) -> Error {
    Error::data(
        path,
        Some(crate::error::Loc::Line(1)),
        "header-mismatch",
        format!(
            "not the header this search writes (expected columns: {}); the file was edited or written by another tradelab version",
            header.join(", ")
        ),
    )
}

fn mark(present: &mut Vec<bool>, i: usize) {
    if present.len() <= i {
        present.resize(i + 1, false);
    }
    present[i] = true;
}

fn is_present(present: &[bool], i: usize) -> bool {
    present.get(i).copied().unwrap_or(false)
}

/// Cut off a last line left unfinished by a kill (truncating in place, never rewriting),
/// reading only the file's tail.
fn cut_torn_tail(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e| Error::io(path, e);
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut end = len;
    let mut buf = vec![0u8; 1 << 16];
    let complete = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(buf.len() as u64);
        let part = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start)).map_err(io)?;
        f.read_exact(part).map_err(io)?;
        if let Some(i) = part.iter().rposition(|b| *b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    if complete < len {
        f.set_len(complete).map_err(io)?;
        tracing::warn!("{}: cut off a last line left unfinished by an interrupted run", path.display());
    }
    Ok(())
}

fn appender(path: &Path, header: Option<&[String]>) -> Result<csv::Writer<std::fs::File>> {
    let f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(f);
    if let Some(h) = header {
        w.write_record(h).map_err(|e| Error::io(path, e.into()))?;
        w.flush().map_err(|e| Error::io(path, e))?;
    }
    Ok(w)
}

impl TrialLog {
    fn header(space: &Space) -> Vec<String> {
        let mut h = vec!["trial".to_string()];
        h.extend(space.paths.iter().cloned());
        h.extend(
            [
                "status",
                "objective",
                "score",
                "feasible",
                "total_return",
                "sharpe",
                "max_drawdown",
                "trades",
                "seed",
                "duration_ms",
                "reason",
            ]
            .map(String::from),
        );
        h
    }

    fn blocks_header() -> Vec<String> {
        let mut h = vec!["trial".to_string()];
        for k in 0..crate::metrics::BLOCKS {
            h.extend([format!("sum_{k}"), format!("sum_sq_{k}"), format!("count_{k}")]);
        }
        h
    }

    /// Open (or, resuming, continue) `dir/trials.csv` and `dir/trial_blocks.csv` (each finished
    /// trial's per-block return sums, which the overfitting statistic needs, so a resumed search
    /// summarizes as an uninterrupted one); returns the trials already there. Both files are
    /// append-only: on resume a last line cut short by a kill is cut off and that trial runs
    /// again; any other unreadable row is an error naming its line, so no finished trial is
    /// silently dropped.
    pub fn open(dir: &Path, space: &Space, resume: bool) -> Result<(TrialLog, Vec<Trial>)> {
        let path = dir.join("trials.csv");
        let bpath = dir.join("trial_blocks.csv");
        let header = Self::header(space);
        let bheader = Self::blocks_header();
        let mut done = Vec::new();
        let existing = resume && std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        let existing_blocks = existing && std::fs::metadata(&bpath).is_ok_and(|m| m.len() > 0);
        if existing {
            let bad = |p: &Path, line: usize, m: String| Error::data(p, Some(crate::error::Loc::Line(line)), "bad-trial-row", m);
            for (line, rec) in read_appended(&path)? {
                if line == 1 {
                    if rec.iter().ne(header.iter().map(String::as_str)) {
                        return Err(header_mismatch(&path, &header));
                    }
                    continue;
                }
                if rec.len() != header.len() {
                    return Err(bad(&path, line, format!("{} fields, the header has {}", rec.len(), header.len())));
                }
                done.push(parse_row(&rec, space).map_err(|m| bad(&path, line, m))?);
            }
            if existing_blocks {
                let mut by_index: BTreeMap<usize, [[f64; 3]; crate::metrics::BLOCKS]> = BTreeMap::new();
                for (line, rec) in read_appended(&bpath)?.into_iter().skip(1) {
                    let nums: std::result::Result<Vec<f64>, _> = rec.iter().map(str::parse::<f64>).collect();
                    let nums = nums.ok().filter(|v| v.len() == bheader.len()).ok_or_else(|| {
                        bad(&bpath, line, format!("expected {} numbers (trial, then sum, sum_sq, count per block)", bheader.len()))
                    })?;
                    by_index.insert(nums[0] as usize, std::array::from_fn(|k| [nums[1 + 3 * k], nums[2 + 3 * k], nums[3 + 3 * k]]));
                }
                for t in done.iter_mut() {
                    t.blocks = by_index.get(&t.index).copied();
                }
            }
        }
        let file = appender(&path, (!existing).then_some(header.as_slice()))?;
        let blocks = appender(&bpath, (!existing_blocks).then_some(bheader.as_slice()))?;
        let mut present = Vec::new();
        for t in &done {
            mark(&mut present, t.index);
        }
        let fault = fault_from_env();
        Ok((TrialLog { file: Some(file), blocks: Some(blocks), path, present, fault }, done))
    }

    /// Continue `dir`'s log without reading its trials into memory (for grid and random
    /// searches, whose candidates come back in index order): each file's torn last line is cut
    /// off, every row is checked as [`TrialLog::open`] checks it, and the trials are then read
    /// back a window at a time by [`Logged`]. Without a `trials.csv`, a fresh log.
    pub fn resume_streaming(dir: &Path, space: &Space) -> Result<(TrialLog, Option<Logged>)> {
        let path = dir.join("trials.csv");
        let bpath = dir.join("trial_blocks.csv");
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            cut_torn_tail(&path)?;
        }
        if !std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            // Not even a whole header: the run stopped as it began; start both files afresh.
            for p in [&path, &bpath] {
                if p.exists() {
                    std::fs::write(p, b"").map_err(|e| Error::io(p, e))?;
                }
            }
            let (log, _) = TrialLog::open(dir, space, false)?;
            return Ok((log, None));
        }
        let header = Self::header(space);
        let mut rd = TrialReader::open(dir, space)?;
        if rd.headers()?.iter().ne(header.iter().map(String::as_str)) {
            return Err(header_mismatch(&path, &header));
        }
        let mut present = Vec::new();
        while let Some(t) = rd.next_trial()? {
            mark(&mut present, t.index);
        }
        let existing_blocks = std::fs::metadata(&bpath).is_ok_and(|m| m.len() > 0);
        if existing_blocks {
            cut_torn_tail(&bpath)?;
            let mut b = BlocksReader::open(dir)?;
            while b.next_row()?.is_some() {}
        }
        let file = appender(&path, None)?;
        let blocks = appender(&bpath, (!existing_blocks).then_some(Self::blocks_header().as_slice()))?;
        let fault = fault_from_env();
        let logged = Logged { reader: TrialReader::open(dir, space)?, head: None };
        Ok((TrialLog { file: Some(file), blocks: Some(blocks), path, present, fault }, Some(logged)))
    }

    /// Append trials and flush, so a killed run loses nothing written.
    pub fn append(&mut self, trials: &[Trial], seed: u64) -> Result<()> {
        if self.fault.is_some() {
            return self.append_one_by_one(trials, seed);
        }
        let new: Vec<&Trial> = trials.iter().filter(|t| !is_present(&self.present, t.index)).collect();
        let io = |e: csv::Error| Error::io(&self.path, e.into());
        // The rows are formatted in parallel, then written in order: the bytes the writers
        // would write one row at a time. Block sums first: a trial whose row is in trials.csv
        // always has them.
        let (blocks, rows) = rayon::join(
            || csv_text(&new, |t| t.blocks.as_ref().map(|b| blocks_row(t.index, b))),
            || csv_text(&new, |t| Some(row(t, seed))),
        );
        for (f, bytes) in [(self.blocks.as_mut(), blocks), (self.file.as_mut(), rows)] {
            if let Some(f) = f {
                let bytes = bytes.map_err(io)?;
                f.flush().map_err(|e| Error::io(&self.path, e))?;
                let mut file: &std::fs::File = f.get_ref();
                file.write_all(&bytes).map_err(|e| Error::io(&self.path, e))?;
            }
        }
        Ok(())
    }

    /// `append` one trial at a time, flushing each file after each, with the fault points.
    fn append_one_by_one(&mut self, trials: &[Trial], seed: u64) -> Result<()> {
        let io = |p: &Path, e: std::io::Error| Error::io(p, e);
        let present = std::mem::take(&mut self.present);
        for t in trials.iter().filter(|t| !is_present(&present, t.index)) {
            if let (Some(f), Some(b)) = (self.blocks.as_mut(), &t.blocks) {
                f.write_record(blocks_row(t.index, b)).map_err(|e| io(&self.path, e.into()))?;
                f.flush().map_err(|e| io(&self.path, e))?;
            }
            if self.fault_at("blocks", t.index) {
                std::process::abort();
            }
            if let Some(f) = self.file.as_mut() {
                if self.fault.as_ref().is_some_and(|(s, k)| s == "torn" && *k == t.index) {
                    let mut line = Vec::new();
                    csv::WriterBuilder::new()
                        .has_headers(false)
                        .from_writer(&mut line)
                        .write_record(row(t, seed))
                        .map_err(|e| io(&self.path, e.into()))?;
                    f.flush().map_err(|e| io(&self.path, e))?;
                    let mut file: &std::fs::File = f.get_ref();
                    file.write_all(&line[..line.len() / 2]).map_err(|e| io(&self.path, e))?;
                    std::process::abort();
                }
                f.write_record(row(t, seed)).map_err(|e| io(&self.path, e.into()))?;
                f.flush().map_err(|e| io(&self.path, e))?;
            }
            if self.fault_at("row", t.index) {
                std::process::abort();
            }
        }
        self.present = present;
        Ok(())
    }
}

/// The CSV text of the rows `row` makes of `items` (those it makes one of), as an appender
/// writes them, formatted in parallel chunks.
fn csv_text<T: Sync>(items: &[T], row: impl Fn(&T) -> Option<Vec<String>> + Sync) -> std::result::Result<Vec<u8>, csv::Error> {
    use rayon::prelude::*;
    let parts: Vec<std::result::Result<Vec<u8>, csv::Error>> = items
        .par_chunks(1024)
        .map(|chunk| {
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
            for r in chunk.iter().filter_map(&row) {
                w.write_record(&r)?;
            }
            w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
        })
        .collect();
    let mut out = Vec::new();
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

fn blocks_row(index: usize, b: &[[f64; 3]; crate::metrics::BLOCKS]) -> Vec<String> {
    let mut r = vec![index.to_string()];
    r.extend(b.iter().flat_map(|x| x.iter().map(|v| v.to_string())));
    r
}

fn row(t: &Trial, seed: u64) -> Vec<String> {
    let mut r = vec![t.index.to_string()];
    r.extend(t.params.iter().map(value_text));
    r.push(t.status.as_str().into());
    r.push(t.objective.to_string());
    r.push(t.score.to_string());
    r.push(t.feasible.to_string());
    r.extend(t.key_stats.iter().map(|x| x.to_string()));
    r.push(seed.to_string());
    r.push(format!("{:.3}", t.duration_ms));
    r.push(t.reason.clone());
    r
}

fn parse_row(f: &csv::StringRecord, space: &Space) -> std::result::Result<Trial, String> {
    let d = space.dims.len();
    let num = |s: &str| s.parse::<f64>().map_err(|_| format!("'{s}' is not a number"));
    let mut params = Vec::with_capacity(d);
    for (k, dim) in space.dims.iter().enumerate() {
        let s = &f[1 + k];
        params.push(match dim {
            Dim::Int { .. } => toml::Value::Integer(s.parse().map_err(|_| format!("'{s}' is not an integer"))?),
            Dim::Float { .. } => toml::Value::Float(num(s)?),
            Dim::Choice(c) => c.iter().find(|v| value_text(v) == s).cloned().ok_or(format!("'{s}' is not a choice"))?,
        });
    }
    let status = match &f[1 + d] {
        "ok" => TrialStatus::Ok,
        "rule" => TrialStatus::Rule,
        "invalid" => TrialStatus::Invalid,
        other => return Err(format!("'{other}' is not a trial status (ok, rule, invalid)")),
    };
    Ok(Trial {
        index: f[0].parse().map_err(|_| "bad trial index".to_string())?,
        params,
        status,
        objective: num(&f[2 + d])?,
        score: num(&f[3 + d])?,
        feasible: &f[4 + d] == "true",
        key_stats: [num(&f[5 + d])?, num(&f[6 + d])?, num(&f[7 + d])?, num(&f[8 + d])?],
        duration_ms: num(&f[10 + d]).unwrap_or(0.0),
        blocks: None,
        reason: f[11 + d].to_string(),
    })
}

/// Per-block return sums of one trial: (sum, sum of squares, count) per block.
pub(crate) type Blocks = [[f64; 3]; crate::metrics::BLOCKS];

/// Reads `dir/trials.csv` one row at a time, in file order (which is trial order: every writer
/// appends in candidate order, and a row out of order is an error naming its line).
pub(crate) struct TrialReader {
    rd: csv::Reader<std::fs::File>,
    path: PathBuf,
    space: Space,
    width: usize,
    rec: csv::StringRecord,
    last: Option<usize>,
}

impl TrialReader {
    pub(crate) fn open(dir: &Path, space: &Space) -> Result<Self> {
        let path = dir.join("trials.csv");
        let rd = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_path(&path).map_err(|e| Error::io(&path, e.into()))?;
        Ok(TrialReader { rd, path, space: space.clone(), width: TrialLog::header(space).len(), rec: csv::StringRecord::new(), last: None })
    }

    /// The header row.
    pub(crate) fn headers(&mut self) -> Result<csv::StringRecord> {
        let path = &self.path;
        self.rd.headers().cloned().map_err(|e| Error::data(path, Some(crate::error::Loc::Line(1)), "bad-header", e.to_string()))
    }

    /// The next trial, None at the end of the file.
    pub(crate) fn next_trial(&mut self) -> Result<Option<Trial>> {
        let line = self.rd.position().line() as usize;
        let bad = |m: String| Error::data(&self.path, Some(crate::error::Loc::Line(line)), "bad-trial-row", m);
        match self.rd.read_record(&mut self.rec) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        }
        if self.rec.len() != self.width {
            return Err(bad(format!("{} fields, the header has {}", self.rec.len(), self.width)));
        }
        let t = parse_row(&self.rec, &self.space).map_err(bad)?;
        if let Some(l) = self.last.filter(|l| t.index <= *l) {
            return Err(bad(format!("trial {} after trial {l}: the log is not in trial order", t.index)));
        }
        self.last = Some(t.index);
        Ok(Some(t))
    }
}

/// The trials of a resumed log, read back a window of indices at a time.
pub struct Logged {
    reader: TrialReader,
    head: Option<Trial>,
}

impl Logged {
    /// The logged trials with indices below `end` not yet taken (a window: the caller asks
    /// for increasing `end`).
    pub(crate) fn take_below(&mut self, end: usize) -> Result<Vec<Trial>> {
        let mut out = Vec::new();
        loop {
            if self.head.is_none() {
                self.head = self.reader.next_trial()?;
            }
            match self.head.take() {
                Some(t) if t.index < end => out.push(t),
                other => {
                    self.head = other;
                    return Ok(out);
                }
            }
        }
    }
}

/// Stream the trials of `dir/trials.csv` in order (see [`TrialReader`]).
pub(crate) fn for_each_trial(dir: &Path, space: &Space, mut f: impl FnMut(Trial) -> Result<()>) -> Result<()> {
    let mut rd = TrialReader::open(dir, space)?;
    while let Some(t) = rd.next_trial()? {
        f(t)?;
    }
    Ok(())
}

/// Reads `dir/trial_blocks.csv` one row at a time: (trial, block sums).
pub(crate) struct BlocksReader {
    rd: csv::Reader<std::fs::File>,
    path: PathBuf,
    rec: csv::StringRecord,
}

impl BlocksReader {
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("trial_blocks.csv");
        let rd = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_path(&path).map_err(|e| Error::io(&path, e.into()))?;
        Ok(BlocksReader { rd, path, rec: csv::StringRecord::new() })
    }

    /// The next row, None at the end of the file.
    pub(crate) fn next_row(&mut self) -> Result<Option<(usize, Blocks)>> {
        const WIDTH: usize = 1 + 3 * crate::metrics::BLOCKS;
        let line = self.rd.position().line() as usize;
        let bad = || {
            Error::data(
                &self.path,
                Some(crate::error::Loc::Line(line)),
                "bad-trial-row",
                format!("expected {WIDTH} numbers (trial, then sum, sum_sq, count per block)"),
            )
        };
        if !self.rd.read_record(&mut self.rec).map_err(|_| bad())? {
            return Ok(None);
        }
        if self.rec.len() != WIDTH {
            return Err(bad());
        }
        let mut nums = [0.0; WIDTH];
        for (x, s) in nums.iter_mut().zip(self.rec.iter()) {
            *x = s.parse().map_err(|_| bad())?;
        }
        Ok(Some((nums[0] as usize, std::array::from_fn(|k| [nums[1 + 3 * k], nums[2 + 3 * k], nums[3 + 3 * k]]))))
    }
}

/// Stream `dir/trial_blocks.csv` in chunks of at most `chunk` rows of (trial, block sums).
pub(crate) fn for_each_blocks(dir: &Path, chunk: usize, mut f: impl FnMut(&[(usize, Blocks)]) -> Result<()>) -> Result<()> {
    let mut rd = BlocksReader::open(dir)?;
    let mut buf: Vec<(usize, Blocks)> = Vec::with_capacity(chunk);
    while let Some(row) = rd.next_row()? {
        buf.push(row);
        if buf.len() == chunk {
            f(&buf)?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        f(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_cut_at_the_last_newline_however_far_back() {
        let dir = std::env::temp_dir().join(format!("tradelab-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        let head = "a,b\n1,2\n".to_string();
        // A last line longer than the 64 KiB read back at a time.
        for (tail, want) in [("", head.as_str()), ("3,", head.as_str()), (&"9".repeat(200_000)[..], head.as_str())] {
            std::fs::write(&path, head.clone() + tail).unwrap();
            cut_torn_tail(&path).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
        }
        std::fs::write(&path, "no newline at all").unwrap();
        cut_torn_tail(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
