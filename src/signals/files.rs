//! Signal files: externally made signals (model predictions, sentiment, agents' actions) read,
//! validated and put on the market's clock.

use super::{Stream, NONE};
use crate::data::MarketData;
use crate::error::{Error, Loc, Result};
use std::path::Path;

/// One row of a signal file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSignal {
    /// Time the signal became known (ms).
    pub ts: i64,
    /// Symbol name.
    pub symbol: String,
    /// +1, -1 or 0.
    pub dir: i8,
    /// 1..=4.
    pub strength: u8,
    /// [0, 1].
    pub conf: f64,
    /// Source name.
    pub source: String,
}

/// Read a signal file: CSV or Parquet with `timestamp, symbol, direction, strength, confidence,
/// source`. Direction: `long`/`short`/`flat` or 1/-1/0; strength: `weak`, `moderate`, `strong`,
/// `very_strong` or 1..=4; confidence in [0, 1]. Errors name the file, the line and the rule.
pub fn read_signal_file(path: &Path) -> Result<Vec<FileSignal>> {
    let rows = crate::data::read_text_table(path)?;
    let need = ["timestamp", "symbol", "direction", "strength", "confidence", "source"];
    let idx: Vec<usize> = need
        .iter()
        .map(|n| {
            rows.names.iter().position(|h| h.eq_ignore_ascii_case(n)).ok_or_else(|| {
                Error::data(
                    path,
                    None,
                    "missing-column",
                    format!("no {n} column; the file has: {} (needs {})", rows.names.join(", "), need.join(", ")),
                )
            })
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(rows.rows.len());
    for (r, row) in rows.rows.iter().enumerate() {
        let loc = Some(rows.loc(r));
        let cell = |k: usize| row[idx[k]].as_str();
        let ts = crate::data::time::parse_timestamp(cell(0), crate::data::TimestampUnit::Auto)
            .ok_or_else(|| Error::data(path, loc, "unparsable-timestamp", format!("'{}'", cell(0))))?;
        let dir = match cell(2).to_ascii_lowercase().as_str() {
            "long" | "buy" | "1" | "1.0" => 1,
            "short" | "sell" | "-1" | "-1.0" => -1,
            "flat" | "0" | "0.0" => 0,
            other => return Err(Error::data(path, loc, "bad-direction", format!("'{other}', expected long, short, flat or 1, -1, 0"))),
        };
        let strength = match cell(3).to_ascii_lowercase().as_str() {
            "weak" | "1" => 1,
            "moderate" | "2" => 2,
            "strong" | "3" => 3,
            "very_strong" | "very strong" | "4" => 4,
            other => {
                return Err(Error::data(
                    path,
                    loc,
                    "bad-strength",
                    format!("'{other}', expected weak, moderate, strong, very_strong or 1..4"),
                ))
            }
        };
        let conf: f64 = cell(4).parse().map_err(|_| Error::data(path, loc, "unparsable-number", format!("confidence '{}'", cell(4))))?;
        if !(0.0..=1.0).contains(&conf) {
            return Err(Error::data(path, loc, "confidence-out-of-range", format!("{conf}, expected [0, 1]")));
        }
        if cell(1).is_empty() || cell(5).is_empty() {
            return Err(Error::data(path, loc, "missing-value", "empty symbol or source"));
        }
        out.push(FileSignal { ts, symbol: cell(1).to_string(), dir, strength, conf, source: cell(5).to_string() });
    }
    Ok(out)
}

/// The times a signal row may carry and still belong to a bar: from the first bar's open to the
/// last bar's end (its open plus the timeframe), end excluded.
pub fn usable_span(md: &MarketData) -> std::ops::Range<i64> {
    let first = md.timestamps.first().copied().unwrap_or(i64::MAX);
    let end = md.timestamps.last().map_or(i64::MIN, |t| t.saturating_add(md.timeframe.ms));
    first..end
}

/// Put file signals on the market's clock: a signal stamped t belongs to the bar whose open is
/// the latest at or before t and is used at that bar's close, never earlier. One stream per
/// (symbol id, source); within one bar the row with the latest timestamp wins, whatever the
/// file's order, and two rows with the same symbol, source and timestamp but different values
/// are an error naming both lines. A row holds until the next row of its source for that symbol
/// (write `flat` to withdraw a view). Signals for symbols not in the market are an error;
/// signals before the first bar's open or after the last bar's end (its open plus the
/// timeframe: it could only reach back in time) are dropped (the engine's preparation counts
/// them in a warning).
pub fn file_streams(path: &Path, rows: &[FileSignal], md: &MarketData) -> Result<Vec<(usize, Stream)>> {
    let n = md.len();
    let mut streams: Vec<(usize, Stream)> = Vec::new();
    // Per stream and bar: the timestamp and line of the row in force.
    let mut stamp: Vec<Vec<(i64, usize)>> = Vec::new();
    let span = usable_span(md);
    for (r, s) in rows.iter().enumerate() {
        let line = r + 2;
        let sym = md.symbol_id(&s.symbol).ok_or_else(|| {
            Error::data(
                path,
                Some(Loc::Line(line)),
                "unknown-symbol",
                format!("{} is not in the data ({})", s.symbol, md.symbols.join(", ")),
            )
        })?;
        let k = md.timestamps.partition_point(|&t| t <= s.ts);
        if !span.contains(&s.ts) || k == 0 {
            continue;
        }
        let t = k - 1;
        let p = match streams.iter().position(|(i, st)| *i == sym && st.source == s.source) {
            Some(p) => p,
            None => {
                streams.push((
                    sym,
                    Stream { source: s.source.clone(), dir: vec![NONE; n], strength: vec![4; n], conf: vec![0.0; n], acts: None },
                ));
                stamp.push(vec![(i64::MIN, 0); n]);
                streams.len() - 1
            }
        };
        let st = &mut streams[p].1;
        let (ts0, line0) = stamp[p][t];
        if ts0 == s.ts && line0 != 0 {
            if (st.dir[t], st.strength[t], st.conf[t]) != (s.dir, s.strength, s.conf) {
                return Err(Error::data(
                    path,
                    Some(Loc::Line(line)),
                    "conflicting-signal",
                    format!("{} {} at {} differs from line {line0}", s.symbol, s.source, crate::data::time::format_ts(s.ts)),
                ));
            }
            continue;
        }
        if s.ts < ts0 {
            continue;
        }
        stamp[p][t] = (s.ts, line);
        st.dir[t] = s.dir;
        st.strength[t] = s.strength;
        st.conf[t] = s.conf;
    }
    if rows.is_empty() {
        return Err(Error::data(path, None, "no-rows", "the file has a header and no rows"));
    }
    if streams.is_empty() {
        return Err(Error::data(path, None, "no-signal-in-range", format!("none of its {} rows falls within the data's bars", rows.len())));
    }
    // A file signal holds until the next row of its source for the same symbol.
    for (_, st) in streams.iter_mut() {
        for t in 1..n {
            if st.dir[t] == NONE && st.dir[t - 1] != NONE {
                st.dir[t] = st.dir[t - 1];
                st.strength[t] = st.strength[t - 1];
                st.conf[t] = st.conf[t - 1];
            }
        }
    }
    Ok(streams)
}
